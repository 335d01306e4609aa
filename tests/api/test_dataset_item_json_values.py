"""Dataset items hold any JSON value as input, expected output and metadata (issue #15, item 4).

The SDKs' ``get_dataset`` read items one by one, as a list, and as a list at a version timestamp (a versioned
experiment run); a bare number in a JSON column used to make every one of those reads answer 500. Each value
is written through the API and read back through all three, on SQLite and Postgres.
"""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import HealthCheck, given, settings

from lightfuse.services.common.resources import sanitize
from tests.store.test_json_columns import JSON_VALUES, _same


def _iso_now() -> str:
    now = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=5)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_dataset_item_reads_survive_every_json_value(api, value):
    dataset = f"json-{uuid.uuid4().hex[:8]}"
    assert (
        api.client.post("/api/public/v2/datasets", json={"name": dataset}, auth=api.auth).status_code == 200
    )
    item_id = uuid.uuid4().hex
    body = {
        "datasetName": dataset,
        "id": item_id,
        "input": value,
        "expectedOutput": value,
        "metadata": {"value": value},
    }
    created = api.client.post("/api/public/dataset-items", json=body, auth=api.auth)
    assert created.status_code == 200, created.text

    one = api.client.get(f"/api/public/dataset-items/{item_id}", auth=api.auth)
    listed = api.client.get("/api/public/dataset-items", params={"datasetName": dataset}, auth=api.auth)
    versioned = api.client.get(
        "/api/public/dataset-items", params={"datasetName": dataset, "version": _iso_now()}, auth=api.auth
    )
    legacy = api.client.get(f"/api/public/datasets/{dataset}", auth=api.auth)
    for resp in (one, listed, versioned, legacy):
        assert resp.status_code == 200, resp.text
    items = [one.json(), *listed.json()["data"], *versioned.json()["data"], *legacy.json()["items"]]
    assert len(items) == 4
    value = sanitize(value)  # C0 control characters are stripped from dataset items, as Langfuse does
    for item in items:
        assert _same(item["input"], value) and _same(item["expectedOutput"], value), (item, value)
        assert _same(item["metadata"], {"value": value}), (item, value)
