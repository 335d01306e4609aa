"""Validation and serialisation for the custom-models API (api-semantics 5.8). Pure: no store, no HTTP.

``validate_model_create`` turns a POST /api/public/models body into the constructor arguments of
``ModelPrice`` (minus project_id/created_at/updated_at, which the caller owns), or raises
``ModelValidationError`` whose message the HTTP layer returns with status 400. Checks that need the store
(duplicate modelName in the project) are the caller's job.

``model_to_api`` renders a ``ModelPrice`` as the public ``Model`` object.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from datetime import datetime
from typing import Any, TypeGuard

from lightfuse.services.common.rows import iso_ms
from lightfuse.services.pricing.price_book import (
    ModelPrice,
    PricingTier,
    compile_match_pattern,
    compile_usage_pattern,
)

__all__ = [
    "MODEL_UNITS",
    "ModelValidationError",
    "model_to_api",
    "new_model_id",
    "validate_model_create",
]

MODEL_UNITS = ("CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS")
_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
_ATTRIBUTE_SOURCES = ("model_parameters", "metadata")
# Limits shared with the reference implementation's tier validation.
_MAX_USAGE_PATTERN_LENGTH = 200
_MAX_TIER_NAME_LENGTH = 100
_MAX_TIER_PRIORITY = 999
_FLAT_PRICE_FIELDS = (("inputPrice", "input"), ("outputPrice", "output"), ("totalPrice", "total"))
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class ModelValidationError(ValueError):
    """A model create request is invalid; ``message`` is safe to return to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- Small helpers ------------------------------------------------------------------------------------------


def _to_base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _BASE36[r] + out
        if n == 0:
            return out


