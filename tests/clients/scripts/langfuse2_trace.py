"""Driven by tests/e2e/test_sdk_langfuse2.py inside the langfuse 2.x venv: trace like an application would.

Prints the ids it created as JSON on stdout. Uses only the public SDK API.
"""

import json
import os
import sys

from langfuse import Langfuse

lf = Langfuse(
    public_key=os.environ["LANGFUSE_PUBLIC_KEY"],
    secret_key=os.environ["LANGFUSE_SECRET_KEY"],
    host=os.environ["LANGFUSE_HOST"],
    flush_at=5,
)
if not lf.auth_check():
    sys.exit("auth_check failed")

trace = lf.trace(
    name="support-chat",
    user_id="user-42",
    session_id="session-7",
    tags=["prod", "chat"],
    metadata={"tenant": "acme", "nested": {"a": 1}},
    input={"question": "What is Lightfuse?"},
    release="1.2.3",
    version="v9",
)
span = trace.span(name="retrieve", input={"query": "lightfuse"})
span.event(name="cache-miss", metadata={"key": "lightfuse"})
generation = span.generation(
    name="answer",
    model="gpt-4o",
    model_parameters={"temperature": 0.2, "max_tokens": 256},
    input=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Lightfuse?"}],
    usage_details={"input": 1000, "output": 200},
)
generation.end(output={"role": "assistant", "content": "A small Langfuse-compatible server."})
span.end(output={"documents": 3})
failed = trace.generation(name="fallback", model="gpt-4o-mini", level="ERROR", status_message="rate limited")
failed.end()
trace.update(output={"answer": "A small Langfuse-compatible server."}, metadata={"resolved": True})
trace.score(name="helpfulness", value=0.9, comment="good")
generation.score(name="correct", value=1, data_type="BOOLEAN")
trace.score(name="tone", value="friendly", data_type="CATEGORICAL")
lf.flush()
lf.shutdown()
print(
    json.dumps(
        {"trace_id": trace.id, "span_id": span.id, "generation_id": generation.id, "failed_id": failed.id}
    )
)
