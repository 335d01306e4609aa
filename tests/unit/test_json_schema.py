"""JSON Schema validation of dataset items (through the jsonschema library)."""

from __future__ import annotations

import pytest

from lightfuse.services.datasets.json_schema import schema_problem, validate

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "pattern": "^[A-Z]"},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True, "maxItems": 2},
        "kind": {"$ref": "#/$defs/kind"},
    },
    "required": ["name"],
    "additionalProperties": False,
    "$defs": {"kind": {"anyOf": [{"const": "human"}, {"type": "null"}]}},
}


@pytest.mark.parametrize(
    "value",
    [
        {"name": "Ada"},
        {"name": "Ada", "age": 36.0, "tags": ["a", "b"], "kind": None},
        {"name": "Bo", "kind": "human"},
    ],
)
def test_valid(value):
    assert validate(PERSON, value) == []


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({}, "'name' is a required property"),
        ({"name": "ada"}, "name: 'ada' does not match"),
        ({"name": ""}, "name: '' should be non-empty"),
        ({"name": "Ada", "age": 1.5}, "age: 1.5 is not of type 'integer'"),
        ({"name": "Ada", "age": 150}, "age: 150 is greater than or equal to the maximum of 150"),
        ({"name": "Ada", "age": True}, "age: True is not of type 'integer'"),
        ({"name": "Ada", "tags": ["a", "a"]}, "non-unique"),
        ({"name": "Ada", "tags": ["c"]}, "is not one of"),
        ({"name": "Ada", "kind": "robot"}, "kind: 'robot' is not valid under any of the given schemas"),
        ({"name": "Ada", "extra": 1}, "'extra' was unexpected"),
        ("Ada", "(root): 'Ada' is not of type 'object'"),
    ],
)
def test_invalid(value, fragment):
    errors = validate(PERSON, value)
    assert errors and any(fragment in e for e in errors), errors


def test_combinators_and_booleans():
    assert validate({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 1) != []  # matches both
    assert validate({"not": {"type": "string"}}, 1) == []
    assert validate({"if": {"type": "number"}, "then": {"minimum": 5}}, 3) != []
    assert validate(True, {"anything": 1}) == [] and validate(False, 1) != []
    assert validate({"type": "array", "prefixItems": [{"type": "string"}], "items": False}, ["a", 1]) != []
    assert validate({"multipleOf": 0.5}, 1.5) == [] and validate({"multipleOf": 0.5}, 1.2) != []


def test_schema_problem():
    assert schema_problem({"type": "object"}) is None and schema_problem(True) is None
    assert schema_problem("object") and schema_problem({"type": "thing"}) and schema_problem({"pattern": "("})