def new_model_id() -> str:
    """A 25-character, cuid-shaped id ('c' + time + randomness), like the ids of the built-in rows."""
    stamp = _to_base36(time.time_ns() // 1_000_000)
    rand = _to_base36(int.from_bytes(os.urandom(12), "big"))
    return ("c" + stamp + rand + "0" * 25)[:25]


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _ms_to_iso(ms: int | None) -> str | None:
    return iso_ms(ms)


def _parse_start_date(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ModelValidationError("startDate must be an ISO-8601 date-time string")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ModelValidationError(f"startDate is not a valid ISO-8601 date-time: {value!r}") from exc
    if dt.tzinfo is None:
        # A zone-less time is ambiguous; refusing beats silently assuming the server's zone.
        raise ModelValidationError("startDate must include a timezone offset (e.g. 'Z' or '+00:00')")
    return round(dt.timestamp() * 1000)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ModelValidationError(f"{key} must be a string or null")
    return value


# --- Pricing tiers ------------------------------------------------------------------------------------------


def _validate_condition(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ModelValidationError(f"{where}: each condition must be an object")
    if "usageDetailPattern" in raw:
        pattern = raw.get("usageDetailPattern")
        if not isinstance(pattern, str) or not pattern:
            raise ModelValidationError(f"{where}: usageDetailPattern must be a non-empty string")
        if len(pattern) > _MAX_USAGE_PATTERN_LENGTH:
            raise ModelValidationError(
                f"{where}: usageDetailPattern exceeds {_MAX_USAGE_PATTERN_LENGTH} characters"
            )
        case_sensitive = raw.get("caseSensitive", False)
        if not isinstance(case_sensitive, bool):
            raise ModelValidationError(f"{where}: caseSensitive must be a boolean")
        try:
            compile_usage_pattern(pattern, case_sensitive)
        except ValueError as exc:
            raise ModelValidationError(f"{where}: invalid usageDetailPattern: {exc}") from exc
        operator = raw.get("operator")
        if operator not in _OPERATORS:
            raise ModelValidationError(f"{where}: operator must be one of {', '.join(_OPERATORS)}")
        value = raw.get("value")
        if not _is_number(value) or value < 0:
            raise ModelValidationError(f"{where}: value must be a non-negative number")
        return {
            "usageDetailPattern": pattern,
            "operator": operator,
            "value": value,
            "caseSensitive": case_sensitive,
        }
    if "source" in raw:
        source = raw.get("source")
        if source not in _ATTRIBUTE_SOURCES:
            raise ModelValidationError(f"{where}: source must be one of {', '.join(_ATTRIBUTE_SOURCES)}")
        key = raw.get("key")
        if not isinstance(key, str) or not key:
            raise ModelValidationError(f"{where}: key must be a non-empty string")
        if raw.get("operator") != "in":
            raise ModelValidationError(f"{where}: operator must be 'in' for {source} conditions")
        values = raw.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ModelValidationError(f"{where}: values must be a non-empty array of strings")
        return {"source": source, "key": key, "operator": "in", "values": list(values)}
    raise ModelValidationError(
        f"{where}: a condition needs either usageDetailPattern (usage condition) or source (attribute condition)"
    )


def _validate_prices(raw: Any, where: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ModelValidationError(f"{where}: prices must be an object of usage type -> price")
    prices: dict[str, float] = {}
    for usage_type, price in raw.items():
        if not isinstance(usage_type, str) or not usage_type:
            raise ModelValidationError(f"{where}: usage types must be non-empty strings")
        if not _is_number(price) or price < 0:
            raise ModelValidationError(f"{where}: price for '{usage_type}' must be a non-negative number")
        prices[usage_type] = float(price)
    if not prices:
        raise ModelValidationError(f"{where}: at least one price must be defined")
    return prices


def _validate_tiers(raw: Any, model_id: str) -> list[PricingTier]:
    if not isinstance(raw, list):
        raise ModelValidationError("pricingTiers must be an array")
    if not raw:
        raise ModelValidationError("pricingTiers must contain at least one tier")
    tiers: list[PricingTier] = []
    for index, item in enumerate(raw):
        where = f"pricingTiers[{index}]"
        if not isinstance(item, dict):
            raise ModelValidationError(f"{where} must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ModelValidationError(f"{where}: name must be a non-empty string")
        if len(name) > _MAX_TIER_NAME_LENGTH:
            raise ModelValidationError(f"{where}: name exceeds {_MAX_TIER_NAME_LENGTH} characters")
        where = f"pricing tier '{name}'"
        is_default = item.get("isDefault", False)
        if not isinstance(is_default, bool):
            raise ModelValidationError(f"{where}: isDefault must be a boolean")
        priority = item.get("priority")
        if not _is_number(priority) or float(priority) != int(priority):
            raise ModelValidationError(f"{where}: priority must be an integer")
        priority = int(priority)
        if not 0 <= priority <= _MAX_TIER_PRIORITY:
            raise ModelValidationError(f"{where}: priority must be between 0 and {_MAX_TIER_PRIORITY}")
        raw_conditions = item.get("conditions")
        if not isinstance(raw_conditions, list):
            raise ModelValidationError(f"{where}: conditions must be an array")
        conditions = [_validate_condition(c, where) for c in raw_conditions]
        prices = _validate_prices(item.get("prices"), where)
        # The default tier's id is derived from the model id (as for the built-ins and flat prices) so it is
        # stable and recognisable; conditional tiers get random ids.
        tier_id = f"{model_id}_tier_default" if is_default else str(uuid.uuid4())
        tiers.append(PricingTier(tier_id, name, is_default, priority, conditions, prices))

    defaults = [t for t in tiers if t.is_default]
    if len(defaults) != 1:
        raise ModelValidationError(
            f"exactly one pricing tier must have isDefault: true (found {len(defaults)})"
        )
    default = defaults[0]
    if default.priority != 0:
        raise ModelValidationError("the default pricing tier must have priority 0")
    if default.conditions:
        raise ModelValidationError("the default pricing tier must have an empty conditions array")
    for tier in tiers:
        # A conditional tier without conditions could never be selected (2.5 step 3), so it is a mistake.
        if not tier.is_default and not tier.conditions:
            raise ModelValidationError(
                f"non-default pricing tier '{tier.name}' must have at least one condition"
            )
    if len({t.priority for t in tiers}) != len(tiers):
        raise ModelValidationError("pricing tier priorities must be unique within a model")
    if len({t.name for t in tiers}) != len(tiers):
        raise ModelValidationError("pricing tier names must be unique within a model")
    return sorted(tiers, key=lambda t: t.priority)


def _flat_prices(body: dict[str, Any]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for api_key, usage_type in _FLAT_PRICE_FIELDS:
        value = body.get(api_key)
        if value is None:
            continue
        if not _is_number(value) or value < 0:
            raise ModelValidationError(f"{api_key} must be a non-negative number or null")
        prices[usage_type] = float(value)
    if "total" in prices and ("input" in prices or "output" in prices):
        raise ModelValidationError("totalPrice cannot be set together with inputPrice or outputPrice")
    return prices


# --- Public API ---------------------------------------------------------------------------------------------


def validate_model_create(body: Any, *, model_id: str | None = None) -> dict[str, Any]:
    """Validate a CreateModelRequest body.

    Returns ``{"id", "model_name", "match_pattern", "start_date", "unit", "tokenizer_id", "tokenizer_config",
    "pricing_tiers"}``: together with project_id/created_at/updated_at these are ``ModelPrice``'s arguments.
    ``model_id`` lets the caller choose the id (a fresh cuid-shaped id otherwise).
    """
    if not isinstance(body, dict):
        raise ModelValidationError("request body must be a JSON object")

    model_name = body.get("modelName")
    if not isinstance(model_name, str) or not model_name.strip():
        raise ModelValidationError("modelName is required and must be a non-empty string")

    match_pattern = body.get("matchPattern")
    if not isinstance(match_pattern, str) or not match_pattern:
        raise ModelValidationError("matchPattern is required and must be a non-empty string")
    try:
        compile_match_pattern(match_pattern)
    except ValueError as exc:
        raise ModelValidationError(f"matchPattern is not a valid regular expression: {exc}") from exc

    start_date = _parse_start_date(body.get("startDate"))

    unit = body.get("unit")
    if unit is not None and unit not in MODEL_UNITS:
        raise ModelValidationError(f"unit must be one of {', '.join(MODEL_UNITS)} or null")

    tokenizer_id = _optional_str(body, "tokenizerId")
    tokenizer_config = body.get("tokenizerConfig")

    model_id = model_id or new_model_id()
    flat = _flat_prices(body)
    raw_tiers = body.get("pricingTiers")
    if raw_tiers == [] and flat:  # an empty array next to flat prices carries no tiers; not a conflict
        raw_tiers = None
    if raw_tiers is not None and flat:
        raise ModelValidationError(
            "provide either flat prices (inputPrice/outputPrice/totalPrice) or pricingTiers, not both"
        )
    if raw_tiers is not None:
        tiers = _validate_tiers(raw_tiers, model_id)
    elif flat:
        tiers = [PricingTier(f"{model_id}_tier_default", "Standard", True, 0, [], flat)]
    else:
        raise ModelValidationError(
            "provide either flat prices (inputPrice/outputPrice/totalPrice) or pricingTiers"
        )

    return {
        "id": model_id,
        "model_name": model_name,
        "match_pattern": match_pattern,
        "start_date": start_date,
        "unit": unit,
        "tokenizer_id": tokenizer_id,
        "tokenizer_config": tokenizer_config,
        "pricing_tiers": tiers,
    }


def model_to_api(model: ModelPrice) -> dict[str, Any]:
    """The public ``Model`` object. Flat price fields and ``prices`` mirror the default tier."""
    default = model.default_tier.prices if model.default_tier is not None else {}
    return {
        "id": model.id,
        "modelName": model.model_name,
        "matchPattern": model.match_pattern,
        "startDate": _ms_to_iso(model.start_date),
        "unit": model.unit,
        "inputPrice": default.get("input"),
        "outputPrice": default.get("output"),
        "totalPrice": default.get("total"),
        "tokenizerId": model.tokenizer_id,
        "tokenizerConfig": model.tokenizer_config,
        "isLangfuseManaged": model.project_id is None,
        "createdAt": _ms_to_iso(model.created_at),
        "prices": {usage_type: {"price": price} for usage_type, price in default.items()},
        "pricingTiers": [
            {
                "id": tier.id,
                "name": tier.name,
                "isDefault": tier.is_default,
                "priority": tier.priority,
                "conditions": [dict(c) for c in tier.conditions],
                "prices": dict(tier.prices),
            }
            for tier in sorted(model.pricing_tiers, key=lambda t: t.priority)
        ],
    }
