"""SCIM filters (RFC 7644 §3.4.2.2) compiled into parameterized SQL WHERE fragments.

scim2-filter-parser lexes and parses; this module walks its AST. An attribute
name only selects an entry of a fixed map of SQL snippets and every value is a
bind parameter, so neither can change the shape of the query.
"""

import json
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from psycopg import sql
from scim2_filter_parser import ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError

from service.scim.errors import InvalidFilter, TooMany

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Our walk is recursive: deeper bracket nesting than this is refused, not a stack overflow.
MAX_DEPTH = 32
# Comparisons (attribute expressions, `pr` and those inside `[...]` included) in one filter; past it, tooMany.
MAX_COMPARISONS = 64


# More comparisons than we evaluate: a 400 with scimType tooMany (RFC 7644 §3.12).
TooManyComparisons = TooMany


@dataclass(frozen=True)
class Where:
    """A boolean SQL expression over alias p (User) or g (Group) and its named bind parameters."""

    sql: sql.Composable
    params: dict


@dataclass(frozen=True)
class _Text:
    """A quoted compValue, kept apart from the bare literals true, false, null and numbers."""

    value: str


class _Lexer(SCIMLexer):
    """The library's lexer, but compValue strings are JSON (RFC 7644 §3.4.2.2), so `\\"` is a quote."""

    tokens = SCIMLexer.tokens

    @_(r'"(?:[^"\\]|\\.)*"')  # noqa: F821 (sly's rule decorator)
    def COMP_VALUE(self, t):
        value = json.loads(t.value)
        # PostgreSQL text holds no NUL and UTF-8 encodes no lone surrogate (a DataError, a 500); the other
        # control characters are refused with them, so that the rule is simple to state.
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise InvalidFilter("a filter value contains a control character or a lone surrogate")
        t.value = _Text(value)
        return t


@dataclass(frozen=True)
class _Rows:
    """Rows related to the resource; a filter on them matches if any one row does (RFC 7644 §3.4.2.2)."""

    source: sql.Composable  # "table alias WHERE <join> AND", completed by a condition
    subs: dict = field(default_factory=dict)  # sub-attributes usable inside `attr[...]`
    needs_source: bool = False  # refers to %(scim_source)s
    single: bool = False  # at most one row: a single-valued attribute kept in another table


@dataclass(frozen=True)
class _Attr:
    """A filterable attribute: its type, SQL expression and caseExact (RFC 7643 §2.2)."""

    kind: str  # "uuid", "text", "bool" or "time"
    column: sql.Composable
    case_exact: bool = True
    within: _Rows | None = None  # tested with EXISTS over these rows
    login: bool = False  # a login: compared through login_key() (sql/013), the one key of every lookup by name


def _text(column: str, case_exact: bool = True) -> _Attr:
    return _Attr("text", sql.SQL(column), case_exact)


def _time(column: str) -> _Attr:
    return _Attr("time", sql.SQL(column))


def _spread(name: str, rows: _Rows) -> dict:
    """`name.sub` for each sub-attribute, and bare `name` for `name.value` (RFC 7644 §3.4.2.2 `emails co`)."""
    entries = {f"{name}.{sub}": replace(attr, within=rows) for sub, attr in rows.subs.items()}
    return {name: entries[f"{name}.value"], **entries}


_EMAILS = _Rows(sql.SQL("jsonb_array_elements(p.emails) e WHERE"), {
    "value": _text("e->>'value'", case_exact=False),
    "type": _text("e->>'type'", case_exact=False),
    # A stored "True" or "yes" must not make the cast fail for every filter.
    "primary": _Attr("bool", sql.SQL("(CASE lower(e->>'primary') WHEN 'true' THEN true WHEN 'false' THEN false END)")),
})
_EXTERNAL_IDS = _Rows(sql.SQL("person_external_ids x WHERE x.person_id = p.id AND x.source = {} AND").format(
    sql.Placeholder("scim_source")), needs_source=True, single=True)
_MEMBERS = _Rows(sql.SQL("group_members m WHERE m.group_id = g.id AND"), {"value": _text("m.person_id::text")})

