"""Issue #15 item 6: the released Langfuse JS/TS SDKs, from npm, on the machine's node, against a real server.

``tests/js`` pins the packages (``make js-clients`` runs ``npm ci``; the first test runs it when missing):
the current OpenTelemetry SDKs (``@langfuse/tracing`` + ``@langfuse/otel`` on a NodeTracerProvider, and
``@langfuse/client``) and the older ``langfuse`` 3.x (batched ingestion API). Each script does the flows an
app does (trace tree, nested generations with usage, errors, scores, prompts, datasets, media, experiments)
and prints the ids it created; the test reads everything back through the public API.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import datetime

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
JS_DIR = ROOT / "tests" / "js"
_STAMP = JS_DIR / "node_modules" / ".installed"


def _ensure_installed() -> None:
    if _STAMP.exists():
        return
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for the JS SDK tests (apt-get install -y nodejs npm)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=600)
    _STAMP.touch()


def run_node(server, script: str) -> dict:
    _ensure_installed()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(server.data_dir.parent),
        "LANGFUSE_BASE_URL": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "LF_TEST_SUFFIX": uuid.uuid4().hex[:8],
    }
    out = subprocess.run(
        ["node", str(JS_DIR / script)], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _get(server, path: str, **params) -> dict:
    resp = httpx.get(f"{server.url}{path}", params=params, auth=server.auth, timeout=30)
    assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text[:500]}"
    return resp.json()


def _check_trace(server, ids: dict, *, user: str, tags: list[str]) -> dict:
    """The trace tree, usage and cost of both generations, the error observations, the trace's scores."""
    trace = _get(server, f"/api/public/traces/{ids['trace_id']}")
    assert trace["userId"] == user
    assert sorted(trace["tags"]) == sorted(tags)
    assert trace["input"] == {"question": "What is Lightfuse?"}
    assert trace["output"] == {"answer": "A small Langfuse-compatible server."}
    assert trace["metadata"]["tenant"] == "acme"
    by_id = {o["id"]: o for o in trace["observations"]}

    summarise = by_id[ids["summarise"]]
    assert summarise["type"] == "GENERATION"
    assert summarise["parentObservationId"] == ids["retrieve"]  # nested under the span
    assert summarise["model"] == "gpt-4o"
    assert summarise["modelParameters"] == {"temperature": 0.2, "max_tokens": 256}
    assert summarise["usageDetails"] == {"input": 1000, "output": 200, "total": 1200}
    # the built-in gpt-4o price: 2.5e-6 per input token, 1e-5 per output token
    assert summarise["calculatedInputCost"] == pytest.approx(0.0025)
    assert summarise["calculatedOutputCost"] == pytest.approx(0.002)
    assert summarise["calculatedTotalCost"] == pytest.approx(0.0045)
    assert summarise["output"] == {"role": "assistant", "content": "Lightfuse is small."}

    rerank = by_id[ids["rerank"]]
    assert rerank["type"] == "GENERATION"
    assert rerank["usageDetails"] == {"input": 50, "output": 5, "total": 55}
    assert rerank["costDetails"] == pytest.approx({"input": 0.01, "output": 0.02, "total": 0.03})
    assert rerank["calculatedTotalCost"] == pytest.approx(0.03)  # provided cost wins over the model price
    assert trace["totalCost"] == pytest.approx(0.0345)

    failing = by_id[ids["failing"]]
    assert (failing["level"], failing["statusMessage"]) == ("ERROR", "tool exploded")

    scores = {s["name"]: s for s in trace["scores"]}
    prefix = "js-" if "js-helpfulness" in scores else "legacy-"
    helpful, correct, tone = (scores[prefix + n] for n in ("helpfulness", "correct", "tone"))
    assert (helpful["dataType"], helpful["value"], helpful["comment"]) == ("NUMERIC", 0.9, "good")
    assert (correct["dataType"], correct["value"], correct["observationId"]) == (
        "BOOLEAN",
        1,
        ids["summarise"],
    )
    assert (tone["dataType"], tone["stringValue"]) == ("CATEGORICAL", "friendly")
    return by_id


