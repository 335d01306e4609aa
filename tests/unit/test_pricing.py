"""Model matching, tier selection and cost enrichment (api-semantics 2.5).

Expected numbers are worked out by hand from lightfuse/services/pricing/default_model_prices.json, e.g. gpt-4o's
default tier: input 2.5e-06, output 1e-05, input_cached_tokens 1.25e-06 USD per token.
"""

from __future__ import annotations

import pytest

from lightfuse.services.pricing.price_book import (
    ModelPrice,
    PriceBook,
    PricingTier,
    compile_match_pattern,
    default_tier_prices,
    enrich_observation,
    load_builtin_models,
    observation_enrichment,
    select_tier,
)

JAN_2024 = 1704067200000
JAN_2025 = 1735689600000


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def builtin(name: str) -> ModelPrice:
    return next(m for m in load_builtin_models() if m.model_name == name)


def project_model(
    model_id: str,
    pattern: str,
    prices: dict[str, float],
    start_date: int | None = None,
    extra_tiers: list[PricingTier] | None = None,
) -> ModelPrice:
    tiers = [PricingTier(f"{model_id}_tier_default", "Standard", True, 0, [], prices), *(extra_tiers or [])]
    return ModelPrice(
        id=model_id,
        project_id="proj-1",
        model_name=model_id,
        match_pattern=pattern,
        start_date=start_date,
        unit="TOKENS",
        tokenizer_id=None,
        tokenizer_config=None,
        created_at=JAN_2024,
        updated_at=JAN_2024,
        pricing_tiers=tiers,
    )


def obs(model: str | None, usage: dict | None = None, cost: dict | None = None, **extra) -> dict:
    row = {
        "project_id": "proj-1",
        "id": "obs-1",
        "trace_id": "trace-1",
        "type": "GENERATION",
        "provided_model_name": model,
        "provided_usage_details": usage or {},
        "provided_cost_details": cost or {},
        "model_parameters": None,
        "metadata": {},
    }
    row.update(extra)
    return row


# ---------------------------------------------------------------------------------------------------------------
# built-in table
# ---------------------------------------------------------------------------------------------------------------


def test_builtin_table_loads_all_models_once() -> None:
    models = load_builtin_models()
    assert len(models) == 167
    assert all(m.project_id is None for m in models)
    assert load_builtin_models()[0] is models[0]  # parsed once, objects shared
    gpt4o = builtin("gpt-4o")
    assert gpt4o.id == "b9854a5c92dc496b997d99d20"
    assert gpt4o.created_at == 1715642107670  # 2024-05-13T23:15:07.670Z
    assert gpt4o.tokenizer_id == "openai"
    assert default_tier_prices(gpt4o) == {
        "input": 2.5e-06,
        "input_cached_tokens": 1.25e-06,
        "input_cache_read": 1.25e-06,
        "output": 1e-05,
        "cache_read_input_tokens": 1.25e-06,
    }


def test_every_builtin_pattern_compiles() -> None:
    for model in load_builtin_models():
        compile_match_pattern(model.match_pattern)


# ---------------------------------------------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4O", "gpt-4o"),
        ("OpenAI/GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        ("ft:gpt-3.5-turbo-0613:acme::abc123", "ft:gpt-3.5-turbo-0613"),
        ("xgpt-4o", None),
        ("gpt-4o-turbo-ultra", None),
        ("azure/gpt-4o", None),
        ("my-own-llm", None),
        ("", None),
        (None, None),
    ],
)
def test_match_builtin(book: PriceBook, name: str | None, expected: str | None) -> None:
    found = book.match(name)
    assert (found.model_name if found else None) == expected


def test_dollar_anchor_is_end_of_string_like_postgres(book: PriceBook) -> None:
    # Python's '$' also matches before a trailing newline; Postgres' does not.
    assert book.match("gpt-4o\n") is None


def test_project_model_beats_builtin() -> None:
    own = project_model("own-gpt4o", "(?i)^gpt-4o$", {"input": 0.001})
    book = PriceBook([own])
    assert book.match("gpt-4o") is own
    # names the project model does not cover still fall through to the built-ins
    assert book.match("openai/gpt-4o").model_name == "gpt-4o"


