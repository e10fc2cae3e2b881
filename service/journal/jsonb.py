"""PostgreSQL's text form of a jsonb value, reproduced: what the journal's hash covers for reasons and detail.

jsonb prints objects with their keys ordered by length, then by their UTF-8 bytes (duplicates gone), ", " between
members and ": " after a key, strings escaped as JSON requires and nothing else (non-ASCII kept), and numbers as
it stored them. Parsing an exported row with `loads` (numbers kept as the text they were) and printing it with
`text` gives back the very bytes that were hashed, so an export verifies offline without PostgreSQL.
"""

import json
from json.encoder import encode_basestring  # the C encoder: non-ASCII kept, as jsonb prints it
from typing import Any


class Number(str):
    """A JSON number with a fraction or exponent, kept as its text (1.50 stays 1.50: jsonb keeps a numeric's scale;
    float() would not)."""


def loads(line: str) -> Any:
    """Parse JSON keeping each non-integer number's text; integers print back the same from Python's int."""
    return json.loads(line, parse_float=Number)


def text(value: Any) -> str:
    """The jsonb text of a value parsed by `loads` (or built of dict, list, str, bool, None, int)."""
    if isinstance(value, str):
        return str.__str__(value) if isinstance(value, Number) else encode_basestring(value)
    if isinstance(value, dict):
        keys = sorted(value, key=_jsonb_order) if len(value) > 1 else value
        return "{" + ", ".join(f"{encode_basestring(k)}: {text(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(text, value)) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _jsonb_order(key: str) -> tuple[int, bytes]:
    b = key.encode()
    return len(b), b
