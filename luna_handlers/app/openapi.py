"""The OpenAPI 3.1 document of the service, generated from one table of operations.

Query parameters come from :mod:`.params` (the tables the routes parse with) and bodies from
:mod:`.policies`, so the document describes exactly what the code accepts. Error responses list
the LUNA codes each operation can answer with, and their bodies restrict ``error_code`` to them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import luna_handlers
from luna_handlers.app import openapi_schemas as schemas
from luna_handlers.app.openapi_operations import OPERATIONS, Operation
from luna_handlers.app.openapi_processing import (
    processing_schemas,
    restrict_to_engine,
)
from luna_handlers.app.openapi_schemas import JSON, ref
from luna_handlers.app.params import (
    UUID_SCHEMA,
    QueryParam,
)
from luna_handlers.errors import (
    BadAccountId,
    BadContentType,
    BadInputJson,
    BadQueryParams,
    DatabaseFailure,
    DatabaseOutcomeUnknown,
    DatabaseUnavailable,
    InternalError,
    LunaError,
    PayloadTooLarge,
    RequiredParamsNotFound,
    Unauthorized,
)


def _possible_errors(op: Operation, token_required: bool) -> dict[int, list[type[LunaError]]]:
    errors: dict[int, list[type[LunaError]]] = defaultdict(list)
    candidates: list[type[LunaError]] = [InternalError]
    if token_required and not op.public:
        candidates.append(Unauthorized)
    if op.account is not None:
        candidates.append(BadAccountId)
    if op.account == "required":
        candidates.append(RequiredParamsNotFound)
    if op.query is not None:
        candidates.append(BadQueryParams)
    if op.body is not None:
        candidates += [BadContentType, BadInputJson, PayloadTooLarge]
    if op.database is not None:
        candidates += [DatabaseUnavailable, DatabaseFailure]
    if op.database == "write":
        candidates.append(DatabaseOutcomeUnknown)
    candidates += [error for error in (op.not_found, op.corrupted) if error is not None]
    candidates += [error for error in op.also if error not in candidates]
    for error in candidates:
        errors[error.status].append(error)
    return errors


def _error_responses(op: Operation, token_required: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, errors in sorted(_possible_errors(op, token_required).items()):
        if str(status) in op.success:  # the health check documents its own 503
            continue
        response: dict[str, Any] = {
            "description": "; ".join(f"{error.code} {error.__name__}" for error in errors),
            "headers": {"Luna-Request-Id": ref("headers", "LunaRequestId")},
        }
        if status == 503:
            response["headers"]["Retry-After"] = ref("headers", "RetryAfter")
        if status == 401:
            response["headers"]["WWW-Authenticate"] = ref("headers", "WWWAuthenticate")
        if op.method != "HEAD":
            response["content"] = {JSON: {"schema": schemas.error_schema(errors)}}
        responses[str(status)] = response
    return responses


def _query_parameter(param: QueryParam) -> dict[str, Any]:
    return {"in": "query", "name": param.name, "required": False, "schema": param.schema,
            "description": param.description, **param.openapi_extra}


def _operation(op: Operation, token_required: bool) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [ref("parameters", "RequestId")]
    if op.account is not None:
        parameters.append(ref("parameters", "AccountRequired" if op.account == "required"
                              else "AccountOptional"))
    parameters += [_query_parameter(param) for param in (op.query or {}).values()]
    responses = {}
    for status, success in op.success.items():
        headers = {"Luna-Request-Id": ref("headers", "LunaRequestId"),
                   **success.get("headers", {})}
        responses[status] = success | {"headers": headers}
    document: dict[str, Any] = {
        "operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
        "parameters": parameters,
        "responses": responses | _error_responses(op, token_required),
    }
    if op.body is not None:
        document["requestBody"] = {"required": True,
                                   "content": {JSON: {"schema": ref("schemas", op.body)}}}
    elif op.body_content is not None:
        document["requestBody"] = {"required": True, "content": dict(op.body_content)}
    if op.public and token_required:
        document["security"] = []
    return document


def _path_parameter(path: str) -> list[dict[str, Any]]:
    return [{"in": "path", "name": name, "required": True, "schema": UUID_SCHEMA,
             "description": "object id (a UUID; any other value is answered with 404)"}
            for name in re.findall(r"\{(\w+)\}", path)]


def build_openapi(*, token_required: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``token_required`` adds the bearer security scheme."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item = paths.setdefault(op.path, {})
        if parameters := _path_parameter(op.path):
            item["parameters"] = parameters
        item[op.method.lower()] = _operation(op, token_required)
    components: dict[str, Any] = {
        "schemas": restrict_to_engine(schemas.component_schemas()) | processing_schemas(),
        "parameters": schemas.component_parameters(),
        "headers": schemas.component_headers(),
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "luna-handlers", "version": luna_handlers.__version__,
                 "description": "Handlers and verifiers of LUNA PLATFORM 5."},
        "tags": [{"name": "handlers"}, {"name": "verifiers"}, {"name": "processing"},
                 {"name": "lists"}, {"name": "faces"}, {"name": "events"}, {"name": "service"}],
        "paths": paths,
        "components": components,
    }
    if token_required:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearerAuth": []}]
    return document