def test_newest_start_date_wins_nulls_last_and_no_time_comparison() -> None:
    old = project_model("old", "(?i)^custom$", {"input": 1.0}, start_date=JAN_2024)
    undated = project_model("undated", "(?i)^custom$", {"input": 2.0}, start_date=None)
    new = project_model("new", "(?i)^custom$", {"input": 3.0}, start_date=JAN_2025)
    book = PriceBook([old, undated, new])
    assert book.match("custom") is new
    # the observation's own time plays no part: an observation from 2020 still gets the 2025 definition
    row = enrich_observation(obs("custom", {"input": 2}, start_time=1577836800000), book)
    assert row["internal_model_id"] == "new"
    assert row["cost_details"] == {"input": 6.0, "total": 6.0}
    assert PriceBook([old, undated]).match("custom") is old
    assert PriceBook([undated]).match("custom") is undated


def test_match_cache_is_bounded_and_remembers_misses() -> None:
    book = PriceBook(cache_size=2)
    assert book.match("gpt-4o").model_name == "gpt-4o"
    assert book.match("nope") is None
    assert book.match("gpt-4o-mini").model_name == "gpt-4o-mini"
    assert len(book._cache) == 2
    assert list(book._cache) == ["nope", "gpt-4o-mini"]
    assert book.match("gpt-4o").model_name == "gpt-4o"  # recomputed after eviction


def test_unparseable_stored_pattern_is_skipped() -> None:
    broken = project_model("broken", "(?i)^(gpt-4o$", {"input": 1.0})
    assert PriceBook([broken]).match("gpt-4o").model_name == "gpt-4o"


