"""The OpenAPI document, kept beside the routes it describes (a test keeps the two in step)."""

from flask import Flask, jsonify

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem_response(description: str) -> dict:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


PATHS: dict[str, dict] = {
    "/healthz": {"get": {
        "summary": "The process is up.",
        "operationId": "healthz",
        "responses": {"200": {"description": "up", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}},
    }},
    "/readyz": {"get": {
        "summary": "The database answers and its schema is current.",
        "operationId": "readyz",
        "responses": {
            "200": {"description": "ready", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "string"}, "schema": {"type": "integer"}}}}}},
            "503": _problem_response("not ready"),
        },
    }},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text format), to the addresses in GATEHOUSE_METRICS_ALLOW only.",
        "operationId": "metrics",
        "responses": {
            "200": {"description": "every worker's metrics, merged", "content": {"text/plain": {"schema": {
                "type": "string"}}}},
            "403": _problem_response("the client's address is not in GATEHOUSE_METRICS_ALLOW"),
        },
    }},
    "/openapi.json": {"get": {
        "summary": "This document.",
        "operationId": "openapi",
        "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {}}}},
    }},
    "/oauth/token": {"post": {
        "summary": "Get an access token with the client-credentials grant (RFC 6749 §4.4).",
        "operationId": "oauthToken",
        "security": [{"clientSecretBasic": []}, {}],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["grant_type"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "scope": {"type": "string", "description": "space-separated; a subset of the client's scopes"},
                "client_id": {"type": "string", "description": "client_secret_post only"},
                "client_secret": {"type": "string", "description": "client_secret_post only"},
            }}}}},
        "responses": {
            "200": {"description": "an opaque bearer token (RFC 6749 §5.1)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthToken"}}}},
            "400": {"description": "invalid request, grant or scope (RFC 6749 §5.2); a problem body that also "
                                   "carries error when the form holds text that cannot be stored (a NUL)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}},
                                "application/problem+json": {"schema": {"allOf": [
                                    PROBLEM, {"$ref": "#/components/schemas/OAuthError"}]}}}},
            "401": {"description": "client authentication failed (invalid_client)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
            "429": {"description": "this address asked too often (GATEHOUSE_RATE_LIMIT_TOKEN); error slow_down",
                    "headers": {"Retry-After": {"schema": {"type": "string"}}},
                    "content": {"application/problem+json": {"schema": {"allOf": [
                        PROBLEM, {"$ref": "#/components/schemas/OAuthError"}]}}}},
            "503": _problem_response("the database is unavailable"),
        },
    }},
}

_SCIM_ERROR = {"description": "SCIM error (RFC 7644 §3.12)",
               "content": {"application/scim+json": {"schema": {"$ref": "#/components/schemas/ScimError"}}}}


def _scim(summary: str, *, body: bool = False, ok: str = "200", item: str | None = None, method: str = "get") -> dict:
    """A SCIM operation: its success and every SCIM error it can answer (an item's 404, 409 on a write, ...)."""
    errors = ["400", "401", "403"]
    if item:
        errors.append("404")
    if method in ("post", "put", "patch") and not summary.startswith("Search"):
        errors.append("409")  # uniqueness (RFC 7644 §3.3)
    if item and method in ("put", "patch", "delete"):
        errors.append("412")  # If-Match names an older version (RFC 7644 §3.14)
    if body:
        errors += ["413", "415"]
    operation = {"summary": summary, "tags": ["SCIM"], "security": [{"bearer": []}],
                 "responses": {ok: {"description": "success", "content": {"application/scim+json": {}}}
                               if ok != "204" else {"description": "success, no body"},
                               **{status: _SCIM_ERROR for status in errors}}}
    if item:
        operation["parameters"] = [{"name": item, "in": "path", "required": True, "schema": {"type": "string"}}]
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/scim+json": {"schema": {
            "type": "object", "description": "a SCIM resource, PatchOp or SearchRequest (RFC 7643, RFC 7644 §3); "
                                            "checked against the schemas /scim/v2/Schemas serves"}}}}
    return operation


def _scim_resource(kind: str) -> dict[str, dict]:
    """The SCIM endpoints for Users or Groups (RFC 7644 §3)."""
    plural = f"/scim/v2/{kind}s"
    key = "person_id" if kind == "User" else "group_id"
    return {
        plural: {"get": _scim(f"List or filter {kind}s"),
                 "post": _scim(f"Create a {kind}", body=True, ok="201", method="post")},
        f"{plural}/.search": {"post": _scim(f"Search {kind}s", body=True, method="post")},
        f"{plural}/{{{key}}}": {
            "get": _scim(f"Get a {kind}", item=key),
            "put": _scim(f"Replace a {kind}", body=True, item=key, method="put"),
            "patch": _scim(f"Patch a {kind}", body=True, ok="200" if kind == "User" else "204", item=key,
                           method="patch"),
            "delete": _scim(f"Delete a {kind}", ok="204", item=key, method="delete")},
    }


