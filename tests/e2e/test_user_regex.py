"""User-supplied regexes over a real server: a model pattern built for catastrophic backtracking cannot stall
ingestion or the health check (it is matched by RE2 in linear time), and patterns RE2 cannot run are refused
with a 400 in Langfuse's error shape.

No wall-clock assertions: with a backtracking engine a 34-character evil model name keeps the writer (and,
holding the GIL, the whole process) busy for hours, so the requests below simply time out and the test fails.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

pytestmark = pytest.mark.slow

EVIL_PATTERN = "^(a+)+$"
EVIL_NAME = "a" * 34 + "!"
TIMEOUT = httpx.Timeout(20.0)


def _generation(model: str) -> dict:
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": str(uuid.uuid4()),
        "type": "generation-create",
        "timestamp": now,
        "body": {
            "id": str(uuid.uuid4()),
            "traceId": str(uuid.uuid4()),
            "name": "evil",
            "startTime": now,
            "model": model,
            "usageDetails": {"input": 10, "output": 5},
        },
    }


def test_evil_model_pattern_does_not_stall_ingestion_or_health(server) -> None:
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=TIMEOUT) as client:
        r = client.post(
            "/api/public/models",
            json={"modelName": "evil", "matchPattern": EVIL_PATTERN, "inputPrice": 1},
        )
        assert r.status_code == 200, r.text
        model_id = r.json()["id"]

        gen = _generation(EVIL_NAME)
        r = client.post("/api/public/ingestion", json={"batch": [gen]})
        assert r.status_code == 207, r.text
        assert r.json()["successes"][0]["id"] == gen["id"]
        assert client.get("/api/public/health").status_code == 200

        # the evil model name did not match, a matching one does: the pattern still works as a regex
        good = _generation("a" * 40)
        assert client.post("/api/public/ingestion", json={"batch": [good]}).status_code == 207
        evil_obs = client.get(f"/api/public/observations/{gen['body']['id']}")
        good_obs = client.get(f"/api/public/observations/{good['body']['id']}")
        assert evil_obs.status_code == 200 and good_obs.status_code == 200
        assert evil_obs.json()["modelId"] is None
        assert good_obs.json()["modelId"] == model_id
        assert client.get("/api/public/health").status_code == 200


def test_patterns_the_linear_engine_cannot_run_are_a_400(server) -> None:
    refused = [
        ("^(gpt)-\\1$", "back-reference"),
        ("^gpt(?=-4o)", "look-ahead/look-behind"),
        ("(?<!x)gpt", "look-ahead/look-behind"),
    ]
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=TIMEOUT) as client:
        before = client.get("/api/public/models").json()["meta"]["totalItems"]
        for pattern, fragment in refused:
            r = client.post(
                "/api/public/models", json={"modelName": "m", "matchPattern": pattern, "inputPrice": 1}
            )
            assert r.status_code == 400, r.text
            body = r.json()
            assert set(body) >= {"message", "error"}
            assert fragment in body["message"] and "not supported" in body["message"], body
        assert client.get("/api/public/models").json()["meta"]["totalItems"] == before