def _check_prompts(server, ids: dict) -> None:
    prompt = ids["prompt"]
    assert prompt["created"] == [1, 2]
    # what the SDK fetched and compiled
    assert prompt["production"]["version"] == 1
    assert prompt["production"]["compiled"] == "Hello Ada, v1"
    assert prompt["production"]["config"] == {"temperature": 0.1}
    assert prompt["staging"] == {"version": 2, "compiled": "Hi Ada from Oslo, v2"}
    assert prompt["by_version"]["version"] == 1
    assert "production" in prompt["by_version"]["labels"]
    chat = ids["chat_prompt"]
    assert chat["version"] == 1
    assert chat["compiled"][0] == {"role": "system", "content": "You are a pirate."}
    assert chat["compiled"][-1] == {"role": "user", "content": "where?"}
    # and what the server holds
    v1 = _get(server, f"/api/public/v2/prompts/{prompt['name']}", version=1)
    assert v1["prompt"] == "Hello {{name}}, v1"
    staging = _get(server, f"/api/public/v2/prompts/{prompt['name']}", label="staging")
    assert staging["version"] == 2 and "latest" in staging["labels"]


def _check_dataset(server, ids: dict) -> dict:
    dataset = ids["dataset"]
    assert dataset["fetched_items"] == sorted(dataset["created_items"])
    listed = _get(server, "/api/public/dataset-items", datasetName=dataset["name"])["data"]
    by_item = {it["id"]: it for it in listed}
    assert set(by_item) == set(dataset["created_items"])
    first = by_item[dataset["created_items"][0]]
    assert (first["input"], first["expectedOutput"], first["metadata"]) == (
        {"question": "2+2"},
        {"answer": "4"},
        {"i": 0},
    )
    meta = _get(server, f"/api/public/v2/datasets/{dataset['name']}")
    assert meta["metadata"] == {"team": "qa"}
    return meta


def _check_media(server, ids: dict, observation: dict) -> None:
    ref = observation["input"]["image"]
    assert ref.startswith("@@@langfuseMedia:type=image/png|id=") and ref.endswith("@@@")
    media_id = ref.split("id=", 1)[1].split("|", 1)[0]
    media = _get(server, f"/api/public/media/{media_id}")
    png = base64.b64decode(ids["png_b64"])
    assert (media["contentType"], media["contentLength"]) == ("image/png", len(png))
    blob = httpx.get(media["url"], timeout=30)
    assert blob.status_code == 200 and blob.content == png
    # the SDK resolved the reference back to the same bytes
    assert ids["media_resolved"]["image"] == f"data:image/png;base64,{ids['png_b64']}"


