"""Group → resource rules of the policy file against those in force: what to add and drop, and the guard. No I/O."""

from dataclasses import dataclass

from policies.model import Guard, Policy

Pair = tuple[str, str]  # (group name as the file spells it, resource key)


def rule_pairs(policy: Policy) -> tuple[Pair, ...]:
    """Every (group, resource) the file's [[rules]] name, in file order."""
    return tuple((rule.group, resource) for rule in policy.rules for resource in rule.resources)


@dataclass(frozen=True)
class RuleChanges:
    """Rules to add and to drop; a group renamed only in case is the same rule (groups are unique by lower name)."""

    added: tuple[Pair, ...]
    removed: tuple[Pair, ...]
    renamed: tuple[Pair, ...] = ()  # same group and resource, spelled differently in the file now

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed)


def diff_rules(wanted: tuple[Pair, ...] | list[Pair], current: tuple[Pair, ...] | list[Pair]) -> RuleChanges:
    """What turns the rules in force (`current`) into the file's (`wanted`)."""
    now = {(group.lower(), resource): group for group, resource in current}
    new = {(group.lower(), resource): group for group, resource in wanted}
    return RuleChanges(
        added=tuple((new[k], k[1]) for k in new if k not in now),
        removed=tuple((now[k], k[1]) for k in now if k not in new),
        renamed=tuple((new[k], k[1]) for k in new if k in now and now[k] != new[k]),
    )


def over_guard(guard: Guard, ending: int, total: int) -> bool:
    """Whether ending `ending` of `total` things exceeds the guard's share or count (the LDAP sync's rule too)."""
    return ending > 0 and (ending > guard.max_deactivations or ending > guard.max_deactivation_share * total)


def hold_reason(guard: Guard, *, ending: list[str], active: int) -> str | None:
    """A message when applying would end more grants than the guard allows, or None. `ending`: 'user → resource'."""
    if not over_guard(guard, len(ending), active):
        return None
    names = ", ".join(sorted(ending)[:10]) + (", ..." if len(ending) > 10 else "")
    return (f"would end {len(ending)} of {active} active grants ({len(ending) / max(active, 1):.0%}): {names}; "
            f"the guard allows at most {guard.max_deactivation_share:.0%} or {guard.max_deactivations}. "
            "Nothing was applied: confirm or discard this change.")
