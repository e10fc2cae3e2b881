"""The client use cases, shared by the console and the CLI: each changes the rows and says what to journal.

Each returns (result, detail); the caller journals detail in the same transaction, the console through the
admin's step-up proof, the CLI as the operator. The detail never holds a secret or a token.
"""

from service.clients import store


def about(client: store.Client) -> dict:
    return {"client": client.name, "client_id": client.client_id, "scopes": list(client.scopes)}


def create(conn, *, name: str, scopes, actor: str) -> tuple[store.Issued, dict]:
    """Register a client; its secret is in the result only."""
    issued = store.create(conn, name=name, scopes=scopes, created_by=actor)
    return issued, about(issued.client)


def revoke(conn, name: str) -> tuple[tuple[store.Client, int], dict]:
    """Revoke a client and every token it holds."""
    client, tokens = store.revoke(conn, name)
    return (client, tokens), {**about(client), "tokens_revoked": tokens}


def rotate(conn, name: str) -> tuple[store.Issued, dict]:
    """A new secret (the client's access tokens stop working)."""
    issued = store.rotate_secret(conn, name)
    return issued, about(issued.client)


def issue_token(conn, name: str) -> tuple[store.Issued, dict]:
    """A long-lived bearer token for a SCIM pusher (Okta, Entra ID)."""
    issued = store.issue_static_token(conn, name)
    return issued, {**about(issued.client), "kind": "static"}
