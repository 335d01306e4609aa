"""Every date the API writes is ISO 8601 with a four-digit year, also before year 1000 (SQLite and Postgres)."""

from __future__ import annotations

import uuid

EARLY = "0087-02-01T00:00:00.000Z"


def test_year_87_is_written_with_four_digits(api) -> None:
    trace_id, obs_id, score_id = (str(uuid.uuid4()) for _ in range(3))
    batch = [
        {
            "id": str(uuid.uuid4()),
            "type": "trace-create",
            "timestamp": "0087-02-01T00:00:00Z",
            "body": {"id": trace_id, "name": "ancient", "timestamp": "0087-02-01T00:00:00Z"},
        },
        {
            "id": str(uuid.uuid4()),
            "type": "span-create",
            "timestamp": "0087-02-01T00:00:00Z",
            "body": {
                "id": obs_id,
                "traceId": trace_id,
                "name": "s",
                "startTime": "0087-02-01T00:00:00Z",
                "endTime": "0087-02-01T00:00:01.5Z",
            },
        },
        {
            "id": str(uuid.uuid4()),
            "type": "score-create",
            "timestamp": "0087-02-01T00:00:00Z",
            "body": {
                "id": score_id,
                "traceId": trace_id,
                "name": "q",
                "value": 1,
                "timestamp": "0087-02-01T00:00:00Z",
            },
        },
    ]
    r = api.ingest(batch)
    assert r.status_code == 207 and len(r.json()["successes"]) == 3, r.text

    trace = api.client.get(f"/api/public/traces/{trace_id}", auth=api.auth).json()
    assert trace["timestamp"] == EARLY
    obs = api.client.get(f"/api/public/observations/{obs_id}", auth=api.auth).json()
    assert obs["startTime"] == EARLY and obs["endTime"] == "0087-02-01T00:00:01.500Z"
    listed = api.client.get("/api/public/traces", auth=api.auth).json()["data"]
    assert [t["timestamp"] for t in listed if t["id"] == trace_id] == [EARLY]
    score = api.client.get(f"/api/public/v2/scores/{score_id}", auth=api.auth)
    assert score.status_code == 200, score.text
    assert score.json()["timestamp"] == EARLY


def test_every_formatter_pads_the_year() -> None:
    from lightfuse.api.common import iso as api_iso
    from lightfuse.services.common.resources import iso as resource_iso
    from lightfuse.services.common.rows import iso_ms
    from lightfuse.services.pricing.models import _ms_to_iso
    from lightfuse.services.prompts.prompts import _iso as prompt_iso
    from lightfuse.services.tracing.scores import _iso as score_iso
    from lightfuse.web.formatting import ts

    ms = -59419008000000 + 7  # 0087-02-01T00:00:00.007Z
    for fmt in (api_iso, _ms_to_iso, prompt_iso, resource_iso, iso_ms, score_iso):
        assert fmt(ms) == "0087-02-01T00:00:00.007Z", fmt
    assert iso_ms(-1) == "1969-12-31T23:59:59.999Z"
    assert ts(ms) == "0087-02-01 00:00:00" and ts(ms, seconds=False) == "0087-02-01 00:00"
