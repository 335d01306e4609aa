"""Validation and rendering for the models API (api-semantics 5.8)."""

from __future__ import annotations

import copy

import pytest

from lightfuse.services.pricing.models import ModelValidationError, model_to_api, validate_model_create
from lightfuse.services.pricing.price_book import (
    ModelPrice,
    PriceBook,
    enrich_observation,
    load_builtin_models,
)

MODEL_FIELDS = {
    "id",
    "modelName",
    "matchPattern",
    "startDate",
    "unit",
    "inputPrice",
    "outputPrice",
    "totalPrice",
    "tokenizerId",
    "tokenizerConfig",
    "isLangfuseManaged",
    "createdAt",
    "prices",
    "pricingTiers",
}

TIERED = {
    "modelName": "my-model",
    "matchPattern": "(?i)^my-model$",
    "pricingTiers": [
        {
            "name": "Large",
            "isDefault": False,
            "priority": 1,
            "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 1000}],
            "prices": {"input": 2e-06, "output": 4e-06},
        },
        {"name": "Standard", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1e-06}},
    ],
}


def errors_for(body: dict) -> str:
    with pytest.raises(ModelValidationError) as info:
        validate_model_create(body, model_id="m1")
    return info.value.message


def with_tiers(tiers: list[dict]) -> dict:
    return {"modelName": "x", "matchPattern": "^x$", "pricingTiers": tiers}


def tier(name: str = "Standard", priority: int = 0, default: bool = True, **over) -> dict:
    base = {
        "name": name,
        "isDefault": default,
        "priority": priority,
        "conditions": [],
        "prices": {"input": 1.0},
    }
    base.update(over)
    return base


USAGE_COND = {"usageDetailPattern": "input", "operator": "gt", "value": 10}


def test_flat_prices_become_standard_default_tier() -> None:
    fields = validate_model_create(
        {
            "modelName": "my-model",
            "matchPattern": "(?i)^my-model$",
            "startDate": "2025-01-01T00:00:00Z",
            "unit": "TOKENS",
            "inputPrice": 1e-06,
            "outputPrice": 2e-06,
            "tokenizerId": "openai",
            "tokenizerConfig": {"tokenizerModel": "gpt-4"},
        },
        model_id="cm1",
    )
    assert fields["id"] == "cm1"
    assert fields["model_name"] == "my-model"
    assert fields["start_date"] == 1735689600000
    assert fields["unit"] == "TOKENS"
    assert fields["tokenizer_id"] == "openai"
    [only] = fields["pricing_tiers"]
    assert (only.id, only.name, only.is_default, only.priority, only.conditions) == (
        "cm1_tier_default",
        "Standard",
        True,
        0,
        [],
    )
    assert only.prices == {"input": 1e-06, "output": 2e-06}


def test_total_price_only() -> None:
    fields = validate_model_create({"modelName": "a", "matchPattern": "^a$", "totalPrice": 0.5}, model_id="m")
    assert fields["pricing_tiers"][0].prices == {"total": 0.5}


def test_empty_tier_list_next_to_flat_prices_is_ignored() -> None:
    fields = validate_model_create(
        {"modelName": "a", "matchPattern": "^a$", "inputPrice": 1, "pricingTiers": []}, model_id="m"
    )
    assert fields["pricing_tiers"][0].prices == {"input": 1.0}


def test_generated_id_is_cuid_shaped() -> None:
    fields = validate_model_create({"modelName": "a", "matchPattern": "^a$", "inputPrice": 1})
    assert len(fields["id"]) == 25 and fields["id"].startswith("c")
    assert fields["pricing_tiers"][0].id == fields["id"] + "_tier_default"


def test_tiered_create_normalises_and_sorts() -> None:
    fields = validate_model_create(copy.deepcopy(TIERED), model_id="m1")
    default, large = fields["pricing_tiers"]
    assert default.id == "m1_tier_default" and default.priority == 0
    assert large.name == "Large" and large.id != default.id
    assert large.conditions == [
        {"usageDetailPattern": "input", "operator": "gt", "value": 1000, "caseSensitive": False}
    ]


