"""JSON Schemas and reusable pieces of the OpenAPI document (see :mod:`.openapi`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from luna_handlers.app.params import NO_NUL_PATTERN, UUID_SCHEMA
from luna_handlers.app.policies import (
    handler_body_schema,
    validator_body_schema,
    verifier_body_schema,
)
from luna_handlers.app.policy_types import MAX_STR_LENGTH
from luna_handlers.app.store_params import LINK_BODY_SCHEMA, LIST_BODY_SCHEMA
from luna_handlers.errors import ERROR_LINK, LunaError

JSON = "application/json"
#: Any value is accepted: an unusable one is replaced (see middleware.REQUEST_ID_PATTERN).
REQUEST_ID_SCHEMA = {"type": "string",
                     "examples": ["1732650760,4d0c1e5b-4a0f-4b5e-9d6c-2b7f0c9e8a11"]}
TIME = {"type": "string", "format": "date-time",
        "description": "RFC 3339, UTC, microseconds: 2026-11-26T20:12:40.123456Z"}
DESCRIPTION = {"type": "string", "maxLength": MAX_STR_LENGTH}
OBJECT = {"type": "object"}
# The read cache in the health check: whether it serves, and its change feed (null: none).
_CACHE = {"type": "object", "required": ["serving", "size", "feed"],
          "properties": {"serving": {"type": "boolean"},
                         "size": {"type": "integer", "minimum": 0},
                         "feed": {"type": ["object", "null"]}}}


def ref(kind: str, name: str) -> dict[str, str]:
    """A ``$ref`` to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _closed(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An object schema with exactly ``properties``, all required."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(properties), "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    # PostgreSQL text cannot store NUL; the body parser refuses it, and the document says so.
    schema["properties"]["description"]["pattern"] = NO_NUL_PATTERN
    return schema


_ERROR_PROPERTIES: dict[str, Any] = {
    "error_code": {"type": "integer", "description": "LUNA error code"},
    "desc": {"type": "string", "description": "short description of the code"},
    "detail": {"type": "string", "description": "what exactly went wrong"},
    "link": {"type": "string", "format": "uri", "description": "documentation of the code"},
}


def error_schema(errors: Iterable[type[LunaError]]) -> dict[str, Any]:
    """The LUNA error body, ``error_code`` restricted to the codes of ``errors``."""
    codes = sorted({error.code for error in errors})
    properties = dict(_ERROR_PROPERTIES, error_code={"type": "integer", "enum": codes})
    return _closed(properties, "LUNA error body")


def component_schemas() -> dict[str, Any]:
    """``components.schemas`` of the document; the policies are shared by reference."""
    handler_body = _body(handler_body_schema())
    verifier_body = _body(verifier_body_schema())
    validator_body = validator_body_schema()
    handler_policies = validator_body["properties"]["policies"]
    verifier_policies = verifier_body["properties"]["policies"]
    nullable_policies = {"anyOf": [ref("schemas", "HandlerPolicies"), {"type": "null"}]}
    handler_body["properties"]["policies"] = dict(nullable_policies, default=None)
    validator_body["properties"]["policies"] = ref("schemas", "HandlerPolicies")
    verifier_body["properties"]["policies"] = ref("schemas", "VerifierPolicies")
    return {
        "Error": _closed(_ERROR_PROPERTIES, "LUNA error body; " + ERROR_LINK),
        "HandlerPolicies": handler_policies,
        "VerifierPolicies": verifier_policies,
        "HandlerBody": handler_body,
        "VerifierBody": verifier_body,
        "ValidatorBody": validator_body,
        "Handler": _closed({
            "handler_id": UUID_SCHEMA, "account_id": UUID_SCHEMA, "description": DESCRIPTION,
            "is_dynamic": {"type": "boolean"},
            "policies": dict(nullable_policies, description=(
                "policies with every default filled in; null for a dynamic handler")),
            "create_time": TIME, "last_update_time": TIME,
        }),
        "Verifier": _closed({
            "verifier_id": UUID_SCHEMA, "account_id": UUID_SCHEMA, "description": DESCRIPTION,
            "policies": ref("schemas", "VerifierPolicies"),
            "version": {"type": "integer", "minimum": 1,
                        "description": "1 at creation, +1 on every PUT"},
            "create_time": TIME, "last_update_time": TIME,
        }),
        "HandlerCreated": _closed({"handler_id": UUID_SCHEMA, "url": {"type": "string"}}),
        "VerifierCreated": _closed({"verifier_id": UUID_SCHEMA, "url": {"type": "string"}}),
        "Handlers": _closed({"handlers": {"type": "array", "items": ref("schemas", "Handler")}}),
        "Verifiers": _closed(
            {"verifiers": {"type": "array", "items": ref("schemas", "Verifier")}}),
        "HandlersCount": _closed({"handlers_count": {"type": "integer", "minimum": 0}}),
        "VerifiersCount": _closed({"verifiers_count": {"type": "integer", "minimum": 0}}),
        "VerifierVersion": _closed({"version": {"type": "integer", "minimum": 1}}),
        "Health": _closed({"status": {"const": "ok"}, "database": OBJECT, "cache": _CACHE}),
        "HealthFailure": _closed(dict(_ERROR_PROPERTIES, database=OBJECT, cache=_CACHE),
                                 "LUNA error body plus the database and cache status"),
        "Version": _closed({"version": {"type": "string"}, "api_version": {"const": 1}}),
        **store_schemas(),
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _page_of(key: str, item: str) -> dict[str, Any]:
    return _closed({key: {"type": "array", "items": ref("schemas", item)}})


def _count(key: str) -> dict[str, Any]:
    return _closed({key: {"type": "integer", "minimum": 0}})


def store_schemas() -> dict[str, Any]:
    """The schemas of lists, faces and events."""
    text = {"type": "string"}
    return {
        "ListBody": LIST_BODY_SCHEMA,
        "LinkBody": LINK_BODY_SCHEMA,
        "ListCreated": _closed({"list_id": UUID_SCHEMA, "url": text}),
        "List": _closed({"list_id": UUID_SCHEMA, "account_id": UUID_SCHEMA,
                         "description": DESCRIPTION, "create_time": TIME,
                         "last_update_time": TIME}),
        "Lists": _page_of("lists", "List"),
        "ListsCount": _count("lists_count"),
        "Face": _closed({
            "face_id": UUID_SCHEMA, "account_id": UUID_SCHEMA,
            "event_id": _nullable(UUID_SCHEMA), "external_id": _nullable(text),
            "user_data": text, "lists": {"type": "array", "items": UUID_SCHEMA},
            "create_time": TIME,
            "avatar": {"type": "string", "description": "URL of the avatar sample, or ''"}}),
        "Faces": _page_of("faces", "Face"),
        "FacesCount": _count("faces_count"),
        "Event": _closed({
            "event_id": UUID_SCHEMA, "url": text, "handler_id": UUID_SCHEMA,
            "account_id": UUID_SCHEMA, "source": _nullable(text),
            "tags": {"type": "array", "items": text}, "track_id": _nullable(text),
            "external_id": _nullable(text), "user_data": text, "create_time": TIME,
            "end_time": TIME, "face_id": _nullable(UUID_SCHEMA),
            "detections": {"type": "array", "items": OBJECT},
            "matches": {"type": "array", "items": OBJECT},
            "top_match": _nullable(OBJECT)}, "an event as its processing stored it"),
        "Events": _page_of("events", "Event"),
        "EventsCount": _count("events_count"),
    }


def component_headers() -> dict[str, Any]:
    """``components.headers`` of the document."""
    return {
        "LunaRequestId": {"description": "the request id: the client's, or a generated "
                                         "'<unix seconds>,<uuid4>'",
                          "required": True, "schema": {"type": "string"}},
        "Location": {"description": "URL of the created object", "required": True,
                     "schema": {"type": "string"}},
        "RetryAfter": {"description": "seconds to wait before retrying", "required": True,
                       "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        "WWWAuthenticate": {"description": "the authentication scheme", "required": True,
                            "schema": {"type": "string"}},
    }


def component_parameters() -> dict[str, Any]:
    """``components.parameters``: the headers most operations share."""
    account = {"in": "header", "name": "Luna-Account-Id", "schema": UUID_SCHEMA}
    return {
        "AccountOptional": dict(account, required=False, description=(
            "Scopes the request to this account: another account's object does not exist. "
            "Without it a read is unscoped.")),
        "AccountRequired": dict(account, required=True,
                                description="The account that owns the object."),
        "RequestId": {"in": "header", "name": "Luna-Request-Id", "required": False,
                      "schema": REQUEST_ID_SCHEMA, "description": (
                          "Echoed back and written on every log line of the request; "
                          "generated when absent or not 1..128 visible ASCII characters.")},
    }
