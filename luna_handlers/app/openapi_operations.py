"""The table of documented operations (:func:`luna_handlers.app.openapi.build_openapi` makes
the document of it): per route its answers, parameters, body and the traits its error
responses are derived from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from luna_handlers.app.event_params import EVENT_PARAMS, FACE_PARAMS, VERIFICATION_PARAMS
from luna_handlers.app.openapi_processing import images_body, raw_body
from luna_handlers.app.openapi_schemas import JSON, ref
from luna_handlers.app.params import (
    HANDLER_COUNT_PARAMS,
    HANDLER_LIST_PARAMS,
    VERIFIER_COUNT_PARAMS,
    VERIFIER_LIST_PARAMS,
    QueryParam,
)
from luna_handlers.app.store_params import (
    EVENT_COUNT_PARAMS,
    EVENT_LIST_PARAMS,
    FACE_COUNT_PARAMS,
    FACE_LIST_PARAMS,
    LIST_COUNT_PARAMS,
    LIST_LIST_PARAMS,
)
from luna_handlers.errors import (
    BadContentType,
    BadImage,
    BadInputJson,
    DynamicHandlerWithoutPolicies,
    EngineBusy,
    EstimationNotAvailable,
    EventNotFound,
    FaceNotFound,
    HandlerCorrupted,
    HandlerNotFound,
    ImageTooLarge,
    ListNotFound,
    LunaError,
    MultipleFaces,
    NoFaceFound,
    PayloadTooLarge,
    SampleNotFound,
    StaticHandlerPolicies,
    UnsupportedImageType,
    VerifierCorrupted,
    VerifierNotFound,
)

Account = Literal["optional", "required"] | None
DBAccess = Literal["read", "write"] | None


@dataclass(frozen=True)
class Operation:
    """One documented operation; the error responses are derived from its traits."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    success: Mapping[str, dict[str, Any]]
    account: Account = "optional"
    query: Mapping[str, QueryParam] | None = None
    body: str | None = None  # name of a component schema
    not_found: type[LunaError] | None = None
    also: tuple[type[LunaError], ...] = ()  # further errors of this operation
    corrupted: type[LunaError] | None = None
    database: DBAccess = "read"
    public: bool = False  # no token needed
    body_content: Mapping[str, Any] | None = None  # a request body that is not one schema


