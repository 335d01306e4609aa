"""Driven by tests/e2e/test_sdk_otlp.py inside the langfuse 4.x or 5.x venv (the OpenTelemetry SDKs).

Traces like an application would, using only the SDK's public API, then prints the ids it created
as one JSON line on stdout. Any error the SDK or its
exporter logs (a refused export, a rejected score batch) makes the script exit non-zero, because
those SDKs never raise on delivery failures.
"""

import json
import logging
import sys

import langfuse as langfuse_pkg
from langfuse import Langfuse, observe, propagate_attributes


class _RecordErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # "failed to export" warnings from the OTLP exporter and SDK error logs both count
        text = record.getMessage()
        if record.levelno >= logging.ERROR or "export" in text.lower():
            self.records.append(f"{record.name}: {text}")


errors = _RecordErrors()
logging.getLogger().addHandler(errors)

major = int(langfuse_pkg.__version__.split(".")[0])
lf = Langfuse(flush_interval=0.5)  # keys and base URL from the environment
if not lf.auth_check():
    sys.exit("auth_check failed")

ids: dict = {"sdk_version": langfuse_pkg.__version__}
QUESTION = {"question": "What is Lightfuse?"}
ANSWER = {"answer": "A small Langfuse-compatible server."}


@observe(name="retrieve")
def retrieve(query: str) -> list:
    ids["retrieve"] = lf.get_current_observation_id()
    with lf.start_as_current_observation(as_type="span", name="search-index", input={"q": query}) as span:
        ids["search_index"] = span.id
        span.update(output={"hits": 2})
    return ["doc-1", "doc-2"]


@observe(name="summarise", as_type="generation")
def summarise(docs: list) -> str:
    ids["summarise"] = lf.get_current_observation_id()
    # usage but no cost: the server prices it with the built-in gpt-4o price
    lf.update_current_generation(
        model="gpt-4o",
        model_parameters={"temperature": 0.2, "max_tokens": 256},
        usage_details={"input": 1000, "output": 200},
        metadata={"attempt": 2, "tier": "gold"},
    )
    return "Lightfuse is a small Langfuse-compatible server."


@observe(name="failing-tool")
def failing_tool() -> None:
    raise ValueError("tool exploded")


@observe(name="pipeline")
def pipeline(question: dict) -> dict:
    ids["trace_id"] = lf.get_current_trace_id()
    ids["root"] = lf.get_current_observation_id()
    docs = retrieve(question["question"])
    summarise(docs)
    # provided cost wins over the model price
    with lf.start_as_current_observation(
        as_type="generation",
        name="rerank",
        model="gpt-4o-mini",
        input=[{"role": "user", "content": "rank these"}],
        usage_details={"input": 50, "output": 5},
        cost_details={"input": 0.01, "output": 0.02},
    ) as gen:
        ids["rerank"] = gen.id
        gen.update(output={"role": "assistant", "content": "doc-2, doc-1"})
    try:
        failing_tool()
    except ValueError:
        pass
    try:
        with lf.start_as_current_observation(as_type="span", name="ctx-error") as span:
            ids["ctx_error"] = span.id
            raise RuntimeError("context manager boom")
    except RuntimeError:
        pass
    with lf.start_as_current_observation(as_type="span", name="explicit-error") as span:
        ids["explicit_error"] = span.id
        span.update(level="ERROR", status_message="quota exhausted")
    if hasattr(lf, "set_current_trace_io"):  # 4.x only; 5.x derives trace IO from the root observation
        lf.set_current_trace_io(input=question, output=ANSWER)
    lf.score_current_trace(name="helpfulness", value=0.9, comment="good")
    lf.score_current_span(name="tone", value="friendly", data_type="CATEGORICAL")
    return ANSWER


with propagate_attributes(
    user_id="user-42",
    session_id="session-7",
    tags=["prod", "chat"],
    metadata={"tenant": "acme", "build": "123"},
    trace_name="support-chat",
):
    pipeline(QUESTION)

# scores through the API: by id, for an observation (BOOLEAN) and the trace (NUMERIC)
lf.create_score(
    name="correct", value=1, data_type="BOOLEAN", trace_id=ids["trace_id"], observation_id=ids["summarise"]
)
lf.create_score(name="latency-ok", value=3, trace_id=ids["trace_id"], comment="numeric by id")
lf.flush()
lf.shutdown()
if errors.records:
    sys.exit("SDK reported errors:\n" + "\n".join(errors.records))
ids["major"] = major
print(json.dumps(ids))
