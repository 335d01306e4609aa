"""Driven by tests/e2e/test_sdk_datasets.py inside the langfuse 5.x venv: datasets, an experiment, media.

Uses only the SDK's public API: creates a dataset with items, reads it back, runs an experiment with a task
and an evaluator over it, and traces an input holding a LangfuseMedia image. Prints what it created as one
JSON line. Errors the SDK only logs (failed exports, score batches, media uploads) make it exit non-zero.
"""

import base64
import json
import logging
import sys
import uuid

from langfuse import Evaluation, Langfuse
from langfuse.media import LangfuseMedia

# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
CAPITALS = {"Italy": "Rome", "France": "Paris"}
ANSWERS = {"Italy": "Rome", "France": "Lyon"}  # one right, one wrong


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

lf = Langfuse(flush_interval=0.5)  # keys and base URL from the environment
if not lf.auth_check():
    sys.exit("auth_check failed")

suffix = uuid.uuid4().hex[:8]
name = f"e2e/capitals-{suffix}"  # a folder-style name exercises the URL encoding of dataset names
lf.create_dataset(name=name, description="capital cities", metadata={"owner": "e2e"})
item_ids = []
for country, capital in CAPITALS.items():
    item = lf.create_dataset_item(
        dataset_name=name,
        id=f"{suffix}-{country.lower()}",
        input={"country": country},
        expected_output=capital,
        metadata={"continent": "Europe"},
    )
    item_ids.append(item.id)

dataset = lf.get_dataset(name)
if sorted(i.id for i in dataset.items) != sorted(item_ids):
    sys.exit(f"get_dataset returned {[i.id for i in dataset.items]}")


def task(*, item, **kwargs):
    return ANSWERS[item.input["country"]]


def exact_match(*, input, output, expected_output=None, **kwargs):
    return Evaluation(
        name="exact_match",
        value=1.0 if output == expected_output else 0.0,
        comment=f"{output} vs {expected_output}",
    )


run_name = f"run-{suffix}"
result = dataset.run_experiment(
    name="capitals", run_name=run_name, description="baseline", task=task, evaluators=[exact_match]
)

media = LangfuseMedia(content_bytes=PNG, content_type="image/png")
with lf.start_as_current_observation(
    name="describe-image", input={"image": media, "question": "What is it?"}
) as span:
    media_trace_id = span.trace_id
    span.update(output="a single pixel")

lf.flush()
lf.shutdown()
if errors.records:
    sys.exit("SDK reported errors:\n" + "\n".join(errors.records))

print(
    json.dumps(
        {
            "dataset_name": name,
            "dataset_id": dataset.id,
            "item_ids": item_ids,
            "run_name": run_name,
            "experiment_id": result.experiment_id,
            "item_trace_ids": sorted(r.trace_id for r in result.item_results if r.trace_id),
            "media_trace_id": media_trace_id,
            "media_id": media._media_id,
            "png_b64": base64.b64encode(PNG).decode(),
        }
    )
)