def _ok(description: str, schema: str | None = None, media_type: str = JSON,
        **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": ref("schemas", schema)}}
    if headers:
        response["headers"] = {name: ref("headers", header) for name, header in headers.items()}
    return response


def _text(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


_NONE: dict[str, Any] = {"description": "done; no body"}
_JPEG: dict[str, Any] = {"description": "the JPEG", "content": {"image/jpeg": {"schema": {
    "type": "string", "contentMediaType": "image/jpeg"}}}}
_EXISTS: dict[str, Any] = {"description": "the object exists; no body"}
H, V = "/1/handlers", "/1/verifiers"
HID, VID = f"{H}/{{handler_id}}", f"{V}/{{verifier_id}}"
#: What every route that runs the engine on images can answer.
#: What a body with images can be refused for (BadInputJson: a JSON body's fields).
_ENGINE_ERRORS = (BadImage, ImageTooLarge, EngineBusy, UnsupportedImageType, BadContentType,
                  PayloadTooLarge, BadInputJson)

L, F, E = "/1/lists", "/1/faces", "/1/events"
LID, FID = f"{L}/{{list_id}}", f"{F}/{{face_id}}"
STORE_OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", L, "createList", "Create a list of faces", "lists",
              {"201": _ok("created", "ListCreated", Location="Location")},
              account="required", body="ListBody", database="write"),
    Operation("GET", L, "getLists", "List lists, newest first", "lists",
              {"200": _ok("one page", "Lists")}, query=LIST_LIST_PARAMS),
    Operation("GET", f"{L}/count", "getListsCount", "Count lists", "lists",
              {"200": _ok("the count", "ListsCount")}, query=LIST_COUNT_PARAMS),
    Operation("GET", LID, "getList", "Get a list", "lists", {"200": _ok("the list", "List")},
              not_found=ListNotFound),
    Operation("HEAD", LID, "checkList", "Check that a list exists", "lists", {"200": _EXISTS},
              not_found=ListNotFound),
    Operation("DELETE", LID, "deleteList", "Delete a list (its faces stay)", "lists",
              {"204": _NONE}, account="required", not_found=ListNotFound, database="write"),
    Operation("PATCH", f"{LID}/faces", "linkFaces", "Attach faces to a list or detach them",
              "lists", {"204": _NONE}, account="required", body="LinkBody",
              not_found=ListNotFound, also=(FaceNotFound,), database="write"),
    Operation("GET", F, "getFaces", "List faces, newest first", "faces",
              {"200": _ok("one page", "Faces")}, query=FACE_LIST_PARAMS),
    Operation("GET", f"{F}/count", "getFacesCount", "Count faces", "faces",
              {"200": _ok("the count", "FacesCount")}, query=FACE_COUNT_PARAMS),
    Operation("GET", FID, "getFace", "Get a face", "faces", {"200": _ok("the face", "Face")},
              not_found=FaceNotFound),
    Operation("DELETE", FID, "deleteFace", "Delete a face", "faces", {"204": _NONE},
              account="required", not_found=FaceNotFound, database="write"),
    Operation("GET", E, "getEvents", "List events, newest first", "events",
              {"200": _ok("one page", "Events")}, query=EVENT_LIST_PARAMS),
    Operation("GET", f"{E}/count", "getEventsCount", "Count events", "events",
              {"200": _ok("the count", "EventsCount")}, query=EVENT_COUNT_PARAMS),
    Operation("GET", f"{E}/{{event_id}}", "getEvent", "Get an event", "events",
              {"200": _ok("the event", "Event")}, not_found=EventNotFound),
    Operation("GET", "/1/samples/faces/{sample_id}", "getFaceSample", "Get a face sample",
              "faces", {"200": _JPEG}, not_found=SampleNotFound),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", H, "createHandler", "Create a handler", "handlers",
              {"201": _ok("created", "HandlerCreated", Location="Location")},
              account="required", body="HandlerBody", database="write",
              also=(EstimationNotAvailable,)),
    Operation("GET", H, "getHandlers", "List handlers, newest first", "handlers",
              {"200": _ok("one page", "Handlers")}, query=HANDLER_LIST_PARAMS,
              corrupted=HandlerCorrupted),
    Operation("GET", f"{H}/count", "getHandlersCount", "Count handlers", "handlers",
              {"200": _ok("the count", "HandlersCount")}, query=HANDLER_COUNT_PARAMS),
    Operation("POST", f"{H}/validator", "validatePolicies",
              "Validate handler policies without saving them", "handlers",
              {"204": {"description": "the policies are valid"}}, account="required",
              body="ValidatorBody", database=None, also=(EstimationNotAvailable,)),
    Operation("GET", HID, "getHandler", "Get a handler", "handlers",
              {"200": _ok("the handler", "Handler")}, not_found=HandlerNotFound,
              corrupted=HandlerCorrupted),
    Operation("HEAD", HID, "checkHandler", "Check that a handler exists", "handlers",
              {"200": _EXISTS}, not_found=HandlerNotFound),
    Operation("PUT", HID, "putHandler", "Replace a handler", "handlers", {"204": _NONE},
              account="required", body="HandlerBody", not_found=HandlerNotFound,
              database="write", also=(EstimationNotAvailable,)),
    Operation("DELETE", HID, "deleteHandler", "Delete a handler", "handlers", {"204": _NONE},
              account="required", not_found=HandlerNotFound, database="write"),
    Operation("POST", V, "createVerifier", "Create a verifier", "verifiers",
              {"201": _ok("created", "VerifierCreated", Location="Location")},
              account="required", body="VerifierBody", database="write",
              also=(EstimationNotAvailable,)),
    Operation("GET", V, "getVerifiers", "List verifiers, newest first", "verifiers",
              {"200": _ok("one page", "Verifiers")}, query=VERIFIER_LIST_PARAMS,
              corrupted=VerifierCorrupted),
    Operation("GET", f"{V}/count", "getVerifiersCount", "Count verifiers", "verifiers",
              {"200": _ok("the count", "VerifiersCount")}, query=VERIFIER_COUNT_PARAMS),
    Operation("GET", VID, "getVerifier", "Get a verifier", "verifiers",
              {"200": _ok("the verifier", "Verifier")}, not_found=VerifierNotFound,
              corrupted=VerifierCorrupted),
    Operation("HEAD", VID, "checkVerifier", "Check that a verifier exists", "verifiers",
              {"200": _EXISTS}, not_found=VerifierNotFound),
    Operation("PUT", VID, "putVerifier", "Replace a verifier; its version goes up by one",
              "verifiers", {"200": _ok("the new version", "VerifierVersion")},
              account="required", body="VerifierBody", not_found=VerifierNotFound,
              database="write", also=(EstimationNotAvailable,)),
    Operation("POST", f"{HID}/events", "createEvents",
              "Run a handler on images: one event per face", "processing",
              {"201": _ok("the events", "CreatedEvents")}, account="required", query=EVENT_PARAMS,
              body_content=images_body(policies=True), not_found=HandlerNotFound,
              corrupted=HandlerCorrupted, database="write",
              also=(*_ENGINE_ERRORS, MultipleFaces, StaticHandlerPolicies,
                      DynamicHandlerWithoutPolicies, EstimationNotAvailable, ListNotFound)),
    Operation("POST", f"{VID}/verifications", "verify",
              "Compare the faces of images with stored faces and events", "processing",
              {"200": _ok("the checks", "Verifications")}, account="required",
              query=VERIFICATION_PARAMS, body_content=images_body(policies=False),
              not_found=VerifierNotFound, corrupted=VerifierCorrupted, database="write",
              also=(*_ENGINE_ERRORS, FaceNotFound, EventNotFound)),
    Operation("POST", f"{VID}/raw", "verifyRaw", "Compare descriptors (stored or given)",
              "processing", {"200": _ok("the matches", "RawMatches")}, account="required",
              body_content=raw_body(), not_found=VerifierNotFound,
              corrupted=VerifierCorrupted,
              also=(FaceNotFound, EventNotFound, BadContentType, BadInputJson,
                      PayloadTooLarge)),
    Operation("POST", "/1/faces", "createFaceFromImage", "Create a face from an image",
              "processing", {"201": _ok("created", "FaceCreated", Location="Location")},
              account="required", query=FACE_PARAMS, body_content=images_body(policies=False),
              database="write", also=(*_ENGINE_ERRORS, NoFaceFound, ListNotFound)),
    Operation("DELETE", VID, "deleteVerifier", "Delete a verifier", "verifiers", {"204": _NONE},
              account="required", not_found=VerifierNotFound, database="write"),
    *STORE_OPERATIONS,
    Operation("GET", "/1/healthcheck", "healthcheck", "Health: one database round trip",
              "service", {"200": _ok("healthy", "Health"),
                          "503": _ok("the database is unavailable", "HealthFailure",
                                     **{"Retry-After": "RetryAfter"})},
              account=None, database=None, public=True),
    Operation("GET", "/1/version", "getVersion", "Service and API versions", "service",
              {"200": _ok("versions", "Version")}, account=None, database=None),
    Operation("GET", "/metrics", "getMetrics", "Prometheus metrics", "service",
              {"200": _text("Prometheus text exposition", "text/plain")},
              account=None, database=None, public=True),
    Operation("GET", "/1/docs/spec", "getSpec", "This OpenAPI document", "service",
              {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {
                  "type": "object"}}}}}, account=None, database=None),
    Operation("GET", "/1/docs", "getDocs", "This document as an HTML page", "service",
              {"200": _text("HTML", "text/html")}, account=None, database=None),
)
