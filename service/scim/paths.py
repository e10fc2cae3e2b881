"""SCIM PATCH paths (RFC 7644 §3.5.2 Figure 7) and value filters: parsing against a schema, and evaluation.

Pure, no I/O. Split out of patch.py, which applies operations at the targets resolved here.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError

from service.scim.errors import InvalidFilter, InvalidPath, Mutability


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource schema (RFC 7643 §2.2, §2.3)."""

    name: str
    type: str = "string"  # "string", "boolean" or "complex"
    multi: bool = False
    subs: tuple["Attr", ...] = ()
    mutability: str = "readWrite"  # or "readOnly", "writeOnly"
    required: bool = False
    key: tuple[str, ...] = ()  # sub-attributes that make two values of a multi-valued attribute one
    reference: bool = False  # a bare string is its "value", and a new value replaces the whole object

    def sub(self, name: str) -> "Attr | None":
        """The sub-attribute called name, in any case."""
        return next((a for a in self.subs if a.name.lower() == name.lower()), None)


@dataclass(frozen=True)
class Selector:
    """A value filter (RFC 7644 §3.5.2, valuePath) over the values of one multi-valued attribute."""

    test: Callable[[dict], bool]
    makes: dict | None  # the value the filter's "eq" terms describe, if it is only those


_ALL = Selector(lambda item: True, {})


@dataclass(frozen=True)
class Target:
    """Where an operation acts: through parents to attr, optionally its selected values' sub-attribute."""

    parents: tuple[Attr, ...]
    attr: Attr
    select: Selector | None = None
    sub: Attr | None = None


_PATH = re.compile(r"([A-Za-z][\w$-]*)(?:\[(.*)\])?(?:\.([A-Za-z$][\w$-]*))?", re.DOTALL)


def _resolve(root: Attr, path: str) -> Target:
    """Resolve a path (RFC 7644 §3.5.2 Figure 7, URN-qualified per §3.10) against the schema."""
    parents, rest = _split_urn(root, path)
    if rest is None:
        return Target((), parents[-1] if parents else root)
    match = _PATH.fullmatch(rest)
    if not match:
        raise InvalidPath(f"malformed path {path!r}")
    name, text, sub_name = match.groups()
    attr = (parents[-1] if parents else root).sub(name)
    if attr is None:
        raise InvalidPath(f"no attribute {name!r}")
    if text is None and sub_name is None:
        return Target(parents, attr)
    if attr.mutability == "readOnly":
        raise Mutability(f"{attr.name} is read-only")
    sub = attr.sub(sub_name) if sub_name else None
    if sub_name and sub is None:
        raise InvalidPath(f"{attr.name} has no sub-attribute {sub_name!r}")
    if not attr.multi:
        if text is not None:
            raise InvalidPath(f"{attr.name} is single-valued; a value filter needs a multi-valued attribute")
        return Target(parents + (attr,), sub)
    return Target(parents, attr, _ALL if text is None else _selector(attr, text), sub)


def _split_urn(root: Attr, path: str) -> tuple[tuple[Attr, ...], str | None]:
    """Split a leading schema URN off path: the extension it names, and the rest (None if nothing follows)."""
    if not path.lower().startswith("urn:"):
        return (), path
    schemas = [(root.name, ())] + [(a.name, (a,)) for a in root.subs if a.name.startswith("urn:")]
    for urn, parents in schemas:
        if path.lower() == urn.lower():
            return parents, None
        if path.lower().startswith(urn.lower() + ":"):
            return parents, path[len(urn) + 1:]
    raise InvalidPath(f"unknown schema in path {path!r}")


def _selector(attr: Attr, text: str) -> Selector:
    """Parse a value filter with scim2-filter-parser and check it against attr's sub-attributes."""
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except (ValueError, SCIMParserError) as exc:
        # RFC 7644 §3.12: invalidFilter covers a PATCH path filter.
        raise InvalidFilter(f"invalid filter {text!r}") from exc
    return Selector(lambda item: _matches(attr, tree, item), _terms(attr, tree))


def _terms(attr: Attr, node) -> dict | None:
    """Check a filter's names and operators; return the value its "eq" terms describe, or None."""
    if isinstance(node, ast.Filter):
        if node.namespace is not None:
            raise InvalidFilter("a value filter cannot nest another")
        inner = _terms(attr, node.expr)
        return None if node.negated else inner
    if isinstance(node, ast.LogExpr):
        left, right = _terms(attr, node.expr1), _terms(attr, node.expr2)
        both = node.op.lower() == "and" and left is not None and right is not None
        return {**left, **right} if both else None
    sub, op = _filter_attr(attr, node.attr_path), node.value.lower()
    if sub.type == "boolean" and op not in ("eq", "ne", "pr"):
        raise InvalidFilter(f"{op} does not apply to boolean {sub.name}")
    if op == "pr":
        return None
    return {sub.name: _literal(sub, node.comp_value.value)} if op == "eq" else None


def _filter_attr(attr: Attr, path) -> Attr:
    """The sub-attribute a filter term names."""
    sub = attr.sub(path.attr_name) if isinstance(path.attr_name, str) else None
    if sub is None or path.sub_attr is not None or path.uri is not None:
        raise InvalidFilter(f"{attr.name} has no sub-attribute to filter on there")
    return sub


def _literal(sub: Attr, text: str):
    if sub.type != "boolean":
        return text
    if text.lower() not in ("true", "false"):
        raise InvalidFilter(f"{sub.name} is boolean, not {text!r}")
    return text.lower() == "true"


_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
    "le": operator.le, "co": operator.contains, "sw": str.startswith, "ew": str.endswith,
}


def _matches(attr: Attr, node, item: dict) -> bool:
    """Evaluate a checked filter against one value (RFC 7644 §3.4.2.2)."""
    if isinstance(node, ast.Filter):
        return _matches(attr, node.expr, item) != node.negated
    if isinstance(node, ast.LogExpr):
        left = _matches(attr, node.expr1, item)
        return (left and _matches(attr, node.expr2, item)) if node.op.lower() == "and" else (
            left or _matches(attr, node.expr2, item))
    sub, op = attr.sub(node.attr_path.attr_name), node.value.lower()
    have = item.get(sub.name)
    if op == "pr":
        return have not in (None, "", [], {})
    if have is None or isinstance(have, bool) != (sub.type == "boolean"):
        return op == "ne"
    # Our filterable sub-attributes are all caseExact false (RFC 7643 §8.7.1).
    return _COMPARE[op](_fold(have), _fold(_literal(sub, node.comp_value.value)))


def _fold(value):
    return value.casefold() if isinstance(value, str) else value
