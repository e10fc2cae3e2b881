"""PostgreSQL's text form of a jsonb value, reproduced: what the journal's hash covers for reasons and detail.

jsonb prints objects with their keys ordered by length, then by their UTF-8 bytes (duplicates gone), ", " between
members and ": " after a key, strings escaped as JSON requires and nothing else (non-ASCII kept), and numbers as
it stored them. Parsing an exported row with `loads` (numbers kept as the text they were) and printing it with
`text` gives back the very bytes that were hashed, so an export verifies offline without PostgreSQL.
"""

import json
from typing import Any


class Number(str):
    """A JSON number kept as its text (1.50 stays 1.50: jsonb keeps a numeric's scale; float() would not)."""


def loads(line: str) -> Any:
    return json.loads(line, parse_int=Number, parse_float=Number)


def text(value: Any) -> str:
    """The jsonb text of a value parsed by `loads` (or built of dict, list, str, bool, None, int)."""
    if isinstance(value, Number):
        return str.__str__(value)
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_string(k)}: {text(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(text(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)