PATHS.update({
    "/scim/v2/ServiceProviderConfig": {"get": _scim("What this SCIM service provider supports")},
    "/scim/v2/Schemas": {"get": _scim("The supported schemas")},
    "/scim/v2/Schemas/{schema_id}": {"get": _scim("One schema", item="schema_id")},
    "/scim/v2/ResourceTypes": {"get": _scim("The resource types")},
    "/scim/v2/ResourceTypes/{type_id}": {"get": _scim("One resource type", item="type_id")},
    "/scim/v2/.search": {"post": _scim("Search every resource type (Users, then Groups)", body=True, method="post")},
    **_scim_resource("User"),
    **_scim_resource("Group"),
})


def _access(summary: str, responses: dict, **extra) -> dict:
    """An access API operation: bearer token with the access:check scope."""
    return {"summary": summary, "tags": ["Access"], "security": [{"oauth2": ["access:check"]}], **extra,
            "responses": {**responses, "400": _problem_response("bad input (missing, over 256 characters)"),
                          "401": _problem_response("no valid bearer token (journaled)"),
                          "403": _problem_response("the token lacks the access:check scope (journaled)")}}


_DECISION = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccessDecision"}}}}
_RADIUS = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/RadiusReply"}}}}
_CHECK_RESPONSES = {
    "200": {"description": "the decision, journaled (kind check) before this answer", **_DECISION},
    "503": {"description": "fail closed: the facts or the journal are unavailable; allow is false", **_DECISION},
}
_VALUE = {"type": "string", "minLength": 1, "maxLength": 256,
          "description": "printable text (str.isprintable: no control, format or unassigned characters)"}
_QUERY = [{"name": n, "in": "query", "required": True, "schema": _VALUE} for n in ("user", "resource")]

PATHS.update({
    "/api/v1/access/check": {
        "post": _access("May this person use this resource now?", _CHECK_RESPONSES, operationId="accessCheck",
                        requestBody={"required": True, "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/AccessCheckRequest"}}}}),
        "get": _access("May this person use this resource now? (query form)", _CHECK_RESPONSES,
                       operationId="accessCheckGet", parameters=_QUERY),
    },
    "/api/v1/access/radius": {"post": {
        "summary": "The check for FreeRADIUS rlm_rest: 200 accepts, 401 rejects; both carry Reply-Message.",
        "tags": ["Access"], "security": [{"oauth2": ["access:check"]}], "operationId": "accessRadius",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["user"], "properties": {
                "user": _VALUE, "resource": {**_VALUE, "default": "vpn"}}}}}},
        "responses": {"200": {"description": "allowed", **_RADIUS},
                      "401": {"description": "denied, unavailable, refused or bad input", **_RADIUS}},
    }},
    "/api/v1/access/resources/{resource}/members": {"get": _access(
        "The userNames allowed to use the resource now (ETag; If-None-Match answers 304).", {
            "200": {"description": "the members", "headers": {"ETag": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Members"}}}},
            "304": {"description": "unchanged since the ETag sent in If-None-Match"},
            "404": _problem_response("no such resource"),
            "503": _problem_response("the facts or the journal are unavailable"),
        }, operationId="accessMembers", parameters=[
            {"name": "resource", "in": "path", "required": True, "schema": _VALUE},
            {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}])},
})

