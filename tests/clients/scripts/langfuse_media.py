"""Driven by tests/e2e/test_sdk_media_s3.py inside a langfuse venv (2.x or 5.x): a trace whose input holds media.

Uses only the SDK's public API; the SDK asks the server for an upload URL, PUTs the bytes there itself and
reports the result. Prints the ids as one JSON line. Errors the SDK only logs (a refused upload, a failed
report) make it exit non-zero.
"""

import base64
import importlib.metadata
import json
import logging
import sys

from langfuse import Langfuse
from langfuse.media import LangfuseMedia

# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class _RecordErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or "upload" in record.getMessage().lower():
            self.records.append(f"{record.name}: {record.getMessage()}")


errors = _RecordErrors()
logging.getLogger().addHandler(errors)

major = int(importlib.metadata.version("langfuse").split(".")[0])
media = LangfuseMedia(content_bytes=PNG, content_type="image/png")
if major < 3:
    # the ingestion-API generation: keys and host from LANGFUSE_* in the environment
    lf = Langfuse(flush_at=1)
    if not lf.auth_check():
        sys.exit("auth_check failed")
    trace = lf.trace(name="describe-image", input={"image": media, "question": "What is it?"})
    trace_id = trace.id
else:
    lf = Langfuse(flush_interval=0.5)
    if not lf.auth_check():
        sys.exit("auth_check failed")
    with lf.start_as_current_observation(
        name="describe-image", input={"image": media, "question": "What is it?"}
    ) as span:
        trace_id = span.trace_id
        span.update(output="a single pixel")

lf.flush()
lf.shutdown()
if errors.records:
    sys.exit("SDK reported errors:\n" + "\n".join(errors.records))

print(
    json.dumps({"trace_id": trace_id, "media_id": media._media_id, "png_b64": base64.b64encode(PNG).decode()})
)
