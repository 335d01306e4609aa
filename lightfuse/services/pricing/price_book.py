"""Model matching, pricing-tier selection and usage/cost enrichment (api-semantics 2.5).

Everything here is pure: no database, no HTTP. The store hands us ``ModelPrice`` objects, ingestion hands us
merged ``ObservationRow`` dicts, and we return the enriched row.

Hot-path notes: ``PriceBook.match`` is called once per observation write. A project sees a handful of distinct
model strings, so results (including "no match") are memoised in a bounded LRU per book; a book is immutable,
so the store builds a fresh one whenever a project's models change instead of invalidating entries.

Out of scope for now: tokenizer-based usage inference. Langfuse tokenizes input/output when a model matched but
no usage and no cost were provided; we compute no usage in that case (usage_details stays empty, so no cost).
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, TypeGuard

from lightfuse.services.common.rows import ObservationRow
from lightfuse.services.common.safe_regex import PatternSet, warn_unusable_pattern
from lightfuse.services.pricing.pg_regex import compile_match_pattern, compile_usage_pattern, translate_are

__all__ = [
    "ModelPrice",
    "PriceBook",
    "PricingTier",
    "compile_match_pattern",
    "compile_usage_pattern",
    "default_tier_prices",
    "enrich_observation",
    "load_builtin_models",
    "observation_enrichment",
    "select_tier",
]


# --- Data model ---------------------------------------------------------------------------------------------

# (usage_details, model_parameters, metadata) -> does the tier condition hold?
ConditionCheck = Callable[[Mapping[str, float], Mapping[str, Any], Mapping[str, Any]], bool]


@dataclass(frozen=True)
class PricingTier:
    id: str
    name: str
    is_default: bool
    priority: int
    conditions: list[dict[str, Any]]
    prices: dict[str, float]
    # Prices as Decimals and conditions as predicates, built once: redoing either per observation would
    # dominate enrichment cost.
    decimal_prices: dict[str, Decimal] = field(init=False, repr=False, compare=False)
    checks: tuple[ConditionCheck, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(_compile_condition(c) for c in self.conditions))
        # repr() gives the shortest round-tripping text, i.e. the decimal the price was written as
        # (2.5e-06 -> 0.0000025), which is what a NUMERIC column would hold.
        object.__setattr__(
            self, "decimal_prices", {k: Decimal(repr(float(v))) for k, v in self.prices.items()}
        )


@dataclass(frozen=True)
class ModelPrice:
    id: str
    project_id: str | None  # None = built-in ("Langfuse managed")
    model_name: str
    match_pattern: str
    start_date: int | None  # epoch ms
    unit: str | None
    tokenizer_id: str | None
    tokenizer_config: Any
    created_at: int  # epoch ms
    updated_at: int  # epoch ms
    pricing_tiers: list[PricingTier]
    default_tier: PricingTier | None = field(init=False, repr=False, compare=False)
    # Non-default tiers in evaluation order (ascending priority).
    conditional_tiers: tuple[PricingTier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        default = next((t for t in self.pricing_tiers if t.is_default), None)
        ordered = tuple(sorted((t for t in self.pricing_tiers if not t.is_default), key=lambda t: t.priority))
        object.__setattr__(self, "default_tier", default)
        object.__setattr__(self, "conditional_tiers", ordered)


# --- Built-in table -----------------------------------------------------------------------------------------


def _iso_to_ms(value: str) -> int:
    # fromisoformat in 3.11 accepts the trailing "Z" used throughout the table.
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def _tier_from_json(raw: Mapping[str, Any]) -> PricingTier:
    return PricingTier(
        id=raw["id"],
        name=raw["name"],
        is_default=bool(raw["isDefault"]),
        priority=int(raw["priority"]),
        conditions=list(raw.get("conditions") or []),
        prices={k: float(v) for k, v in (raw.get("prices") or {}).items()},
    )


def _model_from_json(raw: Mapping[str, Any]) -> ModelPrice:
    start = raw.get("startDate")
    return ModelPrice(
        id=raw["id"],
        project_id=None,
        model_name=raw["modelName"],
        match_pattern=raw["matchPattern"],
        start_date=_iso_to_ms(start) if start else None,
        unit=raw.get("unit"),
        tokenizer_id=raw.get("tokenizerId"),
        tokenizer_config=raw.get("tokenizerConfig"),
        created_at=_iso_to_ms(raw["createdAt"]),
        updated_at=_iso_to_ms(raw["updatedAt"]),
        pricing_tiers=[_tier_from_json(t) for t in raw.get("pricingTiers") or []],
    )


@functools.cache
def _builtin_models() -> tuple[ModelPrice, ...]:
    text = (
        resources.files("lightfuse.services.pricing").joinpath("default_model_prices.json").read_text("utf-8")
    )
    return tuple(_model_from_json(m) for m in json.loads(text))


def load_builtin_models() -> list[ModelPrice]:
    """The packaged built-in price table (parsed once; the ModelPrice objects are shared and frozen)."""
    return list(_builtin_models())


_MISSING = object()


@functools.lru_cache(maxsize=8)
def _pattern_set(patterns: tuple[str, ...]) -> PatternSet:
    """The built-in patterns (each already checked by ``compile_match_pattern``) as one RE2 set, index = order."""
    return PatternSet([translate_are(p) for p in patterns])


class PriceBook:
    """One project's view of the price table: its own models first, then the built-ins.

    Immutable after construction; rebuild it when the project's models change.
    """

    def __init__(
        self,
        project_models: Iterable[ModelPrice] = (),
        builtin_models: Iterable[ModelPrice] | None = None,
        *,
        cache_size: int = 1024,
    ) -> None:
        builtins = _builtin_models() if builtin_models is None else tuple(builtin_models)
        models = [*project_models, *builtins]
        # Precedence (2.5 step 1): project-owned before built-in, then start_date DESC NULLS LAST. The
        # observation time is deliberately not compared. Ties keep input order (Postgres leaves them undefined).
        models.sort(
            key=lambda m: (m.project_id is None, m.start_date is None, -(m.start_date or 0)),
        )
        # Project patterns are user input: one RE2 each, tried in order. The built-ins (project_id None, all
        # after them in that order) are ours: one RE2 set finds every built-in that matches in one pass.
        self._candidates: list[tuple[Any, ModelPrice]] = []
        shared: list[ModelPrice] = []
        for model in models:
            try:
                matches = compile_match_pattern(model.match_pattern).matches
            except ValueError as exc:
                # A stored pattern we cannot translate, or that needs a backtracking engine (rows saved
                # before patterns were checked against RE2), never matches: skipping it beats failing
                # ingestion, and running it with Python's ``re`` would let it stall the writer thread.
                warn_unusable_pattern(f"model {model.id} matchPattern", model.match_pattern, exc)
                continue
            if model.project_id is None:
                shared.append(model)
            else:
                self._candidates.append((matches, model))
        self._shared_models = tuple(shared)
        self._shared_set = _pattern_set(tuple(m.match_pattern for m in shared)) if shared else None
        self._by_id = {m.id: m for m in models}
        self._cache: OrderedDict[str, ModelPrice | None] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._lock = threading.Lock()

    def get(self, model_id: str) -> ModelPrice | None:
        """Look a model up by id (e.g. to resolve a stored ``internal_model_id``)."""
        return self._by_id.get(model_id)

    def match(self, model_name: str | None) -> ModelPrice | None:
        """The model definition that prices ``model_name``, or None. Memoised, including misses."""
        if not model_name:
            return None
        cache = self._cache
        hit = cache.get(model_name, _MISSING)
        if hit is not _MISSING:
            try:
                cache.move_to_end(model_name)
            except KeyError:  # evicted by another thread between get and move; the value is still right
                pass
            return hit  # type: ignore[return-value]
        found = None
        for matches, model in self._candidates:
            if matches(model_name):
                found = model
                break
        if found is None and self._shared_set is not None:
            hits = self._shared_set.matching(model_name)
            if hits:
                found = self._shared_models[min(hits)]  # the set's order is the precedence order
        with self._lock:
            cache[model_name] = found
            while len(cache) > self._cache_size:
                cache.popitem(last=False)
        return found


# --- Tier selection -----------------------------------------------------------------------------------------

_COMPARATORS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def _is_number(value: Any) -> TypeGuard[int | float]:
    # bool is an int subclass but JSON true is not a count.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _attribute_string(value: Any) -> str | None:
    """Stringify a scalar the way a JavaScript String() would; non-scalars and null do not match."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return None


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # the common case; an ABC isinstance check costs ~10x more
        return value
    if value is None:  # as common (no model parameters), and as cheap to decide
        return {}
    if isinstance(value, str):  # model_parameters may arrive as the stored JSON text
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _never(usage: Mapping[str, float], params: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    return False


def _compile_condition(cond: Any) -> ConditionCheck:
    """Turn a stored condition into a predicate once, so per-observation work is just the comparison.

    Malformed conditions (which validation keeps out of new rows) become predicates that never hold.
    """
    if not isinstance(cond, Mapping):
        return _never
    if "usageDetailPattern" in cond:
        operator = cond.get("operator")
        compare = _COMPARATORS.get(operator) if isinstance(operator, str) else None
        threshold = cond.get("value")
        if compare is None or not _is_number(threshold):
            return _never
        try:
            regex = compile_usage_pattern(cond["usageDetailPattern"], bool(cond.get("caseSensitive")))
        except (ValueError, TypeError) as exc:
            warn_unusable_pattern("usageDetailPattern", cond["usageDetailPattern"], exc)
            return _never

        # Usage keys repeat ("input", "output", ...): remembering the answer per key (bounded) costs a dict
        # lookup where a call into RE2 costs ~2 us.
        known: dict[str, bool] = {}

        def key_matches(key: str) -> bool:
            hit = known.get(key)
            if hit is None:
                hit = regex.matches(key)
                if len(known) < 256:
                    known[key] = hit
            return hit

        def usage_check(
            usage: Mapping[str, float], params: Mapping[str, Any], meta: Mapping[str, Any]
        ) -> bool:
            return compare(sum(units for key, units in usage.items() if key_matches(key)), threshold)

        return usage_check

    source, key, values = cond.get("source"), cond.get("key"), cond.get("values")
    if cond.get("operator") != "in" or source not in ("model_parameters", "metadata"):
        return _never
    if not isinstance(values, (list, tuple)) or not isinstance(key, str):
        return _never
    accepted = frozenset(v for v in values if isinstance(v, str))
    from_params = source == "model_parameters"

    def attribute_check(
        usage: Mapping[str, float], params: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> bool:
        attrs = params if from_params else meta
        if key not in attrs:
            return False
        return _attribute_string(attrs[key]) in accepted

    return attribute_check


def select_tier(
    model: ModelPrice,
    usage_details: Mapping[str, float],
    model_parameters: Any = None,
    metadata: Any = None,
) -> PricingTier | None:
    """First conditional tier (ascending priority) whose conditions all hold, else the default tier.

    A tier with no conditions never matches (it would shadow everything after it).
    """
    if model.conditional_tiers:
        params = _as_mapping(model_parameters)
        meta = _as_mapping(metadata)
        for tier in model.conditional_tiers:
            if not tier.checks:
                continue
            for check in tier.checks:  # AND; a plain loop is measurably cheaper than all(<genexpr>)
                if not check(usage_details, params, meta):
                    break
            else:
                return tier
    return model.default_tier


def default_tier_prices(model: ModelPrice) -> dict[str, float]:
    """Prices of the model's default tier (what the read API reports as inputPrice/outputPrice/totalPrice)."""
    return dict(model.default_tier.prices) if model.default_tier is not None else {}


# --- Enrichment ---------------------------------------------------------------------------------------------


def _clean_usage(provided: Any) -> dict[str, float]:
    """Keep non-negative finite numbers; integral floats become ints (usage columns are integer counts)."""
    if not isinstance(provided, dict):
        return {}
    out: dict[str, float] = {}
    for key, value in provided.items():
        kind = type(value)
        if kind is int:  # exact type test: also excludes bool
            if value >= 0:
                out[key] = value
        elif kind is float and value >= 0 and value != math.inf:  # NaN fails ">= 0"
            out[key] = int(value) if value.is_integer() else value
    return out


def _clean_cost(provided: Any) -> dict[str, float]:
    if not isinstance(provided, dict) or not provided:
        return {}
    return {k: float(v) for k, v in provided.items() if _is_number(v)}


def _provided_cost_details(provided: dict[str, float]) -> dict[str, float]:
    cost = dict(provided)
    if "total" not in cost and all(k in ("input", "output") for k in cost):
        # Plain float addition on purpose: the reference computes this total in IEEE doubles.
        cost["total"] = cost.get("input", 0.0) + cost.get("output", 0.0)
    return cost


def _priced_cost_details(usage: Mapping[str, float], tier: PricingTier) -> dict[str, float]:
    prices = tier.decimal_prices
    cost: dict[str, float] = {}
    for key, units in usage.items():
        price = prices.get(key)
        if price is not None:
            # Exact decimal product, rounded once to a double (matches a NUMERIC price times a count).
            amount = Decimal(units) if isinstance(units, int) else Decimal(repr(units))
            cost[key] = float(price * amount)
    if cost and "total" not in cost:
        # Summing the rounded doubles in key order, like the reference, keeps totals bit-identical with it.
        cost["total"] = sum(cost.values())
    return cost


def enrich_observation(row: ObservationRow | dict[str, Any], book: PriceBook) -> dict[str, Any]:
    """Return a copy of a merged observation row with model, usage, tier and cost columns filled in."""
    out = dict(row)
    out.update(observation_enrichment(row, book))
    return out


def observation_enrichment(row: ObservationRow | dict[str, Any], book: PriceBook) -> dict[str, Any]:
    """The model, usage, tier and cost columns of a merged observation row, as a new dict (the row is left as
    it is; the ingestion writer updates its own rows with it instead of copying them).

    Reads provided_model_name, provided_usage_details, provided_cost_details, model_parameters and metadata;
    gives internal_model_id, usage_details, usage_pricing_tier_id/_name, cost_details and total_cost.
    """
    model_name = row.get("provided_model_name")
    model = book.match(model_name) if isinstance(model_name, str) else None

    usage = _clean_usage(row.get("provided_usage_details"))
    # Tokenizer inference would go here (model matched, no usage, no cost, level != ERROR); not implemented.
    if usage and "total" not in usage:
        usage["total"] = sum(usage.values())

    tier = None
    if model is not None and model.pricing_tiers and usage:
        tier = select_tier(model, usage, row.get("model_parameters"), row.get("metadata"))

    provided_cost = _clean_cost(row.get("provided_cost_details"))
    if provided_cost:
        cost = _provided_cost_details(provided_cost)  # any provided cost disables computed pricing entirely
    elif tier is not None:
        cost = _priced_cost_details(usage, tier)
    else:
        cost = {}

    return {
        "internal_model_id": model.id if model is not None else None,
        "usage_details": usage,
        "usage_pricing_tier_id": tier.id if tier is not None else None,
        "usage_pricing_tier_name": tier.name if tier is not None else None,
        "cost_details": cost,
        "total_cost": cost.get("total"),
    }
