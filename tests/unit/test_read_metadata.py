"""The read rule for metadata values (api-semantics 2.4): top-level strings holding JSON are returned parsed."""

from __future__ import annotations

from lightfuse.services.common.rows import read_metadata


def test_top_level_json_strings_are_parsed_and_others_kept():
    stored = {
        "count": "0",
        "list": '["yo"]',
        "obj": '{"a": {"b": "1"}}',
        "text": "hello",
        "quoted": '"x"',
        "flag": "true",
        "nothing": "null",
        "spaced": " 7 ",
        "num": 3,
        "nested": {"s": "1", "l": "[1]"},
        "bad": "[1,",
        "huge": "1e400",
        "empty": "",
        "nan": "NaN",
    }
    assert read_metadata(stored) == {
        "count": 0,
        "list": ["yo"],
        "obj": {"a": {"b": "1"}},
        "text": "hello",
        "quoted": "x",
        "flag": True,
        "nothing": None,
        "spaced": 7,
        "num": 3,
        "nested": {"s": "1", "l": "[1]"},  # nested values untouched
        "bad": "[1,",
        "huge": "1e400",
        "empty": "",
        "nan": "NaN",
    }


def test_absent_metadata_reads_as_an_empty_object():
    assert read_metadata(None) == {} and read_metadata({}) == {}


def test_v5_sdk_strings_that_look_like_json_stay_strings_after_the_read_rule():
    """5.x SDKs JSON-encode every metadata value so "123" and 123 stay distinct; the read rule keeps that."""
    from lightfuse.ingest.otlp_fields import metadata

    sent = {"s": '"123"', "n": "123", "t": '"hello"', "l": '["yo"]', "raw": "not json"}
    dotted = [(f"langfuse.observation.metadata.{k}", v) for k, v in sent.items()]
    stored = metadata({}, "observation", dotted, json_values=True)
    assert read_metadata(stored) == {"s": "123", "n": 123, "t": "hello", "l": ["yo"], "raw": "not json"}
    assert stored["t"] == "hello"  # ordinary strings are stored decoded, so metadata filters match them
