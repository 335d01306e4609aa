"""Merging one entity's new events into its stored row, replaying its event log when they arrive late.

The event log keeps bodies without input/output (the bulk of the bytes). That loses nothing: the only IO
rule is "the latest truthy value wins", and each row records the envelope timestamp of the event that
supplied its input and its output. A replay folds the logged events (without IO) plus the new events (with
IO), then takes IO from whichever is later: the row's or the new events' best.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

from lightfuse.services.ingestion.events import ValidEvent
from lightfuse.services.ingestion.merge import (
    clamp_end_time,
    is_truthy_io,
    merge_observation,
    merge_score,
    merge_trace,
    order_events,
)

IO_KEYS = ("input", "output")
# each IO column with the column holding the envelope timestamp of the event that supplied it
_IO_TS_KEYS = (("input", "input_event_ts"), ("output", "output_event_ts"))
_IMMUTABLE = {
    "trace": ("timestamp", "created_at", "environment"),
    "observation": ("trace_id", "start_time", "created_at", "environment"),
    "score": ("timestamp", "trace_id", "created_at", "environment"),
}


def log_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the event log keeps it."""
    if "input" in body or "output" in body:
        body = body.copy()  # a copy and two pops: several times cheaper than a filtering comprehension
        body.pop("input", None)
        body.pop("output", None)
    return body


def needs_replay(stored: dict | None, events: list[ValidEvent]) -> bool:
    return stored is not None and min(e.timestamp for e in events) < stored.get("last_event_ts", 0)


def _latest_io(events: list[ValidEvent]) -> dict[str, tuple[int, Any]]:
    latest: dict[str, tuple[int, Any]] = {}
    for ev in order_events(events):
        for key in IO_KEYS:
            value = ev.body.get(key)
            if is_truthy_io(value):
                latest[key] = (ev.timestamp, value)
    return latest


def _merge(kind: str, base, events, project_id: str, now: int, get_config) -> dict | None:
    # the row TypedDicts describe the merge's output; the writer handles every kind as a plain dict
    if kind == "trace":
        return cast(dict, merge_trace(base, events, project_id, now))
    if kind == "observation":
        return cast(dict, merge_observation(base, events, project_id, now, lambda: str(uuid.uuid4())))
    return cast(dict | None, merge_score(base, events, project_id, now, get_config))


def merge_entity(
    kind: str,
    stored: dict | None,
    new_events: list[ValidEvent],
    history: list[ValidEvent] | None,
    project_id: str,
    now: int,
    get_config: Callable[[str], dict | None],
) -> dict | None:
    """The entity's row after ``new_events``; ``history`` (the logged events, IO stripped) means replay."""
    if history is None:
        row = _merge(kind, stored, new_events, project_id, now, get_config)
        if row is None or kind == "score":
            return row
        latest = _latest_io(new_events)
        for key, ts_key in _IO_TS_KEYS:
            new = latest.get(key)
            row[ts_key] = new[0] if new is not None else (stored or {}).get(ts_key)
        return row

    fresh = {ev.id: ev for ev in new_events}
    events = [fresh.pop(ev.id, ev) for ev in history] + list(fresh.values())
    row = _merge(kind, None, events, project_id, now, get_config)
    if row is None:
        return None
    if stored is not None:
        for key in _IMMUTABLE[kind]:
            row[key] = stored[key]
        if kind == "observation":
            # the replay clamped the end to the replayed start; the stored start is the one that stays
            clamp_end_time(row)
    if kind == "score":
        return row
    latest = _latest_io(new_events)
    for key, ts_key in _IO_TS_KEYS:
        stored_ts = (stored or {}).get(ts_key)
        new = latest.get(key)
        if new is not None and (stored_ts is None or new[0] >= stored_ts):
            row[key], row[ts_key] = new[1], new[0]
        else:
            row[key] = (stored or {}).get(key)
            row[ts_key] = stored_ts
    return row