# Keys are lower-case: attribute names are case-insensitive (RFC 7643 §2.1).
_USER = {
    CORE_USER.lower(): {
        "id": _Attr("uuid", sql.SQL("p.id")),
        "externalid": _Attr("text", sql.SQL("x.external_id"), within=_EXTERNAL_IDS),
        "username": _Attr("text", sql.SQL("p.user_name"), case_exact=False, login=True),
        "displayname": _text("p.display_name", case_exact=False),
        "name.givenname": _text("p.given_name", case_exact=False),
        "name.familyname": _text("p.family_name", case_exact=False),
        "title": _text("p.title", case_exact=False),
        "active": _Attr("bool", sql.SQL("p.active")),
        **_spread("emails", _EMAILS),
        "meta.created": _time("p.created_at"),
        "meta.lastmodified": _time("p.updated_at"),
    },
    ENTERPRISE_USER.lower(): {
        "employeenumber": _text("p.employee_number"),
        "department": _text("p.department", case_exact=False),
        "organization": _text("p.organization", case_exact=False),
        "manager": _text("p.manager_id::text"),
        "manager.value": _text("p.manager_id::text"),
    },
}
_GROUP = {
    CORE_GROUP.lower(): {
        "id": _Attr("uuid", sql.SQL("g.id")),
        "externalid": _text("g.external_id"),
        "displayname": _text("g.display_name", case_exact=False),
        **_spread("members", _MEMBERS),
        "meta.created": _time("g.created_at"),
        "meta.lastmodified": _time("g.updated_at"),
    },
}
_RESOURCES = {"User": _USER, "Group": _GROUP}

# RFC 7644 §3.4.2.2 Table 3; gt/ge/lt/le on a boolean SHALL be invalidFilter, and co/sw/ew make no sense
# on an id or a timestamp.
_OPERATORS = {
    "uuid": {"eq", "ne", "pr"},
    "bool": {"eq", "ne", "pr"},
    "time": {"eq", "ne", "gt", "ge", "lt", "le", "pr"},
    "text": {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"},
}
_SQL_OPERATORS = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
                  "co": "LIKE", "sw": "LIKE", "ew": "LIKE"}


def compile_filter(text: str, resource: str, *, scim_source: str) -> Where:
    """A SCIM filter as a parameterized boolean over p (resource "User") or g ("Group")."""
    if resource not in _RESOURCES:
        raise ValueError(f"no filterable resource {resource!r}")
    compiler = _Compiler(_RESOURCES[resource])
    condition = compiler.filter(_parse(text), None)
    params = dict(compiler.params)
    if compiler.uses_source:
        params["scim_source"] = scim_source
    return Where(condition, params)


def _parse(text: str) -> ast.Filter:
    """The library's AST for text; any lexing or parsing failure is an invalid filter."""
    try:
        tree = SCIMParser().parse(_tokens(text))
    except InvalidFilter:
        raise
    except (ValueError, SCIMParserError) as e:  # the lexer raises ValueError, the parser SCIMParserError
        raise InvalidFilter(f"invalid filter syntax: {e}") from None
    if tree is None:
        raise InvalidFilter("invalid filter syntax")
    return tree


def _tokens(text: str):
    """The tokens of text, refusing bracket nesting deeper than MAX_DEPTH."""
    depth = 0
    for token in _Lexer().tokenize(text):
        depth += token.type in ("LPAREN", "LBRACKET")
        depth -= token.type in ("RPAREN", "RBRACKET")
        if depth > MAX_DEPTH:
            raise InvalidFilter(f"the filter nests brackets more than {MAX_DEPTH} deep")
        yield token


