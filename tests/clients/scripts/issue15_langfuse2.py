"""Driven by tests/e2e/test_sdk_issue15.py inside the langfuse 2.x venv (the batch ingestion API).

Issue #15 with the older SDK: string metadata values, a generation linked with ``prompt=`` (batch
``promptName`` / ``promptVersion``), and ``get_dataset`` over items whose input / expected output are bare JSON
scalars. Prints what it created (and what ``get_dataset`` returned) as one JSON line.
"""

import json
import os
import sys
import uuid

import langfuse as langfuse_pkg
from langfuse import Langfuse

lf = Langfuse(
    public_key=os.environ["LANGFUSE_PUBLIC_KEY"],
    secret_key=os.environ["LANGFUSE_SECRET_KEY"],
    host=os.environ["LANGFUSE_HOST"],
    flush_at=5,
)
if not lf.auth_check():
    sys.exit("auth_check failed")

suffix = uuid.uuid4().hex[:8]
out: dict = {"sdk_version": langfuse_pkg.__version__, "suffix": suffix}
META = {"count": "0", "items": '["yo"]', "nested": {"a": {"b": 1}, "s": "1"}, "text": "hello", "num": 7}

prompt = lf.create_prompt(name=f"greet-{suffix}", prompt="Hello {{name}}", labels=["production"])
out["prompt"] = [prompt.name, prompt.version]
trace = lf.trace(name="issue15", metadata=META)
span = trace.span(name="root", metadata=META)
generation = span.generation(name="text-gen", model="gpt-4o", prompt=prompt, metadata=META)
generation.end(output="Hello Ada")
span.end()
out.update(trace_id=trace.id, root=span.id, text_gen=generation.id)

dataset = f"scalars-{suffix}"
lf.create_dataset(name=dataset)
values = [(5, 3.5), (True, None), ("plain text", [1, "a", None]), (None, 0)]
for n, (value_in, value_out) in enumerate(values):
    lf.create_dataset_item(
        dataset_name=dataset, id=f"{suffix}-{n}", input=value_in, expected_output=value_out, metadata={"n": n}
    )
got = lf.get_dataset(dataset)
out["dataset_items"] = sorted([[i.id, i.input, i.expected_output] for i in got.items])
out["expected_items"] = sorted([[f"{suffix}-{n}", a, b] for n, (a, b) in enumerate(values)])
lf.flush()
lf.shutdown()
print(json.dumps(out))
