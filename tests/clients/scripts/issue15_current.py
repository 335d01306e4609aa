"""Driven by tests/e2e/test_sdk_issue15.py inside the langfuse 4.x or 5.x venv (the OpenTelemetry SDKs).

What these released SDKs tripped on (issue #15): metadata values sent as OTLP string attributes, generations
linked to a prompt with ``prompt=``, and ``get_dataset`` over items whose input / expected output are bare
JSON scalars. Uses only the SDK's public API and prints what it created (and what ``get_dataset`` returned) as
one JSON line. Errors the SDK only logs (a refused export, a rejected score batch) make it exit non-zero.
"""

import datetime as dt
import json
import logging
import sys
import time
import uuid

import langfuse as langfuse_pkg
from langfuse import Langfuse, propagate_attributes


class _RecordErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.levelno >= logging.ERROR or "export" in text.lower():
            self.records.append(f"{record.name}: {text}")


errors = _RecordErrors()
logging.getLogger().addHandler(errors)

major = int(langfuse_pkg.__version__.split(".")[0])
lf = Langfuse(flush_interval=0.5)
if not lf.auth_check():
    sys.exit("auth_check failed")

suffix = uuid.uuid4().hex[:8]
out: dict = {"sdk_version": langfuse_pkg.__version__, "major": major, "suffix": suffix}
META = {"count": "0", "items": ["yo"], "nested": {"a": {"b": 1}, "s": "1"}, "text": "hello", "num": 7}

# --- prompts: a generation linked with prompt= ---------------------------------------------------------------
text_prompt = lf.create_prompt(name=f"greet-{suffix}", prompt="Hello {{name}}", labels=["production"])
chat_prompt = lf.create_prompt(
    name=f"chat-{suffix}",
    type="chat",
    prompt=[{"role": "system", "content": "Be brief, {{name}}."}],
    labels=["production"],
)
out["prompts"] = {
    "text": [text_prompt.name, text_prompt.version],
    "chat": [chat_prompt.name, chat_prompt.version],
}

with propagate_attributes(metadata={"tenant": "acme", "build": "123"}):
    with lf.start_as_current_observation(as_type="span", name="root", metadata=META) as root:
        out["trace_id"] = lf.get_current_trace_id()
        out["root"] = root.id
        with lf.start_as_current_observation(
            as_type="generation", name="text-gen", model="gpt-4o", prompt=text_prompt
        ) as gen:
            out["text_gen"] = gen.id
            gen.update(output="Hello Ada")
        with lf.start_as_current_observation(
            as_type="generation", name="chat-gen", model="gpt-4o", prompt=chat_prompt
        ) as gen:
            out["chat_gen"] = gen.id
            gen.update(output="ok")

lf.create_score(name="quality", value=0.5, trace_id=out["trace_id"], metadata=META)

# --- datasets: items whose input / expected output are bare JSON scalars ---------------------------------
dataset = f"scalars-{suffix}"
lf.create_dataset(name=dataset)
values = [(5, 3.5), (True, None), ("plain text", [1, "a", None]), (None, 0)]
for n, (value_in, value_out) in enumerate(values):
    lf.create_dataset_item(
        dataset_name=dataset, id=f"{suffix}-{n}", input=value_in, expected_output=value_out, metadata={"n": n}
    )
got = lf.get_dataset(dataset)
out["dataset_items"] = sorted([[i.id, i.input, i.expected_output] for i in got.items])
if major >= 5:  # a versioned read, as a versioned experiment run does it
    time.sleep(0.01)
    got = lf.get_dataset(dataset, version=dt.datetime.now(dt.UTC))
    out["dataset_items_versioned"] = sorted([[i.id, i.input, i.expected_output] for i in got.items])
out["expected_items"] = sorted([[f"{suffix}-{n}", a, b] for n, (a, b) in enumerate(values)])

lf.flush()
lf.shutdown()
if errors.records:
    sys.exit("SDK reported errors:\n" + "\n".join(errors.records))
print(json.dumps(out))
