"""Machine clients: the OAuth 2.0 client-credentials token endpoint (tokens are verified in auth/tokens.py).

Access tokens are opaque random strings (RFC 6750 bearer tokens), not JWTs:
their hash in api_tokens is their only record, so revoking a client takes
effect on its next request. Refused token requests are journaled (counted, when
they carry no credential at all); tokens issued are not (too chatty: every
client asks every few minutes).
"""

import re
import secrets

import psycopg
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidClientError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization, list_to_scope, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import Flask, g, request

from service.auth.guards import carries_credential, count_anonymous
from service.auth.principal import SCOPES
from service.clients import store as clients
from service.db import first_line
from service.errors import DatabaseUnavailable
from service.journal import Event

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _ClientCredentials(ClientCredentialsGrant):
    """RFC 6749 §4.4, with the secret in a Basic header or in the form (§2.3.1)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _Client(ClientMixin):
    """A stored client as authlib sees it: confidential, client credentials only."""

    def __init__(self, client: clients.Client):
        self.client = client

    def get_client_id(self):
        return self.client.client_id

    def get_default_redirect_uri(self):
        return None

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS

    def check_client_secret(self, client_secret):
        if not clients.secret_matches(self.client, client_secret):
            g.oauth_refusal = "wrong client secret"
            return False
        if self.client.revoked:
            g.oauth_refusal = "client revoked"
            return False
        return True

    def get_allowed_scope(self, scope):
        """The client's scopes, or the requested subset of them; None (invalid_scope) for more (RFC 6749 §3.3)."""
        if not scope:
            return list_to_scope(self.client.scopes)
        wanted = list(dict.fromkeys(scope_to_list(scope)))
        return list_to_scope(wanted) if set(wanted) <= set(self.client.scopes) else None


class _Server(AuthorizationServer):
    """authlib's authorization server on our pool, journaling every refusal."""

    def __init__(self, services):
        super().__init__()
        self.services = services
        self.scopes_supported = list(SCOPES)
        lifetime = services.settings.token_lifetime
        self.register_token_generator("default", BearerTokenGenerator(
            lambda **_: secrets.token_urlsafe(32), expires_generator=lambda client, grant_type: lifetime))
        self.register_grant(_ClientCredentials)

    def query_client(self, client_id):
        client = None
        if _CLIENT_ID.match(client_id):
            with self.services.pool.connection() as conn:
                client = clients.get(conn, client_id)
        if client is None:
            g.oauth_refusal = "unknown client"
            return None
        return _Client(client)

    def save_token(self, token, oauth_request):
        with self.services.pool.connection() as conn:
            clients.save_access_token(conn, oauth_request.client.client, token["access_token"],
                                      scopes=scope_to_list(token.get("scope", "")), lifetime=token["expires_in"])

    def handle_error_response(self, oauth_request, error):
        """Journal the refusal (count it, without credentials), then answer with the RFC 6749 §5.2 JSON error."""
        reason = g.pop("oauth_refusal", None) or error.get_error_description() or error.error
        scope = request.form.get("scope", "")
        if not (carries_credential() or request.form.get("client_id") or request.form.get("client_secret")):
            count_anonymous(kind="admin", code=error.error, text=reason)  # no credential: counted, not journaled
        else:
            self._journal_refusal(error.error, reason, scope)
        if error.error == "invalid_client":
            # One answer for unknown, revoked and wrong secret; 401 as §5.2 asks when Basic was tried.
            error = InvalidClientError(status_code=401, description="client authentication failed")
        return super().handle_error_response(oauth_request, error)

    def _journal_refusal(self, code: str, reason: str, scope: str) -> None:
        self.services.journal.record(
            Event(
                kind="admin",
                outcome="refused",
                actor=f"client:{_claimed_client_id()}",
                reasons=({"code": code, "text": reason},),
                detail={
                    "what": "oauth:token",
                    "method": request.method,
                    "path": request.path,
                    **({"scope": scope[:200]} if scope else {}),
                },
            )
        )


def _claimed_client_id() -> str:
    """The client_id the caller claims (Basic header first, as authlib tries it), if it looks like one."""
    try:
        claimed, _ = extract_basic_authorization(request.headers)
    except UnicodeDecodeError:
        claimed = None
    claimed = claimed or request.form.get("client_id")
    return claimed if claimed and _CLIENT_ID.match(claimed) else "unknown"


def init_app(app: Flask) -> None:
    """Register POST /oauth/token."""
    server = _Server(app.extensions["gatehouse"])

    @app.post("/oauth/token")
    def oauth_token():
        try:
            return server.create_token_response()
        except InsecureTransportError as e:  # RFC 6749 §3.2: the token endpoint requires TLS
            return server.handle_error_response(None, e)
        except UnicodeDecodeError:  # authlib decodes Basic credentials as UTF-8 (RFC 7617 §2.1) and may fail
            g.oauth_refusal = "Basic credentials are not UTF-8"
            return server.handle_error_response(None, InvalidClientError())
        except psycopg.OperationalError as e:
            raise DatabaseUnavailable(f"database not reachable: {first_line(e)}") from None