def test_otel_sdks_round_trip(server):
    """@langfuse/tracing + @langfuse/otel + @langfuse/client: every flow, read back through the API."""
    ids = run_node(server, "otel_sdk.mjs")
    by_id = _check_trace(server, ids, user="js-user-1", tags=["js", "otel"])
    trace = _get(server, f"/api/public/traces/{ids['trace_id']}")
    assert trace["name"] == "js-pipeline"
    assert trace["sessionId"].startswith("js-session-")
    assert by_id[ids["root"]]["parentObservationId"] is None
    assert by_id[ids["retrieve"]]["parentObservationId"] == ids["root"]
    assert by_id[ids["failing"]]["type"] == "TOOL"
    # an exception thrown inside startActiveObservation: ERROR with the exception's message
    assert (by_id[ids["throws"]]["level"], by_id[ids["throws"]]["statusMessage"]) == ("ERROR", "boom inside")
    assert len(by_id) == 7 and ids["read_trace"] == {"name": "js-pipeline", "observations": 7, "scores": 3}

    _check_otel_extras(server, ids["extras"])

    _check_prompts(server, ids)
    composed = ids["prompt"]["composed"]
    assert composed["prompt"] == "Hi {{name}} from {{place}}, v2 Answer briefly."  # resolved by label
    assert composed["compiled"] == "Hi Ada from Oslo, v2 Answer briefly."
    assert composed["commitMessage"] == "compose with staging"
    (session_score,) = _get(server, "/api/public/v2/scores", name="js-session-score")["data"]
    assert (session_score["sessionId"], session_score["traceId"]) == (trace["sessionId"], None)
    assert ids["api"]["prompt.update"] == {"ok": True, "value": 2}  # production label moved to v2
    linked = _get(server, f"/api/public/observations/{ids['prompted']['id']}")
    assert (linked["promptName"], linked["promptVersion"]) == (ids["prompt"]["name"], 1)
    assert linked["promptId"]

    _check_dataset(server, ids)
    _check_media(server, ids, by_id[ids["with_media"]])
    _check_dataset_file(server, ids)

    # a dataset as of a past instant, and an experiment pinned to that version
    versioned = ids["versioned"]
    item_a, item_b = f"{versioned['name']}-a", f"{versioned['name']}-b"
    assert versioned["past"] == [[item_a, {"v": 1}, "one"]]
    assert versioned["now"] == [[item_a, {"v": 2}, "two"], [item_b, {"v": 3}, None]]
    assert versioned["outputs"] == [1]
    pinned = _get(server, f"/api/public/datasets/{versioned['name']}/runs/{versioned['run']}")
    assert pinned["metadata"] == {"dataset_version": versioned["at"]}
    assert [ri["datasetItemId"] for ri in pinned["datasetRunItems"]] == [item_a]

    # experiment on the dataset: one run, its items linked to the experiment traces, item and run scores
    exp = ids["experiment"]
    assert exp["evaluations"] == [[1], [1], [1]]
    run = _get(server, f"/api/public/datasets/{ids['dataset']['name']}/runs/{exp['run_name']}")
    assert run["id"] == exp["dataset_run_id"]
    assert run["description"] == "experiment from js"
    assert sorted(ri["traceId"] for ri in run["datasetRunItems"]) == sorted(exp["trace_ids"])
    assert sorted(ri["datasetItemId"] for ri in run["datasetRunItems"]) == sorted(
        ids["dataset"]["created_items"]
    )
    for trace_id in exp["trace_ids"]:
        item_trace = _get(server, f"/api/public/traces/{trace_id}")
        assert item_trace["name"] == "experiment-item-run"
        assert item_trace["environment"] == "sdk-experiment"
        assert item_trace["output"]["answer"] in ("4", "6", "an attachment")
        assert [s["name"] for s in item_trace["scores"]] == ["exact"]
    run_scores = _get(server, "/api/public/v2/scores", datasetRunId=exp["dataset_run_id"])["data"]
    assert [(s["name"], s["value"]) for s in run_scores] == [("run-mean", 3)]
    # experiment on local data: a trace per item with the evaluator's score
    (local_trace_id,) = ids["local_experiment"]["trace_ids"]
    local = _get(server, f"/api/public/traces/{local_trace_id}")
    assert (local["input"], local["output"]) == ("a", "A")
    assert [(s["name"], s["value"]) for s in local["scores"]] == [("same", 1)]

    # the SDK's generated API client on the read routes
    api = ids["api"]
    for name in (
        "traces.list",
        "observations.v2",
        "observations.v1",
        "sessions.get",
        "scores.v2",
        "datasets.getRuns",
        "datasetItems.list",
        "datasetRunItems.list",
        "prompts.list",
        "media.get",
    ):
        assert api[name]["ok"], (name, api[name])
    assert ids["trace_id"] in api["traces.list"]["value"]
    assert api["observations.v2"]["value"] == sorted(by_id) == api["observations.v1"]["value"]
    assert api["sessions.get"]["value"] == [ids["trace_id"]]
    assert api["scores.v2"]["value"] == ["js-correct", "js-helpfulness", "js-tone"]
    assert api["datasets.getRuns"]["value"] == [exp["run_name"]]
    assert api["datasetRunItems.list"]["value"] == sorted(ids["dataset"]["created_items"])
    assert api["prompts.list"]["value"][0]["versions"] == [1, 2]
    assert api["media.get"]["value"]["contentType"] == "image/png"
    _check_experiments_api(server, ids)
    # the server's 404s in Langfuse's shape: the SDK falls back to the given prompt and raises typed errors
    assert api["prompt.fallback"] == {"ok": True, "value": {"isFallback": True, "compiled": "fallback used"}}
    for name in ("trace.missing", "dataset.missing"):
        assert (api[name]["ok"], api[name]["status"]) == (False, 404), api[name]
        assert "NotFoundError" in api[name]["error"] and "LangfuseNotFoundError" in api[name]["error"]


