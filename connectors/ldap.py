"""Read people and groups from OpenLDAP or Active Directory with paged searches (RFC 2696).

Plain values in (LdapConfig), frozen values out (Snapshot), typed errors out
(LdapError): a read that cannot be trusted to be complete raises, never returns a short list.
"""

import logging
import math
import os
import re
import ssl
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # ldap3 2.9.1 imports names pyasn1 0.6 deprecates
    import ldap3
    from ldap3.core import exceptions as lx
    from ldap3.utils.conv import escape_filter_chars

from connectors.directory import LdapGroup, LdapPerson, Snapshot, normalize_dn

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696 simple paged results control
IN_CHAIN = "1.2.840.113556.1.4.1941"  # AD LDAP_MATCHING_RULE_IN_CHAIN (transitive memberOf)
UF_ACCOUNTDISABLE = 0x2  # AD userAccountControl: account disabled
RANGE_STEP = 1500  # AD's default MaxValRange: member values asked for in windows of this size (member;range=0-1499)
NOT_BUILTIN = "(!(isCriticalSystemObject=TRUE))"  # AD's built-in groups (Domain Admins, Domain Users, Builtin\\*)
_UNIQUE_ID = re.compile(r"#'[01]*'B$")  # uniqueMember's optional unique identifier suffix (RFC 4517 3.3.21)


class LdapError(Exception):
    """The directory could not be read."""


class LdapUnavailable(LdapError):
    """The server could not be reached, timed out or went away mid-read."""


class LdapAuthError(LdapError):
    """The server refused the bind account or its rights."""


class LdapConfigError(LdapError):
    """The LDAP settings are unusable or unsafe."""


class LdapIncomplete(LdapError):
    """The server's answer cannot be trusted to be complete."""


@dataclass(frozen=True)
class Mapping:
    """Directory attribute names for each field Gatehouse reads (OpenLDAP inetOrgPerson defaults)."""

    key: str = "entryUUID"
    key_is_guid: bool = False  # AD objectGUID: 16 bytes, little-endian GUID layout (MS-DTYP 2.3.4)
    user_name: str = "uid"
    given_name: str = "givenName"
    family_name: str = "sn"
    display_name: str = "displayName"
    email: str = "mail"
    employee_number: str = "employeeNumber"
    department: str = "departmentNumber"
    title: str = "title"
    manager: str = "manager"
    member_of: str | None = "memberOf"
    disabled: str = "pwdAccountLockedTime"  # the attribute that marks a disabled account
    disabled_value: str | None = None  # None: the attribute's presence disables
    disabled_bit: int | None = None  # set: disabled when int(value) & bit (AD userAccountControl)
    modified: str = "modifyTimestamp"
    modified_is_int: bool = False  # AD uSNChanged is an integer, not a GeneralizedTime
    group_name: str = "cn"
    group_key: str | None = None  # None: the people's key (a people-only key such as employeeNumber needs one)
    group_members: tuple[str, ...] = ("member", "uniqueMember")


AD_MAPPING = Mapping(key="objectGUID", key_is_guid=True, user_name="sAMAccountName", employee_number="employeeID",
                     department="department", disabled="userAccountControl", disabled_bit=UF_ACCOUNTDISABLE,
                     modified="uSNChanged", modified_is_int=True, group_members=("member",))


@dataclass(frozen=True)
class LdapConfig:
    """How to reach the directory and what to read from it."""

    urls: tuple[str, ...]
    bind_dn: str
    bind_password: str = field(repr=False)
    user_base: str
    group_base: str | None = None  # None: read no groups
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    start_tls: bool = False
    ca_file: str | None = None  # None: the system's trusted CAs
    allow_plaintext_bind: bool = False
    connect_timeout: float = 5.0
    receive_timeout: float = 30.0
    page_size: int = 500  # 0: no paging control (only for servers without RFC 2696)
    flavor: str = "openldap"
    mapping: Mapping = Mapping()

    def __post_init__(self):
        object.__setattr__(self, "urls", (self.urls,) if isinstance(self.urls, str) else tuple(self.urls))
        problem = _config_problem(self)
        if problem:
            raise LdapConfigError(problem)


