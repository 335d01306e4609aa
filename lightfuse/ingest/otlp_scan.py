"""One pass over a span's attribute keys, shared by all field extractors.

Several mappings work on key *families* (`gen_ai.usage.*`, `gen_ai.request.*`, flattened
message keys, dotted metadata keys). Scanning the attributes once and bucketing them keeps the
per-span mapping cost flat: without it every extractor walked every key again.

Classifying a key takes several string operations, but keys repeat across spans (every span of
one instrumentation library uses the same names), so the classification is memoised per key.
The memo is bounded because keys come from clients and may be unique per span.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightfuse.ingest.otlp_io import FLAT_PREFIXES, IO_KEYS, IO_PREFIXES, FlatKeys
from lightfuse.ingest.otlp_util import dumps_str

# Key kinds. "copied" means the key also goes into the metadata `attributes` copy.
_COPY = 0  # nothing special
_DROP = 1  # IO key: not copied
_USAGE = 2  # gen_ai.usage.* / llm.token_count.*: usage counter, copied; arg = suffix
_PARAM = 3  # gen_ai.request.* / llm.invocation_parameters.*: model parameter, copied; arg = name
_FLAT = 4  # flattened message key: not copied; arg = (prefix, rest)
_META = 5  # dotted metadata key: not copied
_META_COPY = 6  # langfuse.metadata.<k>: metadata, copied (not an IO prefix)
_TRACE_META = 7  # langfuse.trace.metadata.<k>: metadata + trace update, not copied
_TRACE_META_BARE = 8  # langfuse.trace.metadata: trace update, not copied

_MEMO_LIMIT = 20_000
_memo: dict[str, tuple[int, Any]] = {}


def _classify(key: str) -> tuple[int, Any]:
    if key.startswith("gen_ai.usage."):
        return _USAGE, key[13:]
    if key.startswith("llm.token_count."):
        return _USAGE, key[16:]
    if key.startswith("gen_ai.request."):
        return _PARAM, key[15:]
    if key.startswith("llm.invocation_parameters."):
        return _PARAM, key[26:]
    for prefix in FLAT_PREFIXES:
        if key.startswith(prefix + "."):
            return _FLAT, (prefix, key[len(prefix) + 1 :])
    if key.startswith("langfuse.trace.metadata"):
        return (_TRACE_META, None) if key.startswith("langfuse.trace.metadata.") else (_TRACE_META_BARE, None)
    if key.startswith(("langfuse.observation.metadata.", "ai.telemetry.metadata.")):
        return _META, None
    if key.startswith("langfuse.metadata."):
        return _META_COPY, None
    if key in IO_KEYS or key.startswith(IO_PREFIXES):
        return _DROP, None
    return _COPY, None


class AttributeScan:
    """Attribute keys of one span grouped by family, plus the metadata `attributes` copy.

    Families a span does not use share immutable empty values; treat every field as read-only.
    """

    __slots__ = ("filtered", "usage", "params", "flat", "meta", "trace_meta")

    def __init__(
        self,
        filtered: dict[str, str] | None,
        usage: Sequence[tuple[str, Any]],
        params: Sequence[tuple[str, Any]],
        flat: FlatKeys,
        meta: Sequence[tuple[str, Any]],
        trace_meta: bool,
    ) -> None:
        self.filtered = filtered  # the `attributes` metadata copy, None when not kept
        self.usage = usage  # (suffix after gen_ai.usage. / llm.token_count., value)
        self.params = params  # (name after gen_ai.request. or llm.invocation_parameters., value)
        self.flat = flat  # flattened message keys, see otlp_io.unflatten
        self.meta = meta  # (full key, value) under a dotted metadata prefix
        self.trace_meta = trace_meta  # any key starting with langfuse.trace.metadata


_NONE: tuple = ()
_NO_FLAT: FlatKeys = {}


def scan_attributes(attrs: dict[str, Any], *, keep_filtered: bool) -> AttributeScan:
    filtered: dict[str, str] | None = {} if keep_filtered else None
    usage: list[tuple[str, Any]] | None = None
    params: list[tuple[str, Any]] | None = None
    flat: FlatKeys | None = None
    meta: list[tuple[str, Any]] | None = None
    trace_meta = False
    memo = _memo
    for key, value in attrs.items():
        info = memo.get(key)
        if info is None:
            info = _classify(key)
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[key] = info
        kind = info[0]
        if kind == _COPY:
            if filtered is not None:
                # str() of an int is its JSON text and far cheaper than a JSON encoder call.
                t = type(value)
                filtered[key] = value if t is str else (str(value) if t is int else dumps_str(value))
            continue
        if kind == _DROP:
            continue
        if kind == _USAGE:
            if usage is None:
                usage = []
            usage.append((info[1], value))
        elif kind == _PARAM:
            if params is None:
                params = []
            params.append((info[1], value))
        elif kind == _FLAT:
            if flat is None:
                flat = {}
            prefix, rest = info[1]
            group = flat.get(prefix)
            if group is None:
                group = flat[prefix] = []
            group.append((rest, value))
            continue
        elif kind == _TRACE_META_BARE:
            trace_meta = True
            continue
        else:  # _META, _TRACE_META, _META_COPY
            if meta is None:
                meta = []
            meta.append((key, value))
            if kind == _TRACE_META:
                trace_meta = True
            if kind != _META_COPY:
                continue
        if filtered is not None:
            t = type(value)
            filtered[key] = value if t is str else (str(value) if t is int else dumps_str(value))
    return AttributeScan(
        filtered, usage or _NONE, params or _NONE, flat or _NO_FLAT, meta or _NONE, trace_meta
    )
