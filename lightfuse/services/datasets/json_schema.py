"""JSON Schema checks for dataset ``inputSchema`` / ``expectedOutputSchema``, through the ``jsonschema`` library.

The schema's ``$schema`` picks the draft; without one, draft 2020-12 applies. Messages are short and name the
path of the offending value, because they are returned to API clients inside a 400.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from jsonschema import exceptions, validators

MAX_ERRORS = 5
_DEFAULT = validators.Draft202012Validator


def _validator_class(schema: Any):
    return validators.validator_for(schema, default=_DEFAULT) if isinstance(schema, dict) else _DEFAULT


@lru_cache(maxsize=256)
def _compiled(schema_json: bytes):
    schema = orjson.loads(schema_json)
    return _validator_class(schema)(schema)


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be used as a schema (None when it can)."""
    if not isinstance(schema, dict | bool):
        return "a JSON Schema must be an object or a boolean"
    try:
        _validator_class(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        return exc.message
    return None


def validate(schema: Any, value: Any) -> list[str]:
    """The ways ``value`` violates ``schema`` (at most a few), empty when it conforms."""
    validator = _compiled(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for error in errors[:MAX_ERRORS]:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"{where}: {error.message}")
    return out