def _config_problem(config: LdapConfig) -> str | None:
    schemes = {urlsplit(u).scheme.lower() for u in config.urls}
    if not config.urls or not schemes <= {"ldap", "ldaps"} or not all(urlsplit(u).hostname for u in config.urls):
        return "urls must be one or more ldap:// or ldaps:// URLs"
    if config.start_tls and "ldaps" in schemes:
        return "start_tls applies to ldap:// URLs only"
    if "ldap" in schemes and not config.start_tls and not config.allow_plaintext_bind:
        return "refusing a simple bind over unencrypted ldap://: use ldaps://, start_tls, or allow_plaintext_bind"
    if not config.bind_dn or not config.bind_password:
        return "bind_dn and bind_password are required (an empty password is an unauthenticated bind, RFC 4513 5.1.2)"
    if config.flavor not in ("openldap", "ad") or config.page_size < 0 or not config.user_base:
        return "flavor must be 'openldap' or 'ad', page_size >= 0, user_base set"
    if not all(f.startswith("(") and f.endswith(")") for f in (config.user_filter, config.group_filter)):
        return "filters must be parenthesized, e.g. (objectClass=inetOrgPerson)"
    return None


def openldap_preset(urls, **settings) -> LdapConfig:
    """An LdapConfig for OpenLDAP: inetOrgPerson, groupOfNames/groupOfUniqueNames, entryUUID, modifyTimestamp."""
    return LdapConfig(urls=urls, **{"flavor": "openldap", **settings})


def ad_preset(urls, *, user_name: str = "sAMAccountName", builtin_groups: bool = False, **settings) -> LdapConfig:
    """An LdapConfig for Active Directory: objectGUID, userAccountControl, uSNChanged, groups resolved in chain.

    AD's built-in groups (Domain Admins, Domain Users, Administrators, ...: isCriticalSystemObject) are left out
    unless builtin_groups, whatever the group filter: they are AD's own, not the organisation's, and granting
    access by "Domain Users" is rarely what anyone meant.
    """
    defaults = {"user_filter": "(&(objectCategory=person)(objectClass=user))", "group_filter": "(objectClass=group)",
                "mapping": replace(AD_MAPPING, user_name=user_name), "flavor": "ad"}
    config = {**defaults, **settings}
    if not builtin_groups:
        config["group_filter"] = f"(&{config['group_filter']}{NOT_BUILTIN})"
    return LdapConfig(urls=urls, **config)


def read_directory(config: LdapConfig, *, since: str | None = None,
                   on_page: Callable[[int], None] | None = None) -> Snapshot:
    """Bind and read people (modified at or after `since`, if given) and all groups."""
    reader = _Reader(config, on_page)
    with _ldap_errors(), _connection(config) as conn:
        reader.conn = conn
        found = reader.search(config.user_base, _people_filter(config, since), _person_attrs(config.mapping))
        people = tuple(_person(entry, config.mapping) for entry in found)
        groups = _read_groups(reader, config) if config.group_base else ()
    log.info("ldap read: %d people, %d groups, %d pages", len(people), len(groups), reader.pages)
    return Snapshot(people=people, groups=groups, complete=since is None,
                    high_water=_high_water(people, config.mapping, since), pages=reader.pages,
                    entries_read=reader.entries_read)


def _people_filter(config: LdapConfig, since: str | None) -> str:
    if since is None:
        return config.user_filter
    if config.mapping.modified_is_int and not since.isdigit():
        raise LdapConfigError(f"since must be an integer {config.mapping.modified}")
    return f"(&{config.user_filter}({config.mapping.modified}>={escape_filter_chars(since)}))"


def _high_water(people: tuple[LdapPerson, ...], mapping: Mapping, since: str | None) -> str | None:
    """The largest modify marker seen (or `since` when nothing newer), for the next incremental read."""
    marks = [p.modified for p in people if p.modified] + ([since] if since else [])
    return max(marks, key=int if mapping.modified_is_int else str, default=None)