def _check_dataset_file(server, ids: dict) -> None:
    """A LangfuseMedia in a dataset item: uploaded for the item, listed in mediaReferences, hydrated by get."""
    file_info = ids["dataset_file"]
    assert file_info["reference_class"] == "LangfuseMediaReference"
    assert (file_info["content_type"], file_info["bytes_b64"]) == ("text/plain", ids["attachment_b64"])
    item_id = next(i for i in ids["dataset"]["created_items"] if i.endswith("-file"))
    item = _get(server, f"/api/public/dataset-items/{item_id}")
    assert item["input"]["doc"] == file_info["reference"]  # stored as the reference string
    (ref,) = item["mediaReferences"]
    assert (ref["field"], ref["jsonPath"], ref["referenceString"]) == (
        "input",
        "$['doc']",
        file_info["reference"],
    )
    assert ref["media"]["mediaId"] == file_info["media_id"]
    assert httpx.get(ref["media"]["url"], timeout=30).content == base64.b64decode(ids["attachment_b64"])


def _check_experiments_api(server, ids: dict) -> None:
    """api.experiments.list / listItems (api-semantics 7.4) find the dataset experiment the SDK just ran."""
    api, exp = ids["api"], ids["experiment"]
    dataset = _get(server, f"/api/public/v2/datasets/{ids['dataset']['name']}")
    assert api["experiments.list"]["ok"], api["experiments.list"]
    assert api["experiments.list"]["value"] == [
        {
            "id": exp["dataset_run_id"],
            "name": exp["run_name"],
            "itemCount": 3,
            "datasetId": dataset["id"],
            "description": "experiment from js",
        }
    ]
    assert api["experiments.listItems"]["ok"], api["experiments.listItems"]
    items = api["experiments.listItems"]["value"]
    assert sorted(it["traceId"] for it in items) == sorted(exp["trace_ids"])
    assert [it["itemId"] for it in items] == sorted(ids["dataset"]["created_items"])
    assert {(it["experimentId"], it["datasetId"]) for it in items} == {(exp["dataset_run_id"], dataset["id"])}
    first = items[0]
    assert (first["input"], first["output"], first["expectedOutput"]) == (
        {"question": "2+2"},
        {"answer": "4"},
        {"answer": "4"},
    )


def _check_otel_extras(server, extras: dict) -> None:
    """Every observation type, observe(), propagated version/environment, trace IO, explicit parents."""
    trace = _get(server, f"/api/public/traces/{extras['trace_id']}")
    assert (trace["name"], trace["version"], trace["environment"]) == ("js-extras", "app-v2", "staging-js")
    assert (trace["input"], trace["output"]) == ({"from": "setActiveTraceIO"}, {"done": True})
    by_id = {o["id"]: o for o in trace["observations"]}
    assert by_id[extras["root"]]["type"] == "AGENT"
    for kind, obs_id in extras["types"].items():
        obs = by_id[obs_id]
        assert (obs["type"], obs["name"], obs["input"]) == (kind.upper(), f"as-{kind}", {"type": kind})
        assert (obs["parentObservationId"], obs["environment"]) == (extras["root"], "staging-js")
    observed = next(o for o in by_id.values() if o["name"] == "observed-fn")
    assert (observed["type"], observed["input"], observed["output"]) == ("CHAIN", "why?", "answer to why?")
    assert observed["metadata"]["via"] == "observe"
    streamed = by_id[extras["streamed"]["id"]]
    assert streamed["version"] == "gen-v1"
    assert streamed["startTime"] == extras["streamed"]["start"]
    started = datetime.fromisoformat(extras["streamed"]["start"].replace("Z", "+00:00"))
    first_token = datetime.fromisoformat(streamed["completionStartTime"].replace("Z", "+00:00"))
    assert (first_token - started).total_seconds() == pytest.approx(0.5)
    assert streamed["usageDetails"] == {"input": 10, "output": 20, "cache_read_input_tokens": 4, "total": 34}
    # createTraceId(seed) is deterministic, and a parent span context from elsewhere is kept as given
    seeded = _get(server, f"/api/public/traces/{extras['seeded_trace_id']}")
    assert [(o["id"], o["parentObservationId"]) for o in seeded["observations"]] == [
        (extras["detached"], "a1b2c3d4e5f60718")
    ]