_COMPLETION_FIELDS = {
    "person": {"type": "string", "maxLength": 256, "description": "userName, primary email or employee number"},
    "course": {"type": "string", "description": "one of the policy's training courses"},
    "completed_at": {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset; not future"},
    "source": {"type": "string", "maxLength": 64},
    "source_id": {"type": "string", "maxLength": 256},
}
_COMPLETION = {"type": "object", "required": list(_COMPLETION_FIELDS), "properties": _COMPLETION_FIELDS,
               "description": "a valid completion; an item that is not one is answered with status invalid in "
                              "its result (a 200), never a 400"}
_STATUSES = ["accepted", "duplicate", "unknown_person", "ambiguous_person", "invalid"]
PATHS.update({
    "/api/v1/training/completions": {"post": {
        "summary": "Report completed training; idempotent on (source, source_id); a result per item.",
        "tags": ["Training"], "security": [{"oauth2": ["training:write"]}], "operationId": "trainingCompletions",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["completions"], "properties": {"completions": {
                "type": "array", "minItems": 1, "maxItems": 1000, "items": {
                    "description": "each item is checked on its own: see TrainingCompletion for a valid one"}}}}}}},
        "responses": {
            "200": {"description": "one result per item, in order; accepted items are journaled (kind sync, or "
                                   "restore when they bring the person back into compliance)",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "results": {"type": "array", "items": {"type": "object", "properties": {
                            "index": {"type": "integer"}, "status": {"type": "string", "enum": _STATUSES},
                            "detail": {"type": "string"}}}},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}},
            "400": _problem_response("not a JSON object with 1 to 1000 completions"),
            "401": _problem_response("no valid bearer token (journaled)"),
            "403": _problem_response("the token lacks the training:write scope (journaled)"),
            "503": _problem_response("the database is unavailable; nothing was recorded"),
        },
    }},
})

def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string", "maxLength": 256}}


_JOURNAL_ROW = {"type": "object", "properties": {
    "seq": {"type": "integer"}, "ts": {"type": "string", "format": "date-time"}, "kind": {"type": "string"},
    "subject": {"type": ["string", "null"]}, "resource": {"type": ["string", "null"]}, "outcome": {"type": "string"},
    "reasons": {"type": "array"}, "detail": {"type": "object"}, "actor": {"type": "string"},
    "policy_version": {"type": ["string", "null"]}, "request_id": {"type": ["string", "null"]},
    "prev_hash": {"type": "string", "description": "hex; the previous row's hash (zeros before the first)"},
    "hash": {"type": "string", "description": "hex sha256 of the row's canonical encoding (README: The journal)"}}}
PATHS.update({
    "/api/v1/journal": {"get": {
        "summary": "Pull the journal in order, for a SIEM: rows after after_seq, each with its hash to verify the "
                   "chain as it goes.",
        "tags": ["Journal"], "security": [{"oauth2": ["journal:read"]}], "operationId": "journalPull",
        "parameters": [
            _query("after_seq", "rows with a seq above this one (default 0)", {"type": "integer", "minimum": 0}),
            _query("limit", "at most this many rows (default 500)", {"type": "integer", "minimum": 1,
                                                                     "maximum": 1000}),
            _query("kind", "comma-separated journal kinds"), _query("resource", "a resource key"),
            _query("outcome", "e.g. allow, deny, revoked"), _query("reason", "a reason code"),
            _query("actor", "e.g. admin:ada@example.com"), _query("person", "a userName or person id"),
            _query("since", "ISO 8601 date or instant (UTC), inclusive"),
            _query("until", "ISO 8601 date (inclusive) or instant (exclusive)")],
        "responses": {
            "200": {"description": "rows oldest first; next_after_seq to ask for the next page; the head now",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "rows": {"type": "array", "items": _JOURNAL_ROW}, "next_after_seq": {"type": "integer"},
                        "head": {"type": "object", "properties": {"seq": {"type": "integer"},
                                                                  "hash": {"type": "string"}}}}}}}},
            "400": _problem_response("a filter or cursor that is not valid"),
            "401": _problem_response("no valid bearer token (journaled)"),
            "403": _problem_response("the token lacks the journal:read scope (journaled)"),
            "404": _problem_response("the person filter names nobody"),
            "503": _problem_response("the database is unavailable"),
        },
    }},
})

