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
    },
    "securitySchemes": {},
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