def test_stored_pattern_the_linear_engine_cannot_run_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rows saved before patterns were checked against RE2 never match and never reach a backtracking engine."""
    backref = project_model("backref", "^(gpt)-4o\\1?$", {"input": 1.0})
    lookahead = project_model("lookahead", "^gpt-4o(?!-mini)", {"input": 1.0})
    with caplog.at_level("WARNING", logger="lightfuse.services.common.safe_regex"):
        book = PriceBook([backref, lookahead])
    assert book.match("gpt-4o").model_name == "gpt-4o"  # the built-in row, not the unusable project rows
    assert "model backref matchPattern" in caplog.text and "back-reference" in caplog.text
    assert "model lookahead matchPattern" in caplog.text


def test_catastrophic_pattern_matches_in_linear_time() -> None:
    """``^(a+)+$`` against 'a'*n + '!' takes 2^n steps in a backtracking engine; bounded by count, not clock."""
    evil = project_model("evil", "^(a+)+$", {"input": 1.0})
    book = PriceBook([evil], builtin_models=())
    for length in (30, 1000, 100_000):
        assert book.match("a" * length + "!") is None
    assert book.match("a" * 40) is evil


# ---------------------------------------------------------------------------------------------------------------
# Postgres regex translation
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        *("(?i)^(gpt-4o$", "a**", "a{300}", "(?P<n>a)", "a(?i)b", "[a-", "\\q", "[[:nope:]]", "(?b)a", "\\"),
        # need a backtracking engine, or quantify a constraint
        *("(a)\\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", "\\m(a)", "(a)\\M", "\\ma?", "^*", "\\y+"),
    ],
)
def test_invalid_patterns_raise_value_error(pattern: str) -> None:
    with pytest.raises(ValueError):
        compile_match_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("(?i)^gpt$", "GPT", True),
        ("^gpt$", "GPT", False),
        ("(?c)^gpt$", "GPT", False),
        ("^[[:alpha:]]+-[[:digit:]]+$", "model-42", True),
        ("^[[:alpha:]]+-[[:digit:]]+$", "model-4x", False),
        ("\\mgpt\\M", "my gpt model", True),
        ("\\mgpt\\M", "mygpt", False),
        ("***=a.b", "a.b", True),
        ("***=a.b", "axb", False),
        ("a.b", "a\nb", True),  # '.' matches newline outside newline-sensitive mode
        ("(?n)a.b", "a\nb", False),
        ("gpt", "openai/gpt-4o", True),  # '~' is an unanchored search
        ("x{", "x{", True),
        ("[[:<:]]gpt[[:>:]]", "a gpt", True),
        ("[[:<:]]gpt[[:>:]]", "gpt4", False),
        ("(?n)^b$", "a\nb\nc", True),
        ("^b$", "a\nb\nc", False),
        ("a$", "a\n", False),  # '$' is the very end outside newline-sensitive mode
        ("(?x) g p t  # comment", "gpt", True),
        ("\\s", "\v", True),  # Postgres' \s includes vertical tab (RE2's does not)
        ("^\\w+$", "modèle", True),  # \w stays Unicode, as with the former translation
        ("(?i)^(openai/)?(gpt-4(-\\d{4})?-vision-preview)$", "OpenAI/GPT-4-1106-vision-preview", True),
    ],
)
def test_pattern_semantics(pattern: str, text: str, matches: bool) -> None:
    assert compile_match_pattern(pattern).matches(text) is matches


# ---------------------------------------------------------------------------------------------------------------
# tiers
# ---------------------------------------------------------------------------------------------------------------


def test_service_tier_attribute_condition() -> None:
    gpt4o = builtin("gpt-4o")
    usage = {"input": 10, "output": 5, "total": 15}
    assert select_tier(gpt4o, usage, {"service_tier": "priority"}, {}).name == "Fast mode"
    assert select_tier(gpt4o, usage, {"service_tier": "fast"}, {}).name == "Fast mode"
    assert select_tier(gpt4o, usage, '{"service_tier": "fast"}', {}).name == "Fast mode"  # stored JSON text
    assert select_tier(gpt4o, usage, {"service_tier": "default"}, {}).name == "Standard"
    # the condition reads model_parameters, not metadata
    assert select_tier(gpt4o, usage, None, {"service_tier": "fast"}).name == "Standard"


def test_usage_threshold_sums_matching_keys_case_insensitively() -> None:
    gemini = builtin("gemini-2.5-pro")  # "Large Context": (input|prompt|cached) gt 200000
    assert select_tier(gemini, {"input": 200000, "total": 200000}).name == "Standard"
    assert select_tier(gemini, {"input": 200001, "total": 200001}).name == "Large Context"
    # 150000 + 60000 (both keys match the pattern) > 200000; "PromptTokenCount" matches "prompt" ignoring case
    assert select_tier(gemini, {"input": 150000, "input_cached_tokens": 60000}).name == "Large Context"
    assert select_tier(gemini, {"PromptTokenCount": 200500}).name == "Large Context"
    assert select_tier(gemini, {"output": 900000}).name == "Standard"


def test_tiers_are_anded_and_evaluated_by_priority() -> None:
    gpt54 = builtin("gpt-5.4")
    big = {"input": 300000, "output": 10}
    assert select_tier(gpt54, big, {"service_tier": "flex"}).name == "Flex · Large context (>272K)"
    assert select_tier(gpt54, {"input": 1000}, {"service_tier": "flex"}).name == "Flex"
    assert select_tier(gpt54, big, {}).name == "Large Context (>272K)"
    assert select_tier(gpt54, big, {"service_tier": "priority"}).name == "Fast mode"
    assert select_tier(gpt54, {"input": 1000}, {}).name == "Standard"


def test_zero_condition_tier_never_matches_and_operators() -> None:
    tiers = [
        PricingTier("t-empty", "Empty", False, 1, [], {"input": 9.0}),
        PricingTier(
            "t-eq",
            "Exactly ten",
            False,
            2,
            [{"usageDetailPattern": "^input$", "operator": "eq", "value": 10, "caseSensitive": True}],
            {"input": 5.0},
        ),
        PricingTier(
            "t-meta",
            "Team",
            False,
            3,
            [{"source": "metadata", "key": "team", "operator": "in", "values": ["a", "true", "7"]}],
            {"input": 4.0},
        ),
    ]
    model = project_model("m", "^m$", {"input": 1.0}, extra_tiers=tiers)
    assert select_tier(model, {"input": 10}).id == "t-eq"
    assert select_tier(model, {"INPUT": 10}).id == "m_tier_default"  # caseSensitive pattern
    assert select_tier(model, {"input": 11}, None, {"team": "a"}).id == "t-meta"
    assert select_tier(model, {"input": 11}, None, {"team": True}).id == "t-meta"  # JS-style "true"
    assert select_tier(model, {"input": 11}, None, {"team": 7.0}).id == "t-meta"  # 7.0 -> "7"
    assert select_tier(model, {"input": 11}, None, {"team": ["a"]}).id == "m_tier_default"
    assert select_tier(model, {"input": 11}, None, {}).id == "m_tier_default"


# ---------------------------------------------------------------------------------------------------------------
# enrichment
# ---------------------------------------------------------------------------------------------------------------


def test_gpt4o_input_output_cost(book: PriceBook) -> None:
    row = enrich_observation(obs("gpt-4o", {"input": 1000, "output": 500}), book)
    assert row["internal_model_id"] == "b9854a5c92dc496b997d99d20"
    assert row["usage_details"] == {"input": 1000, "output": 500, "total": 1500}
    assert row["usage_pricing_tier_id"] == "b9854a5c92dc496b997d99d20_tier_default"
    assert row["usage_pricing_tier_name"] == "Standard"
    # 1000 * 2.5e-06 = 0.0025 ; 500 * 1e-05 = 0.005 ; usage "total" has no price
    assert row["cost_details"]["input"] == 0.0025
    assert row["cost_details"]["output"] == 0.005
    assert row["cost_details"]["total"] == pytest.approx(0.0075, rel=1e-12)
    assert set(row["cost_details"]) == {"input", "output", "total"}
    assert row["total_cost"] == row["cost_details"]["total"]


def test_cached_token_keys_are_priced(book: PriceBook) -> None:
    usage = {"input": 1000, "input_cached_tokens": 400, "output": 200}
    row = enrich_observation(obs("openai/gpt-4o", usage), book)
    assert row["usage_details"]["total"] == 1600  # sum of every provided key
    # 400 * 1.25e-06 = 0.0005 ; 200 * 1e-05 = 0.002 ; total 0.0025 + 0.0005 + 0.002
    assert row["cost_details"]["input_cached_tokens"] == 0.0005
    assert row["cost_details"]["output"] == 0.002
    assert row["total_cost"] == pytest.approx(0.005, rel=1e-12)


def test_fast_mode_prices(book: PriceBook) -> None:
    row = enrich_observation(
        obs("gpt-4o", {"input": 1000, "output": 500}, model_parameters={"service_tier": "priority"}), book
    )
    assert row["usage_pricing_tier_id"] == "ba3b2121-9c68-4333-af3b-26f98fbab7ee"
    assert row["usage_pricing_tier_name"] == "Fast mode"
    # 1000 * 4.25e-06 = 0.00425 ; 500 * 1.7e-05 = 0.0085
    assert row["cost_details"]["input"] == 0.00425
    assert row["cost_details"]["output"] == 0.0085
    assert row["total_cost"] == pytest.approx(0.01275, rel=1e-12)


def test_large_context_tier_cost(book: PriceBook) -> None:
    row = enrich_observation(obs("gemini-2.5-pro", {"input": 250000, "output": 1000}), book)
    assert row["usage_pricing_tier_name"] == "Large Context"
    # 250000 * 2.5e-06 = 0.625 ; 1000 * 1.5e-05 = 0.015 (default tier would give 0.3125 / 0.01)
    assert row["cost_details"]["input"] == 0.625
    assert row["cost_details"]["output"] == 0.015
    assert row["total_cost"] == pytest.approx(0.64, rel=1e-12)


def test_provided_cost_disables_pricing(book: PriceBook) -> None:
    row = enrich_observation(obs("gpt-4o", {"input": 1000, "output": 500}, {"input": 0.1}), book)
    assert row["cost_details"] == {"input": 0.1, "total": 0.1}
    assert row["total_cost"] == 0.1
    assert row["usage_pricing_tier_name"] == "Standard"  # the tier is still recorded
    both = enrich_observation(obs("gpt-4o", {"input": 1000}, {"input": 0.25, "output": 0.5}), book)
    assert both["cost_details"] == {"input": 0.25, "output": 0.5, "total": 0.75}
    given = enrich_observation(obs("gpt-4o", {"input": 1000}, {"input": 0.25, "total": 9.0}), book)
    assert given["total_cost"] == 9.0
    # another key besides input/output: no total is invented
    other = enrich_observation(obs("gpt-4o", {"input": 1000}, {"input": 0.25, "cache": 0.5}), book)
    assert other["cost_details"] == {"input": 0.25, "cache": 0.5}
    assert other["total_cost"] is None


def test_provided_cost_without_model_or_usage(book: PriceBook) -> None:
    row = enrich_observation(obs("my-own-llm", None, {"total": 1.5}), book)
    assert row["internal_model_id"] is None
    assert row["usage_details"] == {}
    assert row["cost_details"] == {"total": 1.5}
    assert row["total_cost"] == 1.5


def test_unknown_model_gets_usage_but_no_cost(book: PriceBook) -> None:
    row = enrich_observation(obs("my-own-llm", {"input": 10, "output": 5}), book)
    assert row["internal_model_id"] is None
    assert row["usage_details"] == {"input": 10, "output": 5, "total": 15}
    assert row["usage_pricing_tier_id"] is None
    assert row["usage_pricing_tier_name"] is None
    assert row["cost_details"] == {}
    assert row["total_cost"] is None


def test_no_usage_means_no_tokenizer_and_no_cost(book: PriceBook) -> None:
    row = enrich_observation(obs("gpt-4o", input="hello", output="world"), book)
    assert row["internal_model_id"] == "b9854a5c92dc496b997d99d20"
    assert row["usage_details"] == {}
    assert row["usage_pricing_tier_id"] is None
    assert row["cost_details"] == {}
    assert row["total_cost"] is None


def test_usage_cleaning_and_provided_total_kept(book: PriceBook) -> None:
    usage = {"input": 10, "output": -1, "junk": "12", "flag": True, "audio": 2.0, "nan": float("nan")}
    row = enrich_observation(obs("my-own-llm", usage), book)
    assert row["usage_details"] == {"input": 10, "audio": 2, "total": 12}
    kept = enrich_observation(obs("gpt-4o", {"input": 10, "output": 5, "total": 99}), book)
    assert kept["usage_details"]["total"] == 99


def test_priced_total_key_wins_over_sum() -> None:
    flat_total = project_model("per-total", "^per-total$", {"total": 0.001})
    row = enrich_observation(obs("per-total", {"input": 10, "output": 5}), PriceBook([flat_total]))
    assert row["cost_details"] == {"total": 0.015}  # 15 * 0.001
    mixed = project_model("mixed", "^mixed$", {"input": 0.5, "total": 0.001})
    row = enrich_observation(obs("mixed", {"input": 10, "output": 5}), PriceBook([mixed]))
    assert row["cost_details"] == {"input": 5.0, "total": 0.015}  # not 5.015


def test_project_model_prices_used_in_enrichment() -> None:
    own = project_model("own-gpt4o", "(?i)^gpt-4o$", {"input": 0.001, "output": 0.002})
    row = enrich_observation(obs("gpt-4o", {"input": 1000, "output": 10}), PriceBook([own]))
    assert row["internal_model_id"] == "own-gpt4o"
    assert row["cost_details"] == {"input": 1.0, "output": 0.02, "total": 1.02}


def test_decimal_multiplication_avoids_float_error() -> None:
    # 3 * 0.1 is 0.30000000000000004 in doubles; the decimal product rounds to 0.3.
    model = project_model("dec", "^dec$", {"input": 0.1})
    row = enrich_observation(obs("dec", {"input": 3}), PriceBook([model]))
    assert row["cost_details"]["input"] == 0.3


def test_enrich_does_not_mutate_input(book: PriceBook) -> None:
    row = obs("gpt-4o", {"input": 1})
    snapshot = {k: (dict(v) if isinstance(v, dict) else v) for k, v in row.items()}
    enrich_observation(row, book)
    assert row == snapshot


@pytest.mark.parametrize(
    "row",
    [
        obs(None),
        obs("gpt-4o", {"input": 1000, "output": 500}),
        obs("gpt-4o", {"input": 10}, {"input": 0.5}),
        obs(
            "no-such-model", {"input": 3}, internal_model_id="stale", usage_details={"old": 1}, total_cost=9.0
        ),
    ],
)
def test_enrichment_is_the_columns_enrich_observation_fills_in(book, row):
    before = {k: (dict(v) if isinstance(v, dict) else v) for k, v in row.items()}
    enriched = enrich_observation(row, book)
    columns = observation_enrichment(row, book)
    assert enriched == {**row, **columns} and list(enriched) == list({**row, **columns})
    assert set(columns) == {
        "internal_model_id",
        "usage_details",
        "usage_pricing_tier_id",
        "usage_pricing_tier_name",
        "cost_details",
        "total_cost",
    }
    assert row == before  # neither changes the row it is given


def test_builtin_set_agrees_with_one_pattern_at_a_time() -> None:
    """The built-ins are searched as one RE2 set; the first hit in precedence order must be what trying each
    pattern in turn gives, for every built-in name and a few spellings around it."""
    builtins = load_builtin_models()
    ordered = PriceBook(builtin_models=builtins)._shared_models
    assert len(ordered) == len(builtins)  # every built-in pattern compiles with RE2
    names = ["", "nope", "gpt", "OPENAI/GPT-4O", "gpt-4o\n"]
    for m in builtins:
        names += [m.model_name, m.model_name.upper(), "openai/" + m.model_name, m.model_name + "-x"]
    book = PriceBook(builtin_models=builtins)
    for name in names:
        one_by_one = next((m for m in ordered if compile_match_pattern(m.match_pattern).matches(name)), None)
        assert book.match(name) is one_by_one, name