def test_legacy_langfuse_sdk_round_trip(server):
    """The older `langfuse` 3.x package (ingestion API): every flow, read back through the API."""
    ids = run_node(server, "legacy_sdk.mjs")
    by_id = _check_trace(server, ids, user="legacy-user", tags=["js", "legacy"])
    trace = _get(server, f"/api/public/traces/{ids['trace_id']}")
    assert (trace["name"], trace["release"], trace["version"]) == ("legacy-pipeline", "r-1", "v-1")
    assert trace["sessionId"].startswith("legacy-session-")
    assert by_id[ids["retrieve"]]["parentObservationId"] is None
    event = by_id[ids["event"]]
    assert (event["type"], event["level"], event["statusMessage"]) == ("EVENT", "WARNING", "cold cache")
    assert ids["read_trace"] == {"name": "legacy-pipeline", "observations": 7, "scores": 3}

    _check_prompts(server, ids)
    linked = by_id[ids["prompted"]]
    assert (linked["promptName"], linked["promptVersion"]) == (ids["prompt"]["name"], 1)

    _check_dataset(server, ids)
    _check_media(server, ids, by_id[ids["with_media"]])

    _check_legacy_extras(server, ids)

    # the 3.x way to run an experiment: item.link(observation, runName) per item
    run_ids = ids["run"]
    assert run_ids["fetched_items"] == sorted(ids["dataset"]["created_items"])
    run = _get(server, f"/api/public/datasets/{ids['dataset']['name']}/runs/{run_ids['name']}")
    assert run["description"] == "legacy run"
    assert run["metadata"] == {"model": "none"}
    linked_pairs = {(ri["traceId"], ri["observationId"]) for ri in run["datasetRunItems"]}
    assert linked_pairs == set(zip(run_ids["traces"], run_ids["observations"], strict=True))
    for trace_id in run_ids["traces"]:
        item_trace = _get(server, f"/api/public/traces/{trace_id}")
        assert [(s["name"], s["value"]) for s in item_trace["scores"]] == [("exact", 1)]


def _check_legacy_extras(server, ids: dict) -> None:
    """Client-chosen ids and timestamps, a public trace, the fetch* helpers, updatePrompt, fetchMedia."""
    extras = ids["extras"]
    custom = _get(server, f"/api/public/traces/{extras['custom_trace_id']}")
    assert (custom["name"], custom["timestamp"], custom["public"]) == ("custom-ids", extras["t0"], True)
    assert custom["metadata"] == {"second": "update"}
    by_id = {o["id"]: o for o in custom["observations"]}
    span, gen = by_id[f"{extras['custom_trace_id']}-span"], by_id[f"{extras['custom_trace_id']}-gen"]
    assert span["startTime"] == extras["t0"]
    assert gen["parentObservationId"] == span["id"]
    assert (gen["startTime"], gen["completionStartTime"], gen["endTime"]) == (
        extras["t0"].replace("00.000Z", "00.100Z"),
        extras["t0"].replace("00.000Z", "00.300Z"),
        extras["t0"].replace("00.000Z", "00.900Z"),
    )
    assert gen["timeToFirstToken"] == pytest.approx(0.2) and gen["latency"] == pytest.approx(0.8)
    # OpenAI-style usage names from 3.x map to input/output/total, priced with gpt-4o
    assert gen["usageDetails"] == {"input": 7, "output": 3, "total": 10}
    assert gen["calculatedTotalCost"] == pytest.approx(7 * 2.5e-6 + 3 * 1e-5)

    # LangfuseWeb (public key only) scored the generation
    (web,) = _get(server, "/api/public/v2/scores", name="web-feedback")["data"]
    assert (web["traceId"], web["observationId"], web["value"]) == (ids["trace_id"], ids["summarise"], 1)
    assert web["comment"] == "thumbs up"

    api = extras["api"]
    assert all(call["ok"] for call in api.values()), api
    assert ids["trace_id"] in api["fetchTraces"]["value"]
    assert api["fetchObservations"]["value"] == ["prompted", "rerank", "summarise"]
    assert _get(server, f"/api/public/traces/{ids['trace_id']}")["sessionId"] in api["fetchSessions"]["value"]
    assert api["getDatasetRuns"]["value"] == [ids["run"]["name"]]
    assert api["getDatasetItem"]["value"] == {"answer": "4"}
    assert api["updatePrompt"]["value"] == 2  # the production label moved to version 2
    assert api["fetchMedia"]["value"] == {"contentType": "image/png", "contentLength": 70}
