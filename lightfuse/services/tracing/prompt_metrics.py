"""The prompt page's per-version metrics: generations linked to a prompt name (by name and version), their
median latency, tokens and cost, and the scores of their traces. Two aggregate queries per prompt page,
whatever the number of versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from lightfuse.services.common.rows import iso_ms
from lightfuse.store.sql.tracing import prompt_metrics as store


class PromptMetrics:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def per_version(self, project_id: str, name: str) -> dict[int, dict[str, Any]]:
        """version -> {generations, firstUsedAt, lastUsedAt, medianLatencyMs, medianInputTokens,
        medianOutputTokens, medianCost, totalCost, scores: [{name, avg, count}]}; versions never used are
        absent (see :func:`empty`)."""
        with self._engine.connect() as conn:
            rows = store.version_metrics(conn, project_id, name)
            score_rows = store.version_scores(conn, project_id, name)
        out = {int(r["version"]): _metrics(r) for r in rows}
        for s in score_rows:
            entry = out.setdefault(int(s["version"]), empty())
            entry["scores"].append({"name": s["name"], "avg": _num(s["avg"]), "count": int(s["count"])})
        return out


def empty() -> dict[str, Any]:
    return _metrics({"generations": 0})


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "generations": int(row["generations"]),
        "firstUsedAt": iso_ms(row.get("first_used")),
        "lastUsedAt": iso_ms(row.get("last_used")),
        "medianLatencyMs": _num(row.get("median_latency_ms")),
        "medianInputTokens": _num(row.get("median_input_tokens")),
        "medianOutputTokens": _num(row.get("median_output_tokens")),
        "medianCost": _num(row.get("median_cost")),
        "totalCost": _num(row.get("total_cost")),
        "scores": [],
    }


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
