"""The current langfuse SDK (5.x) against a real Lightfuse server: datasets, run_experiment, media.

The SDK's ``run_experiment`` reports runs only through OTLP span attributes and scores; the run and its items
must still be readable through the dataset-run API, and the evaluator's scores through /api/public/v2/scores.
"""

from __future__ import annotations

import base64
import json
import subprocess
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import ROOT, client_python

pytestmark = pytest.mark.slow


def run_script(server, script: str, sdk: str = "langfuse5") -> dict:
    env = {
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_BASE_URL": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python(sdk), str(ROOT / "tests" / "clients" / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sdk", ["langfuse5", "langfuse4"])
def test_sdk_datasets_experiment_and_media(server, sdk):
    ids = run_script(server, "langfuse5_datasets.py", sdk)

    def get(path: str, **params):
        resp = httpx.get(f"{server.url}{path}", params=params, auth=server.auth)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"
        return resp.json()

    name = quote(ids["dataset_name"], safe="")
    dataset = get(f"/api/public/v2/datasets/{name}")
    assert dataset["id"] == ids["dataset_id"] and dataset["metadata"] == {"owner": "e2e"}
    items = get("/api/public/dataset-items", datasetName=ids["dataset_name"])["data"]
    assert sorted(i["id"] for i in items) == sorted(ids["item_ids"])

    # the experiment became a dataset run whose id is the SDK's experiment id
    run = get(f"/api/public/datasets/{name}/runs/{quote(ids['run_name'], safe='')}")
    assert run["id"] == ids["experiment_id"] and run["datasetId"] == ids["dataset_id"]
    assert run["description"] == "baseline"
    run_items = run["datasetRunItems"]
    assert sorted(i["datasetItemId"] for i in run_items) == sorted(ids["item_ids"])
    assert sorted(i["traceId"] for i in run_items) == ids["item_trace_ids"]
    assert all(i["observationId"] for i in run_items)
    runs = get(f"/api/public/datasets/{name}/runs")["data"]
    assert [r["name"] for r in runs] == [ids["run_name"]]
    listed = get("/api/public/dataset-run-items", datasetId=ids["dataset_id"], runName=ids["run_name"])
    assert listed["meta"]["totalItems"] == 2

    # the evaluator's scores, on the item traces
    scores = get("/api/public/v2/scores", name="exact_match")["data"]
    by_trace = {s["traceId"]: s for s in scores}
    assert set(by_trace) == set(ids["item_trace_ids"])
    assert sorted(s["value"] for s in scores) == [0, 1]
    observation_of = {i["traceId"]: i["observationId"] for i in run_items}
    assert all(by_trace[t]["observationId"] == observation_of[t] for t in by_trace)

    # the media in the trace input: referenced in the stored input, uploaded, downloadable
    trace = get(f"/api/public/traces/{ids['media_trace_id']}")
    assert trace["input"]["image"].startswith(f"@@@langfuseMedia:type=image/png|id={ids['media_id']}|")
    media = get(f"/api/public/media/{ids['media_id']}")
    assert media["contentType"] == "image/png" and media["url"].startswith(server.url)
    download = httpx.get(media["url"])
    assert download.status_code == 200
    assert download.content == base64.b64decode(ids["png_b64"])
    assert download.headers["content-type"] == "image/png"
