"""What a directory read yields, as plain frozen values with no I/O: people, groups, the snapshot of one read.

Apart from connectors/ldap.py (which does the reading with ldap3) so that the sync's planner can use these
types and stay pure.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class LdapPerson:
    """One person entry; optional fields are None when the entry lacks the attribute."""

    dn: str
    key: str
    user_name: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    email: str | None
    employee_number: str | None
    department: str | None
    title: str | None
    manager_dn: str | None
    disabled: bool
    modified: str | None
    member_of: tuple[str, ...] = ()  # direct groups, from memberOf when the server keeps it


@dataclass(frozen=True)
class LdapGroup:
    """One group: its direct member DNs and the person DNs reached through nested groups."""

    dn: str
    key: str
    name: str | None
    member_dns: tuple[str, ...]
    members: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """What one read saw; complete is True only for a full read (absence then means removal)."""

    people: tuple[LdapPerson, ...]
    groups: tuple[LdapGroup, ...]
    complete: bool
    high_water: str | None
    pages: int
    entries_read: int


_DN_SPACES = re.compile(r"\s*([,=+])\s*")
_ANY_SPACE = re.compile(r"\s")


def normalize_dn(dn: str) -> str:
    """A comparison form of a DN: case-folded, no spaces around separators (RFC 4514 names)."""
    folded = dn.strip().lower()
    if not _ANY_SPACE.search(folded):  # the usual case, and 20 times cheaper than the substitution
        return folded
    return _DN_SPACES.sub(r"\1", folded)