class _Compiler:
    """Walks one parsed filter, collecting bind parameters f0, f1, ... as it goes."""

    def __init__(self, schemas: dict):
        self.schemas = schemas
        self.params: dict = {}
        self.uses_source = False
        self.comparisons = 0

    def filter(self, node: ast.Filter, rows: _Rows | None) -> sql.Composable:
        """SQL for a Filter node; rows is the multi-valued attribute whose `[...]` we are in, if any."""
        if node.namespace is not None:
            return self.value_path(node, rows)
        if isinstance(node.expr, ast.LogExpr):
            return self.chain(node, rows)
        if isinstance(node.expr, ast.Filter):
            inner = self.filter(node.expr, rows)
        else:
            inner = self.attr_expr(node.expr, rows)
        # A comparison with a missing value is NULL, that is no match, so its "not" must match.
        return sql.SQL("({}) IS NOT TRUE").format(inner) if node.negated else inner

    def chain(self, node: ast.Filter, rows: _Rows | None) -> sql.Composable:
        """An and/or chain; "and" binds tighter than "or" (RFC 7644 §3.4.2.2), which the library ignores."""
        operands, ops = _terms(node)
        groups = [[self.filter(operands[0], rows)]]
        for op, operand in zip(ops, operands[1:], strict=False):
            if op == "or":
                groups.append([])
            groups[-1].append(self.filter(operand, rows))
        return _join(" OR ", [_join(" AND ", group) for group in groups])

    def value_path(self, node: ast.Filter, rows: _Rows | None) -> sql.Composable:
        """`emails[type eq "work"]`: one related row must match the whole bracket (RFC 7644 §3.4.2.2)."""
        if node.namespace.sub_attr is not None:
            raise InvalidFilter("a sub-attribute goes after the brackets: emails[type eq \"work\"].value")
        inside = self.complex(node.namespace, rows)
        return self.exists(inside, self.filter(node.expr, inside))

    def attr_expr(self, expr: ast.AttrExpr, rows: _Rows | None) -> sql.Composable:
        """One comparison or presence test (RFC 7644 §3.4.2.2 Table 3)."""
        self.count_comparison()
        op, path, comp = expr.value.lower(), expr.attr_path, expr.comp_value
        if isinstance(path.attr_name, ast.Filter):
            return self.filtered_sub_attr(path.attr_name, op, comp, rows)
        attr = self.resolve(path, rows)
        if attr.within is None:
            return self.compare(attr, op, comp)
        if attr.within.single and op == "ne":
            # No value is "not equal" too, so: no row equal to the value.
            return sql.SQL("NOT {}").format(self.exists(attr.within, self.compare(attr, "eq", comp)))
        return self.exists(attr.within, self.compare(attr, op, comp))

    def count_comparison(self) -> None:
        """Count one more comparison; bind parameters are no measure (`pr` and a non-uuid id bind none)."""
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise TooManyComparisons(f"filters are limited to {MAX_COMPARISONS} comparisons")

    def filtered_sub_attr(self, path: ast.Filter, op: str, comp, rows: _Rows | None) -> sql.Composable:
        """Entra's `emails[type eq "work"].value eq "x"`; the library moves ".value" onto the namespace."""
        inside = self.complex(path.namespace, rows)
        sub = path.namespace.sub_attr
        if sub is None or sub.value.lower() not in inside.subs:
            raise InvalidFilter("a value path compared with an operator needs a known sub-attribute")
        bracket = self.filter(path.expr, inside)
        test = self.compare(inside.subs[sub.value.lower()], op, comp)
        return self.exists(inside, _join(" AND ", [bracket, test]))

    def complex(self, path: ast.AttrPath, rows: _Rows | None) -> _Rows:
        """The multi-valued attribute named before `[`."""
        if rows is not None or not isinstance(path.attr_name, str):
            raise InvalidFilter("value paths cannot nest")
        attr = self.lookup(path.attr_name, None, path.uri)
        if attr.within is None or not attr.within.subs:
            raise InvalidFilter(f"{path.attr_name!r} is not a multi-valued attribute")
        return attr.within

    def resolve(self, path: ast.AttrPath, rows: _Rows | None) -> _Attr:
        """The attribute a path names: a sub-attribute inside `[...]`, else a top-level one."""
        sub = path.sub_attr.value if path.sub_attr is not None else None
        if rows is None:
            return self.lookup(path.attr_name, sub, path.uri)
        key = _key(path.attr_name, sub)
        if path.uri is not None or key not in rows.subs:
            raise InvalidFilter(f"unknown sub-attribute {key!r}")
        return rows.subs[key]

    def lookup(self, name: str, sub: str | None, uri: str | None) -> _Attr:
        """A top-level attribute, by its short name or qualified by its schema URI (RFC 7644 §3.10)."""
        key = _key(name, sub)
        schemas = self.schemas if uri is None else {uri: self.schemas.get(uri.lower(), {})}
        for attrs in schemas.values():
            if key in attrs:
                return attrs[key]
        shown = (f"{uri}:" if uri else "") + name + (f".{sub}" if sub else "")
        raise InvalidFilter(f"unknown attribute {shown!r}")

    def compare(self, attr: _Attr, op: str, comp: ast.CompValue | None) -> sql.Composable:
        """`column op value`, the value bound as a parameter and converted for the attribute's type."""
        if op not in _OPERATORS[attr.kind]:
            raise InvalidFilter(f"operator {op!r} does not apply to a {attr.kind} attribute")
        if op == "pr":
            return _present(attr)
        value = _VALUES[attr.kind](comp.value)
        if value is None:  # an id that is no uuid equals no row
            return sql.SQL("FALSE" if op == "eq" else "TRUE")
        if attr.login:
            return self.login(attr, op, value)
        column, param = attr.column, self.param(_like(op, value) if op in ("co", "sw", "ew") else value)
        if attr.kind == "text" and not attr.case_exact:
            column, param = sql.SQL("lower({})").format(column), sql.SQL("lower({})").format(param)
        escape = sql.SQL(" ESCAPE '\\'") if op in ("co", "sw", "ew") else sql.SQL("")
        return sql.SQL("{} {} {}{}").format(column, sql.SQL(_SQL_OPERATORS[op]), param, escape)

    def login(self, attr: _Attr, op: str, value: str) -> sql.Composable:
        """A userName compared as the check API and the joins compare it: by login_key, on both sides.

        eq goes through person_logins' primary key (one index probe, then the row's own userName), so a filter
        by userName stays fast at any size; ne is its negation. co, sw and ew compare the keys as text, the
        value's key (NFKC, trimmed, case-folded) taken literally: its %, _ and \\ are escaped after folding.
        (%% is a literal % here: a filter's query always has parameters.)
        """
        key = sql.SQL("login_key({})").format(self.param(value))
        if op in ("eq", "ne"):
            same = sql.SQL("(p.id IN (SELECT l.person_id FROM person_logins l WHERE l.login_key = {}) "
                           "AND login_key({}) = {})").format(key, attr.column, key)
            return same if op == "eq" else sql.SQL("NOT {}").format(same)
        if op in ("co", "sw", "ew"):
            literal = sql.SQL("replace(replace(replace({}, '\\', '\\\\'), '%%', '\\%%'), '_', '\\_')").format(key)
            pattern = sql.SQL({"co": "'%%' || {} || '%%'", "sw": "{} || '%%'", "ew": "'%%' || {}"}[op]).format(literal)
            return sql.SQL("login_key({}) LIKE {} ESCAPE '\\'").format(attr.column, pattern)
        return sql.SQL("login_key({}) {} {}").format(attr.column, sql.SQL(_SQL_OPERATORS[op]), key)

    def param(self, value) -> sql.Placeholder:
        """A new named bind parameter holding value."""
        name = f"f{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def exists(self, rows: _Rows, condition: sql.Composable) -> sql.Composable:
        """EXISTS over the related rows: any one matching value is a match (RFC 7644 §3.4.2.2)."""
        self.uses_source |= rows.needs_source
        return sql.SQL("EXISTS (SELECT 1 FROM {} {})").format(rows.source, condition)