@contextmanager
def _ldap_errors() -> Iterator[None]:
    """Translate ldap3's exceptions into ours; messages never carry the password."""
    try:
        yield
    except (lx.LDAPCommunicationError, lx.LDAPResponseTimeoutError, lx.LDAPStartTLSError, OSError) as e:
        raise LdapUnavailable(f"{type(e).__name__}: {e}") from None
    except ValueError as e:  # UnicodeDecodeError too: a value that is not what the mapping says it is
        raise LdapIncomplete(f"an entry could not be read: {e}") from None
    except (lx.LDAPInvalidFilterError, lx.LDAPInvalidDnError, lx.LDAPConfigurationError) as e:
        raise LdapConfigError(f"LDAP settings rejected: {e}") from None
    except lx.LDAPException as e:
        raise LdapError(f"LDAP error: {type(e).__name__}: {e}") from None


@contextmanager
def _connection(config: LdapConfig) -> Iterator[ldap3.Connection]:
    """A bound connection to the first URL that answers, closed (socket included) however the block ends."""
    if config.ca_file and not os.path.isfile(config.ca_file):
        raise LdapConfigError(f"ca_file {config.ca_file!r} is not a readable file")
    failures = []
    for url in config.urls:
        conn = ldap3.Connection(_server(url, config), user=config.bind_dn, password=config.bind_password,
                                authentication=ldap3.SIMPLE, receive_timeout=math.ceil(config.receive_timeout),
                                read_only=True, auto_referrals=False, raise_exceptions=False,
                                auto_range=False, return_empty_attributes=False)  # ranges: _member_values
        try:
            with _ldap_errors():
                _open(conn, config)
        except LdapUnavailable as e:
            _close(conn)
            failures.append(f"{url}: {e}")
            continue
        except BaseException:
            _close(conn)
            raise
        try:
            yield conn
        finally:
            _close(conn)
        return
    raise LdapUnavailable("no LDAP server answered: " + "; ".join(failures))


def _open(conn: ldap3.Connection, config: LdapConfig) -> None:
    conn.open(read_server_info=False)
    if config.start_tls and not conn.start_tls(read_server_info=False):
        raise LdapUnavailable(f"StartTLS failed: {conn.result.get('description')}")
    if not conn.bind(read_server_info=False):
        raise _result_error(conn.result, "bind", LdapAuthError)


def _server(url: str, config: LdapConfig) -> ldap3.Server:
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "ldaps"
    tls = _Tls(config.ca_file, parts.hostname) if secure or config.start_tls else None
    return ldap3.Server(parts.hostname, port=parts.port or (636 if secure else 389), use_ssl=secure, tls=tls,
                        get_info=ldap3.NONE, connect_timeout=config.connect_timeout)


class _Tls(ldap3.Tls):
    """ldap3's Tls, but certificate and host name checked by the standard library's default context."""

    def __init__(self, ca_file: str | None, host: str):
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.ca_file, self.host = ca_file, host

    def wrap_socket(self, connection, do_handshake=False):
        context = ssl.create_default_context(cafile=self.ca_file)  # verifies the chain and the host name
        connection.socket = context.wrap_socket(connection.socket, server_hostname=self.host,
                                                do_handshake_on_connect=do_handshake)


