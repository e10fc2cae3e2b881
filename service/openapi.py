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
            "400": {"description": "invalid request, grant or scope (RFC 6749 §5.2)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
            "401": {"description": "client authentication failed (invalid_client)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
            "503": _problem_response("the database is unavailable"),
        },
    }},
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