def _key(name: str, sub: str | None) -> str:
    return name.lower() + (f".{sub.lower()}" if sub else "")


def _terms(node: ast.Filter) -> tuple[list, list]:
    """The operands and operators of an unbracketed and/or chain, which the library nests to the left."""
    operands, ops = [], []
    while isinstance(node.expr, ast.LogExpr) and node.namespace is None and not node.negated:
        ops.append(node.expr.op.lower())
        operands.append(node.expr.expr2)
        node = node.expr.expr1
    operands.append(node)
    return operands[::-1], ops[::-1]


def _join(separator: str, parts: list) -> sql.Composable:
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("(") + sql.SQL(separator).join(parts) + sql.SQL(")")


def _present(attr: _Attr) -> sql.Composable:
    """pr: a non-null value, and for a string a non-empty one (RFC 7644 §3.4.2.2)."""
    if attr.kind == "text":
        return sql.SQL("({0} IS NOT NULL AND {0} <> '')").format(attr.column)
    return sql.SQL("{} IS NOT NULL").format(attr.column)


def _like(op: str, text: str) -> str:
    """A LIKE pattern for co, sw or ew that matches text literally, `%`, `_` and `\\` included."""
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"co": f"%{literal}%", "sw": f"{literal}%", "ew": f"%{literal}"}[op]


def _string(value) -> str:
    if not isinstance(value, _Text):
        raise InvalidFilter(f"expected a quoted string, not {value}")  # value is a bare literal here
    return value.value


def _uuid(value) -> uuid.UUID | None:
    """The uuid, or None when the string is not one."""
    text = _string(value)
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _boolean(value) -> bool:
    if value not in ("true", "false"):  # the bare JSON literals; a quoted "true" is a _Text
        raise InvalidFilter("a boolean attribute compares with true or false")
    return value == "true"


def _timestamp(value) -> datetime:
    """An ISO 8601 date and time (RFC 7643 §2.3.5); one without a zone is taken as UTC."""
    text = _string(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter(f"{text!r} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_VALUES = {"uuid": _uuid, "bool": _boolean, "time": _timestamp, "text": _string}
