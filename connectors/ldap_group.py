"""An LDAP group a gateway checks (a VPN concentrator's group): remove or add the person's DN.

ldap3 modify of one value; "already absent" (noSuchAttribute, RFC 4511 §4.6) on a removal and "already there"
(attributeOrValueExists) on an addition are successes. The re-read is the group's members. The person's DN
is the one the directory sync recorded, else `dn_template` with their userName (escaped per RFC 4514).
A groupOfNames must keep one member (its schema's MUST): a removal of the last one fails and is retried.
"""

import contextlib
from collections.abc import Iterator

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn

from connectors.outbound import DISABLE, Account, DeliveryError, Outcome

ALREADY = {"disable": 16, "enable": 20}  # noSuchAttribute, attributeOrValueExists


class LdapGroupTarget:
    def __init__(self, url: str, group_dn: str, *, bind_dn=None, password=None, attribute: str = "member",
                 dn_template=None, timeout: float = 10):
        self.url, self.group_dn, self.bind_dn, self.password = url, group_dn, bind_dn, password
        self.attribute, self.dn_template, self.timeout = attribute, dn_template, timeout

    def dn_of(self, account: Account) -> str:
        if account.dn:
            return account.dn
        if self.dn_template and account.user_name:
            return str(self.dn_template).replace("{user_name}", escape_rdn(account.user_name))
        raise DeliveryError("the person has no LDAP DN and the target has no dn_template", permanent=True)

    def apply(self, op: str, account: Account, *, idempotency_key: str) -> Outcome:
        dn = self.dn_of(account)
        change = MODIFY_DELETE if op == DISABLE else MODIFY_ADD
        with self._connect() as conn:
            conn.modify(self.group_dn, {self.attribute: [(change, [dn])]})
            code = conn.result["result"]
            if code not in (0, ALREADY[op]):
                raise DeliveryError(f"modify {self.group_dn}: {conn.result['description']} "
                                    f"({conn.result.get('message') or code})")
        return Outcome(None, {"dn": dn, "ldap": "already" if code else "modified"})

    def verify(self, op: str, account: Account) -> Outcome | None:
        dn = self.dn_of(account)
        present = dn.lower() in self.holders()
        return Outcome(None, {"dn": dn, "member": present}) if present is (op != DISABLE) else None

    def key_of(self, account: Account) -> str:
        """How reconciliation names an account here: its DN, lower-cased."""
        return self.dn_of(account).lower()

    def holders(self) -> dict[str, Account]:
        """Who is in the group now: DN (lower-cased) → an account to remove it by."""
        with self._connect() as conn:
            if not conn.search(self.group_dn, "(objectClass=*)", BASE, attributes=[self.attribute]):
                raise DeliveryError(f"cannot read {self.group_dn}: {conn.result['description']}")
            members = [str(m) for m in conn.entries[0][self.attribute].values]
        return {m.lower(): Account("", None, dn=m) for m in members}

    def accounts(self) -> None:
        """Anyone with a DN can be added: no list of accounts limits the additions."""
        return None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            server = Server(self.url, connect_timeout=int(self.timeout))
            conn = Connection(server, user=self.bind_dn, password=self.password, auto_bind=True,
                              receive_timeout=int(self.timeout), raise_exceptions=False)
        except LDAPException as e:
            raise DeliveryError(f"LDAP {self.url}: {e}") from None
        try:
            yield conn
        except LDAPException as e:
            raise DeliveryError(f"LDAP {self.url}: {e}") from None
        finally:
            try:
                conn.unbind()
            except LDAPException:
                pass  # the server is gone: the unbind could not be sent
