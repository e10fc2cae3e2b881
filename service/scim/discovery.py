"""SCIM discovery (RFC 7644 §4): what this server supports, and nothing it does not."""

import functools

from scim2_models import Context, EnterpriseUser, Group, ResourceType, User

from service.scim.resources import USER_MODEL

MAX_RESULTS = 1000
SUPPORTED = {
    "User": {"userName", "name", "displayName", "title", "active", "emails", "groups"},
    "EnterpriseUser": {"employeeNumber", "department", "organization", "manager"},
    "Group": {"displayName", "members"},
}
SUB_SUPPORTED = {"name": {"givenName", "familyName", "formatted"}, "emails": {"value", "type", "primary"},
                 "manager": {"value"}, "members": {"value", "display", "type", "$ref"},
                 "groups": {"value", "display", "type", "$ref"}}


def service_provider_config(base: str) -> dict:
    """RFC 7643 §5: PATCH and ETags yes; bulk, sort, password change no."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": f"{base.rsplit('/scim', 1)[0]}/openapi.json",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": True,
            "description": "A bearer token with the 'scim' scope: a static token, or one from /oauth/token.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750"}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


# Where Gatehouse's storage differs from the RFC 7643 defaults scim2-models carries: the unique indexes
# people_employee_number_key and groups_display_name_key (any case), and employee numbers compared exactly.
TRUE_CHARACTERISTICS = {
    ("EnterpriseUser", "employeeNumber"): {"uniqueness": "server", "caseExact": True},
    ("Group", "displayName"): {"uniqueness": "server", "caseExact": False},
}


def _trimmed(name: str, schema: dict, supported: set[str]) -> dict:
    attributes = []
    for attribute in schema["attributes"]:
        if attribute["name"] not in supported:
            continue
        attribute = {**attribute, **TRUE_CHARACTERISTICS.get((name, attribute["name"]), {})}
        subs = SUB_SUPPORTED.get(attribute["name"])
        if subs and "subAttributes" in attribute:
            attribute = {**attribute, "subAttributes": [a for a in attribute["subAttributes"] if a["name"] in subs]}
        attributes.append(attribute)
    return {**schema, "attributes": attributes}


@functools.cache
def _schemas() -> tuple[dict, ...]:
    dump = {"scim_ctx": Context.RESOURCE_QUERY_RESPONSE}
    return tuple(_trimmed(name, model.to_schema().model_dump(**dump), SUPPORTED[name])
                 for name, model in (("User", User), ("EnterpriseUser", EnterpriseUser), ("Group", Group)))


def schemas(base: str) -> list[dict]:
    """The User, enterprise extension and Group schemas, trimmed to what is stored."""
    return [{**s, "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{s['id']}"}} for s in _schemas()]


def resource_types(base: str) -> list[dict]:
    types = []
    for model in (USER_MODEL, Group):
        body = ResourceType.from_resource(model).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        body["meta"] = {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{body['id']}"}
        types.append(body)
    return types