def _close(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except (lx.LDAPException, OSError):
        pass  # the server is gone: the unbind request could not be sent
    if conn.socket is not None:  # ldap3 leaves the socket of a failed open or send behind
        conn.socket.close()


# RFC 4511 4.1.9 result codes that mean something other than "the answer is incomplete".
_RESULT_ERRORS = {12: LdapConfigError,  # unavailableCriticalExtension: the server does not page (RFC 2696)
                  13: LdapConfigError,  # confidentialityRequired: the server wants TLS
                  32: LdapConfigError,  # noSuchObject: the base does not exist or the account may not see it
                  48: LdapAuthError, 49: LdapAuthError, 50: LdapAuthError,  # bad auth, credentials, rights
                  51: LdapUnavailable, 52: LdapUnavailable}  # busy, unavailable


def _result_error(result: dict, doing: str, default: type[LdapError] = LdapIncomplete) -> LdapError:
    """The error for an operation that did not end in success (sizeLimitExceeded 4 and the rest: incomplete)."""
    code = result.get("result")
    text = f"{doing} ended with {code} {result.get('description')} {result.get('message') or ''}"
    return _RESULT_ERRORS.get(code, default)(text.strip())


class _Reader:
    """Runs searches over one connection and counts pages and entries."""

    def __init__(self, config: LdapConfig, on_page: Callable[[int], None] | None):
        self.config, self.on_page, self.conn = config, on_page, None
        self.pages = self.entries_read = 0

    def search(self, base: str, search_filter: str, attributes: list[str],
               scope=ldap3.SUBTREE) -> Iterator[tuple[str, dict]]:
        """Yield (dn, attributes) for every entry, following the RFC 2696 cookie to the last page."""
        size, cookie = self.config.page_size or None, None
        while True:
            self.conn.search(base, search_filter, scope, attributes=attributes, paged_size=size,
                             paged_cookie=cookie, paged_criticality=True)
            result, response = self.conn.result, self.conn.response or []
            if result.get("result") != 0:
                raise _result_error(result, f"search under {base!r}")
            control = (result.get("controls") or {}).get(PAGED_RESULTS)
            if size and control is None:  # RFC 2696 3: the server must answer a critical paging control in kind
                raise LdapIncomplete(f"search under {base!r}: no paged results control in the answer")
            cookie = control["value"]["cookie"] if size else None
            page = [(r["dn"], {k.lower(): v for k, v in r["raw_attributes"].items()})
                    for r in response if r["type"] == "searchResEntry"]
            self.pages += 1
            self.entries_read += len(page)
            if self.on_page:
                self.on_page(self.entries_read)
            yield from page
            if not cookie:  # an empty cookie marks the last page (RFC 2696 3)
                return


def _person_attrs(m: Mapping) -> list[str]:
    names = [m.key, m.user_name, m.given_name, m.family_name, m.display_name, m.email, m.employee_number,
             m.department, m.title, m.manager, m.disabled, m.modified, m.member_of]
    return sorted({n for n in names if n})


def _text(attrs: dict, name: str | None) -> str | None:
    values = attrs.get(name.lower()) if name else None
    return values[0].decode("utf-8") if values else None  # LDAP strings are UTF-8 (RFC 4511 4.1.2)


def _key(dn: str, attrs: dict, m: Mapping, *, group: bool = False) -> str:
    name = (m.group_key or m.key) if group else m.key
    values = attrs.get(name.lower())
    if not values:
        raise LdapIncomplete(f"{dn!r} has no {name} (the stable key): check the filter or the account's rights")
    is_guid = name.casefold() == "objectguid" if group and m.group_key else m.key_is_guid
    return str(uuid.UUID(bytes_le=values[0])) if is_guid else values[0].decode("utf-8")


def _is_disabled(attrs: dict, m: Mapping) -> bool:
    values = [v.decode("utf-8") for v in attrs.get(m.disabled.lower(), [])]
    if m.disabled_bit is not None:
        return any(int(v) & m.disabled_bit for v in values)
    if m.disabled_value is None:
        return bool(values)
    return any(v.casefold() == m.disabled_value.casefold() for v in values)


def _person(item: tuple[str, dict], m: Mapping) -> LdapPerson:
    dn, attrs = item
    user_name = _text(attrs, m.user_name)
    if not user_name:
        raise LdapIncomplete(f"{dn!r} has no {m.user_name}: check the filter or the account's rights")
    member_of = tuple(v.decode("utf-8") for v in attrs.get(m.member_of.lower(), [])) if m.member_of else ()
    return LdapPerson(dn=dn, key=_key(dn, attrs, m), user_name=user_name, given_name=_text(attrs, m.given_name),
                      family_name=_text(attrs, m.family_name), display_name=_text(attrs, m.display_name),
                      email=_text(attrs, m.email), employee_number=_text(attrs, m.employee_number),
                      department=_text(attrs, m.department), title=_text(attrs, m.title),
                      manager_dn=_text(attrs, m.manager), disabled=_is_disabled(attrs, m),
                      modified=_text(attrs, m.modified), member_of=member_of)


def _read_groups(reader: _Reader, config: LdapConfig) -> tuple[LdapGroup, ...]:
    """All groups under group_base, each with direct and transitive members."""
    m = config.mapping
    members = [f"{name};range=0-{RANGE_STEP - 1}" if config.flavor == "ad" else name for name in m.group_members]
    found = []
    for dn, attrs in reader.search(config.group_base, config.group_filter,
                                   [m.group_key or m.key, m.group_name, *members]):
        direct = [v for name in m.group_members for v in _member_values(reader, dn, attrs, name)]
        found.append((dn, _key(dn, attrs, m, group=True), _text(attrs, m.group_name), tuple(direct)))
    direct_by_group = {normalize_dn(dn): [(normalize_dn(v), v) for v in direct] for dn, _, _, direct in found}
    return tuple(LdapGroup(dn=dn, key=key, name=name, member_dns=direct,
                           members=_members_in_chain(reader, config, dn) if config.flavor == "ad"
                           else _members_by_recursion(normalize_dn(dn), direct_by_group))
                 for dn, key, name, direct in found)


def _member_values(reader: _Reader, dn: str, attrs: dict, name: str) -> list[str]:
    """Member DNs of one attribute, following AD ranged retrieval (member;range=0-1499, 1500-2999, ...) to the end.

    AD answers a large attribute in windows (member;range=0-1499) whether asked or not; the last window ends in
    `*`. A window that does not start where the last one ended, or a server that stops answering ranges, is an
    incomplete read (raised), never a shorter group.
    """
    name = name.lower()
    values = [_UNIQUE_ID.sub("", v.decode("utf-8")) for v in attrs.get(name, [])]
    ranged = [k for k in attrs if k.startswith(name + ";range=")]
    expected = 0
    while ranged:
        start, _, end = ranged[0].partition(";range=")[2].partition("-")
        if not start.isdigit() or int(start) != expected or not (end == "*" or end.isdigit()):
            raise LdapIncomplete(f"{dn!r}: {ranged[0]} does not continue at {expected}")
        values += [_UNIQUE_ID.sub("", v.decode("utf-8")) for v in attrs[ranged[0]]]
        if end == "*":
            break
        expected = int(end) + 1
        more = [f"{name};range={expected}-{expected + RANGE_STEP - 1}"]
        _, attrs = next(reader.search(dn, "(objectClass=*)", more, ldap3.BASE), (dn, {}))
        ranged = [k for k in attrs if k.startswith(name + ";range=")]
        if not ranged:
            raise LdapIncomplete(f"{dn!r}: {name} values stopped before the last range")
    return values


def _members_by_recursion(start: str, direct_by_group: dict[str, list[tuple[str, str]]]) -> tuple[str, ...]:
    """Person DNs reachable from one group through nested groups; each group visited once, so cycles end."""
    seen, people, stack = {start}, {}, [start]
    while stack:
        for norm, member in direct_by_group[stack.pop()]:
            if norm in direct_by_group:
                if norm not in seen:
                    seen.add(norm)
                    stack.append(norm)
            else:
                people.setdefault(norm, member)
    return tuple(member for _, member in sorted(people.items()))


def _members_in_chain(reader: _Reader, config: LdapConfig, group_dn: str) -> tuple[str, ...]:
    """Person DNs in a group at any depth, resolved by AD itself (LDAP_MATCHING_RULE_IN_CHAIN)."""
    chain = f"(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)})"
    found = reader.search(config.user_base, f"(&{config.user_filter}{chain})", [ldap3.NO_ATTRIBUTES])
    return tuple(sorted((dn for dn, _ in found), key=normalize_dn))