def test_created_model_prices_observations() -> None:
    fields = validate_model_create(copy.deepcopy(TIERED), model_id="m1")
    model = ModelPrice(project_id="p1", created_at=0, updated_at=0, **fields)
    book = PriceBook([model])
    row = {"provided_model_name": "MY-MODEL", "provided_usage_details": {"input": 2000, "output": 10}}
    out = enrich_observation(row, book)
    assert out["usage_pricing_tier_name"] == "Large"
    # 2000 * 2e-06 = 0.004 ; 10 * 4e-06 = 0.00004
    assert out["cost_details"]["input"] == 0.004
    assert out["cost_details"]["output"] == 0.00004


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"matchPattern": "^a$", "inputPrice": 1}, "modelName"),
        ({"modelName": "", "matchPattern": "^a$", "inputPrice": 1}, "modelName"),
        ({"modelName": "a", "inputPrice": 1}, "matchPattern"),
        ({"modelName": "a", "matchPattern": "(?i)^(a$", "inputPrice": 1}, "matchPattern"),
        ({"modelName": "a", "matchPattern": "a**", "inputPrice": 1}, "matchPattern"),
        # the linear-time engine cannot run back-references or look-around: refused when saved
        (
            {"modelName": "a", "matchPattern": "^(a)\\1$", "inputPrice": 1},
            "back-reference \\1 is not supported",
        ),
        ({"modelName": "a", "matchPattern": "^a(?=b)", "inputPrice": 1}, "look-ahead/look-behind"),
        ({"modelName": "a", "matchPattern": "(?<!x)a", "inputPrice": 1}, "look-ahead/look-behind"),
        ({"modelName": "a", "matchPattern": "\\m(a|b)", "inputPrice": 1}, "\\m is not supported"),
        (
            {"modelName": "a", "matchPattern": "^a$", "startDate": "2025-01-01T00:00:00", "inputPrice": 1},
            "timezone",
        ),
        ({"modelName": "a", "matchPattern": "^a$", "startDate": "yesterday", "inputPrice": 1}, "startDate"),
        ({"modelName": "a", "matchPattern": "^a$", "unit": "PAGES", "inputPrice": 1}, "unit"),
        ({"modelName": "a", "matchPattern": "^a$", "inputPrice": -1}, "inputPrice"),
        ({"modelName": "a", "matchPattern": "^a$", "inputPrice": "1"}, "inputPrice"),
        ({"modelName": "a", "matchPattern": "^a$", "inputPrice": 1, "totalPrice": 2}, "totalPrice"),
        ({"modelName": "a", "matchPattern": "^a$"}, "either"),
        ({"modelName": "a", "matchPattern": "^a$", "inputPrice": 1, "pricingTiers": [tier()]}, "not both"),
        ({"modelName": "a", "matchPattern": "^a$", "inputPrice": 1, "tokenizerId": 5}, "tokenizerId"),
        ("not an object", "object"),
    ],
)
def test_field_errors(body: dict, fragment: str) -> None:
    assert fragment in errors_for(body)


@pytest.mark.parametrize(
    ("tiers", "fragment"),
    [
        ([], "at least one tier"),
        ([tier(default=False, priority=1, conditions=[USAGE_COND])], "exactly one"),
        ([tier(), tier("Other", 1)], "exactly one"),
        ([tier(priority=1)], "priority 0"),
        ([tier(conditions=[USAGE_COND])], "empty conditions"),
        ([tier(), tier("Big", 1, False)], "at least one condition"),
        ([tier(), tier("Big", 0, False, conditions=[USAGE_COND])], "priorities must be unique"),
        ([tier(), tier("Standard", 1, False, conditions=[USAGE_COND])], "names must be unique"),
        ([tier(prices={})], "at least one price"),
        ([tier(prices={"input": -1})], "non-negative"),
        ([tier(priority=1.5)], "integer"),
        ([tier(), tier("Big", 1000, False, conditions=[USAGE_COND])], "between 0 and 999"),
        ([tier(name="")], "name"),
        ([tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "operator": "ge"}])], "operator"),
        ([tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "value": -5}])], "value"),
        (
            [tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "usageDetailPattern": "(in"}])],
            "invalid",
        ),
        (
            [tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "usageDetailPattern": "in(?=put)"}])],
            "invalid usageDetailPattern",
        ),
        (
            [tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "usageDetailPattern": "(in)\\1"}])],
            "invalid usageDetailPattern",
        ),
        (
            [tier(), tier("Big", 1, False, conditions=[{**USAGE_COND, "caseSensitive": "no"}])],
            "caseSensitive",
        ),
        (
            [
                tier(),
                tier(
                    "Fast",
                    1,
                    False,
                    conditions=[{"source": "headers", "key": "k", "operator": "in", "values": ["a"]}],
                ),
            ],
            "source",
        ),
        (
            [
                tier(),
                tier(
                    "Fast",
                    1,
                    False,
                    conditions=[{"source": "metadata", "key": "k", "operator": "eq", "values": ["a"]}],
                ),
            ],
            "'in'",
        ),
        (
            [
                tier(),
                tier(
                    "Fast",
                    1,
                    False,
                    conditions=[{"source": "metadata", "key": "k", "operator": "in", "values": []}],
                ),
            ],
            "values",
        ),
        (
            [
                tier(),
                tier(
                    "Fast",
                    1,
                    False,
                    conditions=[{"source": "metadata", "key": "k", "operator": "in", "values": [1]}],
                ),
            ],
            "values",
        ),
        ([tier(), tier("Odd", 1, False, conditions=[{"key": "k"}])], "either usageDetailPattern"),
    ],
)
def test_tier_errors(tiers: list[dict], fragment: str) -> None:
    assert fragment in errors_for(with_tiers(tiers))


