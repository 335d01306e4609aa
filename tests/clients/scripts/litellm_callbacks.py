"""Driven by tests/e2e/test_litellm.py inside the litellm venv: one successful and one failing mocked
completion, logged by LiteLLM's Langfuse callback of the mode given as argv[1]:

* ``langfuse``      - success_callback / failure_callback "langfuse" (the 2.x ingestion-API client);
* ``langfuse_otel`` - callbacks "langfuse_otel" (OTLP/HTTP to /api/public/otel/v1/traces).

No provider is contacted (``mock_response``). Prints what the server should show as one JSON line.
Delivery errors the callbacks log (they never raise) make the script exit non-zero.
"""

import json
import logging
import os
import sys
import time
import uuid

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network: use the bundled price map

import litellm  # noqa: E402

MODE = sys.argv[1]
RUN = uuid.uuid4().hex[:8]


class _RecordErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        lowered = text.lower()
        if "export" in lowered or "langfuse" in lowered or record.levelno >= logging.ERROR:
            self.records.append(f"{record.name}: {text[:500]}")


errors = _RecordErrors()
for name in ("", "LiteLLM", "langfuse", "opentelemetry"):
    logging.getLogger(name).addHandler(errors)

if MODE == "langfuse":
    litellm.success_callback = ["langfuse"]
    litellm.failure_callback = ["langfuse"]
elif MODE == "langfuse_otel":
    litellm.callbacks = ["langfuse_otel"]
else:
    sys.exit(f"unknown mode {MODE}")

USER = f"litellm-user-{MODE}-{RUN}"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Lightfuse?"}]
ANSWER = "A small Langfuse-compatible server."

ok = litellm.completion(
    model="gpt-4o",
    messages=MESSAGES,
    mock_response=ANSWER,
    mock_delay=0.05,  # so endTime > startTime at millisecond resolution
    temperature=0.2,
    metadata={
        "generation_name": "answer",
        "trace_name": "litellm-chat",
        "trace_user_id": USER,
        "session_id": f"litellm-session-{RUN}",
        "tags": ["litellm", MODE],
    },
)
usage = ok.usage
failure_text = f"upstream exploded {RUN}"
try:
    litellm.completion(
        model="gpt-4o",
        messages=MESSAGES,
        mock_response=Exception(failure_text),
        metadata={
            "generation_name": "answer-failed",
            "trace_name": "litellm-chat-failed",
            "trace_user_id": USER,
        },
    )
except Exception as exc:  # the mocked provider error surfaces to the caller, as a real one would
    raised = f"{type(exc).__name__}: {exc}"
else:
    sys.exit("the failing completion did not raise")


def _flush() -> None:
    # the callbacks run on LiteLLM's worker threads; give them time to hand their data over
    time.sleep(1.0)
    if MODE == "langfuse":
        from litellm.litellm_core_utils import litellm_logging

        logger = litellm_logging.langFuseLogger
        if logger is None:
            sys.exit("the langfuse callback never ran")
        logger.Langfuse.flush()
    else:
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush()
        for cb in litellm.callbacks + litellm._async_success_callback + litellm.success_callback:
            tp = getattr(cb, "_tracer_provider", None) or getattr(
                getattr(cb, "tracer", None), "_provider", None
            )
            if tp is not None and hasattr(tp, "force_flush"):
                tp.force_flush()


_flush()
if errors.records:
    sys.exit("callback reported errors:\n" + "\n".join(errors.records))
print(
    json.dumps(
        {
            "user_id": USER,
            "session_id": f"litellm-session-{RUN}",
            "failure_text": failure_text,
            "raised": raised,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            },
            "answer": ANSWER,
        }
    )
)
