"""Driven by tests/e2e/test_sdk_prompts.py inside the langfuse 4.x or 5.x venv.

Manages prompts through the SDK's public prompt API only (create_prompt, get_prompt, compile, update_prompt)
and prints what it observed as one JSON line on stdout; the test makes the assertions.
"""

import json

import langfuse as langfuse_pkg
from langfuse import Langfuse
from langfuse.api import NotFoundError

NAME = "support/greeting"  # a folder: the SDK sends it URL-encoded as support%2Fgreeting
CHAT = "support/chat"

lf = Langfuse()  # keys and base URL from the environment
out: dict = {"sdk_version": langfuse_pkg.__version__, "major": int(langfuse_pkg.__version__.split(".")[0])}


def describe(prompt) -> dict:
    return {
        "name": prompt.name,
        "version": prompt.version,
        "labels": list(prompt.labels),
        "tags": list(prompt.tags),
        "config": prompt.config,
        "commit_message": prompt.commit_message,
        "is_fallback": prompt.is_fallback,
    }


created = lf.create_prompt(
    name=NAME,
    prompt="Hello {{name}}, welcome to {{place}}!",
    labels=["production"],
    tags=["support", "e2e"],
    config={"model": "gpt-4o", "temperature": 0.1},
    commit_message="first version",
)
out["created_v1"] = describe(created)
out["created_v2"] = describe(
    lf.create_prompt(name=NAME, prompt="Hi {{name}} ({{place}})", labels=["staging"])
)

default = lf.get_prompt(NAME, cache_ttl_seconds=0)
out["default"] = describe(default)
out["default_compiled"] = default.compile(name="Ada", place="Lightfuse")
out["default_variables"] = sorted(default.variables)
out["by_label"] = describe(lf.get_prompt(NAME, label="staging", cache_ttl_seconds=0))
by_version = lf.get_prompt(NAME, version=2, cache_ttl_seconds=0)
out["by_version"] = describe(by_version)
out["by_version_compiled"] = by_version.compile(name="Bob", place="home")

chat = lf.create_prompt(
    name=CHAT,
    type="chat",
    prompt=[
        {"role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ],
    labels=["production"],
)
out["chat_created"] = describe(chat)
fetched_chat = lf.get_prompt(CHAT, type="chat", cache_ttl_seconds=0)
out["chat_compiled"] = fetched_chat.compile(
    persona="terse",
    question="Why?",
    history=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
)

updated = lf.update_prompt(name=NAME, version=2, new_labels=["production", "reviewed"])
out["updated_labels"] = list(updated.labels)
out["after_update"] = describe(lf.get_prompt(NAME, cache_ttl_seconds=0))
out["v1_after_update"] = describe(lf.get_prompt(NAME, version=1, cache_ttl_seconds=0))

# composability: the server substitutes the referenced text prompt before the SDK sees it
lf.create_prompt(
    name="support/wrapper",
    prompt="[@@@langfusePrompt:name=support/greeting|label=production@@@]",
    labels=["production"],
)
out["composed"] = lf.get_prompt("support/wrapper", cache_ttl_seconds=0).compile(name="Cy", place="there")

fallback = lf.get_prompt("does/not-exist", fallback="Fallback for {{name}}", max_retries=0)
out["fallback"] = {"is_fallback": fallback.is_fallback, "compiled": fallback.compile(name="Dee")}
chat_fallback = lf.get_prompt(
    "does/not-exist-chat", type="chat", fallback=[{"role": "system", "content": "fb {{x}}"}], max_retries=0
)
out["chat_fallback"] = {"is_fallback": chat_fallback.is_fallback, "compiled": chat_fallback.compile(x="1")}

try:
    lf.get_prompt(NAME, version=99, max_retries=0, cache_ttl_seconds=0)
    out["missing_version"] = "no error"
except NotFoundError as exc:
    out["missing_version"] = {"status": exc.status_code, "body": exc.body}

lf.shutdown()
print(json.dumps(out))
