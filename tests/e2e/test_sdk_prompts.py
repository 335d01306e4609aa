"""Prompt management through the current Langfuse SDKs (4.x and 5.x) against a real Lightfuse server.

tests/clients/scripts/prompts_sdk.py runs in each SDK's venv and reports what the SDK returned; the server
state is then read back through the public API.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow


def run_prompts_script(server, sdk: str) -> dict:
    env = {
        # 4.x reads LANGFUSE_HOST, 5.x documents LANGFUSE_BASE_URL
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_BASE_URL": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python(sdk), str(ROOT / "tests" / "clients" / "scripts" / "prompts_sdk.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sdk", ["langfuse4", "langfuse5"])
def test_sdk_prompt_management(server, sdk):
    got = run_prompts_script(server, sdk)
    assert got["major"] == int(sdk[-1])

    v1 = got["created_v1"]
    assert v1["name"] == "support/greeting" and v1["version"] == 1
    assert v1["labels"] == ["production", "latest"] and v1["tags"] == ["support", "e2e"]
    assert v1["config"] == {"model": "gpt-4o", "temperature": 0.1} and v1["commit_message"] == "first version"
    # tags are inherited by a version created without them
    assert got["created_v2"]["version"] == 2 and got["created_v2"]["tags"] == ["support", "e2e"]

    assert got["default"]["version"] == 1 and got["default"]["is_fallback"] is False
    assert got["default_compiled"] == "Hello Ada, welcome to Lightfuse!"
    assert got["default_variables"] == ["name", "place"]
    assert got["by_label"]["version"] == 2 and got["by_version"]["labels"] == ["staging", "latest"]
    assert got["by_version_compiled"] == "Hi Bob (home)"

    assert got["chat_created"]["version"] == 1
    assert got["chat_compiled"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Why?"},
    ]

    # update_prompt adds labels to version 2 and moves production off version 1
    assert got["updated_labels"] == ["staging", "latest", "production", "reviewed"]
    assert got["after_update"]["version"] == 2
    assert got["v1_after_update"]["labels"] == []
    assert got["composed"] == "[Hi Cy (there)]"

    assert got["fallback"] == {"is_fallback": True, "compiled": "Fallback for Dee"}
    assert got["chat_fallback"] == {"is_fallback": True, "compiled": [{"role": "system", "content": "fb 1"}]}
    assert got["missing_version"] == {
        "status": 404,
        "body": {
            "message": "Prompt not found: 'support/greeting' with version 99",
            "error": "LangfuseNotFoundError",
        },
    }

    listed = httpx.get(f"{server.url}/api/public/v2/prompts", auth=server.auth).json()
    assert [p["name"] for p in listed["data"]] == ["support/chat", "support/greeting", "support/wrapper"]
    greeting = listed["data"][1]
    assert greeting["versions"] == [1, 2]
    assert greeting["labels"] == ["latest", "production", "reviewed", "staging"]