def test_attribute_condition_accepted() -> None:
    cond = {"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["flex"]}
    fields = validate_model_create(
        with_tiers([tier(), tier("Flex", 1, False, conditions=[cond])]), model_id="m"
    )
    assert fields["pricing_tiers"][1].conditions == [cond]


def test_model_to_api_builtin() -> None:
    gpt4o = next(m for m in load_builtin_models() if m.model_name == "gpt-4o")
    api = model_to_api(gpt4o)
    assert set(api) == MODEL_FIELDS
    assert api["id"] == "b9854a5c92dc496b997d99d20"
    assert api["matchPattern"] == "(?i)^(openai/)?(gpt-4o)$"
    assert api["startDate"] is None
    assert api["unit"] is None
    assert (api["inputPrice"], api["outputPrice"], api["totalPrice"]) == (2.5e-06, 1e-05, None)
    assert api["isLangfuseManaged"] is True
    assert api["createdAt"] == "2024-05-13T23:15:07.670Z"
    assert api["tokenizerConfig"] == {"tokensPerName": 1, "tokenizerModel": "gpt-4o", "tokensPerMessage": 3}
    assert api["prices"]["input_cached_tokens"] == {"price": 1.25e-06}
    assert [t["name"] for t in api["pricingTiers"]] == ["Standard", "Fast mode"]
    assert api["pricingTiers"][1]["prices"]["output"] == 1.7e-05
    assert set(api["pricingTiers"][0]) == {"id", "name", "isDefault", "priority", "conditions", "prices"}


def test_model_to_api_project_model_roundtrip() -> None:
    fields = validate_model_create(
        {
            "modelName": "m",
            "matchPattern": "^m$",
            "startDate": "2025-03-04T05:06:07.089+02:00",
            "totalPrice": 0.25,
        },
        model_id="cm9",
    )
    model = ModelPrice(project_id="p1", created_at=1735689600123, updated_at=1735689600123, **fields)
    api = model_to_api(model)
    assert api["isLangfuseManaged"] is False
    assert api["startDate"] == "2025-03-04T03:06:07.089Z"
    assert api["createdAt"] == "2025-01-01T00:00:00.123Z"
    assert (api["inputPrice"], api["outputPrice"], api["totalPrice"]) == (None, None, 0.25)
    assert api["prices"] == {"total": {"price": 0.25}}
    assert api["pricingTiers"] == [
        {
            "id": "cm9_tier_default",
            "name": "Standard",
            "isDefault": True,
            "priority": 0,
            "conditions": [],
            "prices": {"total": 0.25},
        }
    ]


def test_nested_quantifiers_are_accepted_because_matching_is_linear() -> None:
    """``^(a+)+$`` backtracks exponentially in Python's ``re``; RE2 runs it in linear time, so it is allowed."""
    cond = {**USAGE_COND, "usageDetailPattern": "(a+)+$"}
    fields = validate_model_create(
        {
            "modelName": "evil",
            "matchPattern": "^(a+)+$",
            "pricingTiers": [tier(), tier("Big", 1, False, conditions=[cond])],
        },
        model_id="m",
    )
    assert fields["match_pattern"] == "^(a+)+$"