_ROOT = {"type": "object", "properties": {"hex": {"type": "string"}, "base64": {"type": "string"}}}
_HASHES = {"type": "array", "items": {"type": "string", "description": "a 32-byte hash, hex"}}
_CHECKPOINT = {"type": ["string", "null"], "description": "the stored signed checkpoint (signed-note) of that size"}
_JOURNAL_ERRORS = {
    "400": _problem_response("a tree size that is not a whole number, or outside the tree"),
    "401": _problem_response("no valid bearer token (journaled)"),
    "403": _problem_response("the token lacks the journal:read scope (journaled)"),
    "503": _problem_response("the database is unavailable"),
}
PATHS.update({
    "/api/v1/journal/{seq}/proof": {"get": {
        "summary": "The RFC 9162 inclusion proof of journal row seq (leaf seq-1, leaf input = the row's hash).",
        "tags": ["Journal"], "security": [{"oauth2": ["journal:read"]}], "operationId": "journalProof",
        "parameters": [{"name": "seq", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
                       {"name": "tree_size", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "default: the newest stored checkpoint's if it covers seq, else the head"}],
        "responses": {"200": {"description": "the proof", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "seq": {"type": "integer"}, "leaf_index": {"type": "integer"}, "tree_size": {"type": "integer"},
                "leaf_input": {"type": "string"}, "root": _ROOT, "inclusion_path": _HASHES,
                "checkpoint": _CHECKPOINT}}}}},
            "404": _problem_response("no such row"), **_JOURNAL_ERRORS},
    }},
    "/api/v1/journal/consistency": {"get": {
        "summary": "The RFC 9162 consistency proof between two tree sizes of the journal.",
        "tags": ["Journal"], "security": [{"oauth2": ["journal:read"]}], "operationId": "journalConsistency",
        "parameters": [{"name": n, "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}}
                       for n in ("from", "to")],
        "responses": {"200": {"description": "the proof", "content": {"application/json": {"schema": {
            "type": "object", "properties": {
                "old_size": {"type": "integer"}, "new_size": {"type": "integer"}, "old_root": _ROOT,
                "new_root": _ROOT, "consistency_path": _HASHES, "old_checkpoint": _CHECKPOINT,
                "new_checkpoint": _CHECKPOINT}}}}},
            **_JOURNAL_ERRORS},
    }},
})

_REASON = {"type": "object", "required": ["code", "text"],
           "properties": {"code": {"type": "string"}, "text": {"type": "string"}}}
ACCESS_SCHEMAS = {
    "AccessCheckRequest": {"type": "object", "required": ["user", "resource"], "properties": {
        "user": {"type": "string", "maxLength": 256, "description":
                 "userName or primary email (employee number too when GATEHOUSE_CHECK_IDENTIFIERS lists it)"},
        "resource": {"type": "string", "maxLength": 256}}},
    "AccessDecision": {"type": "object", "required": ["allow", "reasons", "decision_id", "policy_version"],
                       "properties": {
                           "allow": {"type": "boolean"}, "reasons": {"type": "array", "items": _REASON},
                           "decision_id": {"type": ["integer", "null"], "description": "the journal seq"},
                           "policy_version": {"type": "string"}, "code": {"type": "string"},
                           "request_id": {"type": "string"}}},
    "RadiusReply": {"type": "object", "required": ["reply:Reply-Message"], "properties": {
        "reply:Reply-Message": {"type": "object", "required": ["value", "do_xlat"], "properties": {
            "value": {"type": "string"}, "do_xlat": {"type": "boolean", "enum": [False]}}}}},
    "Members": {"type": "object", "required": ["resource", "members", "policy_version"], "properties": {
        "resource": {"type": "string"}, "members": {"type": "array", "items": {"type": "string"}},
        "policy_version": {"type": "string"}}},
}


COMPONENTS = {
    "schemas": {
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details, with Gatehouse's code and the request id.",
            "required": ["title", "status", "code"],
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "code": {"type": "string"}, "request_id": {"type": "string"},
            },
        },
        "OAuthToken": {
            "type": "object", "required": ["access_token", "token_type", "expires_in", "scope"],
            "properties": {
                "access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
                "expires_in": {"type": "integer"}, "scope": {"type": "string"},
            },
        },
        "ScimError": {
            "type": "object", "required": ["schemas", "status"], "description": "RFC 7644 §3.12",
            "properties": {"schemas": {"type": "array", "items": {"type": "string"}}, "status": {"type": "string"},
                           "detail": {"type": "string"}, "scimType": {"type": "string"}},
        },
        "TrainingCompletion": _COMPLETION,
        "OAuthError": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        },
    },
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An access token from /oauth/token, or a static token for SCIM clients."},
        "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {
            "scim": "push people and groups over SCIM 2.0",
            "access:check": "ask whether a person may connect now",
            "training:write": "report completed training",
            "journal:read": "read the decision journal",
        }}}},
        "clientSecretBasic": {"type": "http", "scheme": "basic",
                              "description": "client_id and client_secret, for /oauth/token only."},
    },
}

COMPONENTS["schemas"].update(ACCESS_SCHEMAS)


def document(base_url: str = "") -> dict:
    """The whole OpenAPI 3.1 document."""
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse", "version": "0.1.0",
                 "description": "Identity governance and access enforcement."},
        "paths": PATHS,
        "components": COMPONENTS,
    }
    if base_url:
        doc["servers"] = [{"url": base_url}]
    return doc


def init_app(app: Flask) -> None:
    settings = app.extensions["gatehouse"].settings

    @app.get("/openapi.json")
    def openapi_json():
        return jsonify(document(settings.public_base_url))
