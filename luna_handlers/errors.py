"""The one error hierarchy of luna-handlers.

Every error a client can see is a subclass of :class:`LunaError` that declares its LUNA
error code, HTTP status and short description on the class. Codes are registered at import
time and a duplicate code is a ``TypeError``, so two classes can never share one.

Outline::

    LunaError
    ├── InternalError                      1      500
    ├── request errors (400, 401, 404, 405, 413)
    │   ├── BadQueryParams                 12012
    │   ├── RequiredParamsNotFound         12014
    │   ├── BadContentType                 12017
    │   ├── BadInputJson                   12022  (carries the JSON path of the bad field)
    │   ├── BadAccountId                   11037
    │   ├── PayloadTooLarge                12040  (choice: code not public)
    │   ├── Unauthorized                   12041  (choice)
    │   ├── PageNotFound                   12042  (choice)
    │   ├── MethodNotAllowed               12043  (choice)
    │   ├── RequestTimeout                 12044  408  (choice)
    │   ├── HeaderFieldsTooLarge           12045  431  (choice)
    │   ├── URITooLong                     12046  414  (choice)
    │   ├── UnsupportedContentEncoding     12047  415  (choice)
    │   ├── DuplicateHeader                12048  (choice)
    │   ├── MalformedRequest               12050  (choice: not parseable as HTTP/1.1)
    │   └── TooManyConnections             12049  503  (choice)
    ├── objects
    │   ├── HandlerNotFound                34000
    │   ├── HandlerCorrupted               34002
    │   ├── VerifierNotFound               34004
    │   ├── FaceNotFound                   22001  404  (names every missing id)
    │   ├── ListNotFound                   22002  404  (names every missing id)
    │   ├── SampleNotFound                 22003  404  (choice)
    │   └── EventNotFound                  23001  404  (names every missing id)
    └── DatabaseError (grouping)
        ├── DatabaseUnavailable            34010  503  (not sent: safe to retry)
        │   └── DatabaseSwitched           34010  (the pool moved while the request waited)
        ├── DatabaseOutcomeUnknown         34011  503  (may have been applied)
        │   └── StoppedOutcomeUnknown      34011  (the service stopped mid-request)
        ├── DatabaseFailure                34012  500  (the database refused the statement)
        ├── ScansBusy                      34014  503  (choice: the lists' share is in use)
        └── ScanTimedOut                   34015  503  (choice: a list's statement timeout)
    face engine (codes: choice)
    ├── EngineBusy                         35001  503  (queue full; Retry-After)
    ├── BadImage                           35002  400
    ├── ImageTooLarge                      35003  413
    ├── EstimationNotAvailable             35004  400  (names the policy flag)
    └── EngineModelError                   35005  500
    processing (34007 LUNA's; 36xxx: choice)
    ├── StaticHandlerPolicies              34007  403
    ├── MultipleFaces                      36001  400
    ├── DynamicHandlerWithoutPolicies      36002  400
    ├── UnsupportedImageType               36003  400
    └── NoFaceFound                        36004  400

The codes marked "choice" are not published by VisionLabs; README.md lists them.
Exactly one place (``luna_handlers.app.errors``) turns these into HTTP responses.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_LINK = "https://docs.visionlabs.ai/info/luna/troubleshooting/errors-description/code-{code}"


class LunaError(Exception):
    """Root of every error that can reach a client: code, HTTP status and description."""

    code: ClassVar[int] = 1
    status: ClassVar[int] = 500
    desc: ClassVar[str] = "Internal server error"
    _registry: ClassVar[dict[int, type[LunaError]]] = {}

    def __init_subclass__(
        cls, *, code: int | None = None, status: int | None = None, desc: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is None:  # a grouping class: inherits code and status from its parent
            return
        if code in LunaError._registry:
            other = LunaError._registry[code].__name__
            raise TypeError(f"error code {code} of {cls.__name__} is already used by {other}")
        LunaError._registry[code] = cls
        cls.code = code
        if status is not None:
            cls.status = status
        if desc is not None:
            cls.desc = desc

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.desc
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        """The LUNA error body: ``{"error_code", "desc", "detail", "link"}``."""
        return {
            "error_code": self.code,
            "desc": self.desc,
            "detail": self.detail,
            "link": ERROR_LINK.format(code=self.code),
        }

    @classmethod
    def registry(cls) -> dict[int, type[LunaError]]:
        """All registered error classes by code (for docs and tests)."""
        return dict(LunaError._registry)


class InternalError(LunaError, code=1, status=500, desc="Internal server error"):
    """An unexpected failure; details go to the log, never to the client."""


class BadQueryParams(LunaError, code=12012, status=400, desc="Bad/incomplete input data"):
    """A query parameter has a bad value."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Bad query parameters '{name}': {problem}")


class RequiredParamsNotFound(LunaError, code=12014, status=400, desc="Bad/incomplete input data"):
    """A required parameter or header is missing."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Required parameters '{name}' not found")


class BadContentType(LunaError, code=12017, status=400, desc="Bad/incomplete input data"):
    """The body is not ``application/json`` or does not parse as JSON."""

    def __init__(self, detail: str = "Bad content type") -> None:
        super().__init__(detail)


class BadInputJson(LunaError, code=12022, status=400, desc="Bad/incomplete input data"):
    """The JSON body does not match the schema; ``path`` names the bad field."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"Failed to validate input json. Path: '{path}',  message: '{message}'")


class BadAccountId(LunaError, code=11037, status=400, desc="Bad/incomplete input data"):
    """The ``Luna-Account-Id`` header is not a UUID."""

    def __init__(self) -> None:
        super().__init__("Luna-Account-Id header is not a valid UUID")


class PayloadTooLarge(LunaError, code=12040, status=413, desc="Request entity too large"):
    """The body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes")


class Unauthorized(LunaError, code=12041, status=401, desc="Unauthorized"):
    """The API token is missing or wrong."""

    def __init__(self) -> None:
        super().__init__("Missing or wrong 'Authorization: Bearer <token>' header")


class PageNotFound(LunaError, code=12042, status=404, desc="Page not found"):
    """No route matches the path."""


class MethodNotAllowed(LunaError, code=12043, status=405, desc="Method not allowed"):
    """The route exists but not with this method."""


class HandlerNotFound(LunaError, code=34000, status=404, desc="Object not found"):
    """No handler with this id (in this account)."""

    def __init__(self, handler_id: str) -> None:
        super().__init__(f"Handler with id '{handler_id}' not found")


class HandlerCorrupted(LunaError, code=34002, status=500, desc="Internal server error"):
    """The stored policies of a handler cannot be loaded."""

    def __init__(self, handler_id: str) -> None:
        super().__init__(f"Cannot load handler with id '{handler_id}'. Handler is corrupted")


class VerifierNotFound(LunaError, code=34004, status=404, desc="Object not found"):
    """No verifier with this id (in this account)."""

    def __init__(self, verifier_id: str) -> None:
        super().__init__(f"Verifier with id '{verifier_id}' not found")


def _named(what: str, ids: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{object_id}'" for object_id in ids)
    return f"{what} with id {quoted} not found" if len(ids) == 1 else (
        f"{what}s with ids {quoted} not found")


class FaceNotFound(LunaError, code=22001, status=404, desc="Object not found"):
    """No face with this id (or these ids) in this account."""

    def __init__(self, *face_ids: str) -> None:
        self.ids = face_ids
        super().__init__(_named("Face", face_ids))


class ListNotFound(LunaError, code=22002, status=404, desc="Object not found"):
    """No list with this id (or these ids) in this account."""

    def __init__(self, *list_ids: str) -> None:
        self.ids = list_ids
        super().__init__(_named("List", list_ids))


class SampleNotFound(LunaError, code=22003, status=404, desc="Object not found"):
    """No face sample with this id in this account (code: our choice)."""

    def __init__(self, sample_id: str) -> None:
        super().__init__(_named("Sample", (sample_id,)))


class EventNotFound(LunaError, code=23001, status=404, desc="Object not found"):
    """No event with this id (or these ids) in this account."""

    def __init__(self, *event_ids: str) -> None:
        self.ids = event_ids
        super().__init__(_named("Event", event_ids))


class DatabaseError(LunaError):
    """Grouping class of the errors of the database layer.

    ``cause`` is the driver's account (scrubbed of secrets) for the operator: the one-line
    exit message of ``serve`` names it; the clients' error body never shows it.
    """

    def __init__(self, detail: str | None = None, *, cause: str | None = None) -> None:
        super().__init__(detail)
        self.cause = cause


class DatabaseUnavailable(
    DatabaseError, code=34010, status=503, desc="Database unavailable",
):
    """No usable database connection: the statement was NOT sent, so a retry is safe."""


class DatabaseSwitched(DatabaseUnavailable):
    """The pool moved to another host while the request waited for one of the old pool's
    connections: nothing was sent. The failover layer retries such a request once, on the
    new pool; a client sees it only if the pool moves again meanwhile."""


class DatabaseOutcomeUnknown(
    DatabaseError, code=34011, status=503, desc="Database outcome unknown",
):
    """The connection broke after the statement may have been sent: it may have been applied."""


class DatabaseFailure(DatabaseError, code=34012, status=500, desc="Database error"):
    """The database rejected the statement for a reason that is not connectivity."""


class ScansBusy(DatabaseError, code=34014, status=503, desc="Too many list requests"):
    """Every connection of the share for lists, counts and searches stayed busy for
    ``scan_wait``: nothing was sent, a retry is safe. Reads by id and writes have their own
    connections and are not affected."""


class ScanTimedOut(DatabaseError, code=34015, status=503, desc="List request timed out"):
    """A list, count or search ran past ``scan_statement_timeout`` and the database
    cancelled it (a narrower filter is cheaper); the host is fine."""


class VerifierCorrupted(LunaError, code=34013, status=500, desc="Internal server error"):
    """The stored policies of a verifier cannot be loaded (code: our choice, like 34002)."""

    def __init__(self, verifier_id: str) -> None:
        super().__init__(f"Cannot load verifier with id '{verifier_id}'. Verifier is corrupted")


# --- face engine (codes 35001-35005: our choice, the engine's block; not published by LUNA) ---


class EngineBusy(LunaError, code=35001, status=503, desc="Face engine busy"):
    """Every engine worker is busy and the bounded queue is full: retry after ``retry_after``
    seconds (sent as ``Retry-After``). Nothing was processed."""

    retry_after: ClassVar[int] = 1

    def __init__(self, queue_size: int) -> None:
        super().__init__(f"All face engine workers are busy and {queue_size} images are waiting")


class BadImage(LunaError, code=35002, status=400, desc="Bad/incomplete input data"):
    """The bytes are not a decodable JPEG, PNG, BMP, TIFF or WebP image (or are truncated)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Failed to decode image: {problem}")


class ImageTooLarge(LunaError, code=35003, status=413, desc="Image too large"):
    """The image is over the configured byte or pixel limit (checked before decoding)."""

    def __init__(self, what: str, limit: int, value: int | None = None) -> None:
        has = "" if value is None else f" (it has {value})"
        super().__init__(f"Image is over the limit of {limit} {what}{has}")


class EstimationNotAvailable(LunaError, code=35004, status=400, desc="Bad/incomplete input data"):
    """A policy asks for an estimation the built-in face engine cannot make."""

    def __init__(self, flag: str, what: str) -> None:
        self.flag = flag
        super().__init__(f"Policy '{flag}' asks for {what}, which the face engine cannot estimate")


class EngineModelError(LunaError, code=35005, status=500, desc="Internal server error"):
    """A model file of the face engine is missing or is not the expected file."""


class RequestTimeout(LunaError, code=12044, status=408, desc="Request timeout"):
    """The client did not send its request (headers or body) within the configured time."""

    def __init__(self, part: str, seconds: float) -> None:
        super().__init__(f"Request {part} not received within {seconds:g} seconds")


class HeaderFieldsTooLarge(
    LunaError, code=12045, status=431, desc="Request header fields too large",
):
    """The header block is over ``LUNA_HANDLERS_SERVER.max_header_size``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request header fields are larger than {limit} bytes")


class URITooLong(LunaError, code=12046, status=414, desc="URI too long"):
    """The request target is over ``LUNA_HANDLERS_SERVER.max_url_length`` (no query part:
    a long query is a :class:`BadQueryParams` naming its parameter)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request URI is longer than {limit} bytes")


class UnsupportedContentEncoding(
    LunaError, code=12047, status=415, desc="Unsupported media type",
):
    """The body has a ``Content-Encoding`` the service does not decode (only identity)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(f"Content-Encoding '{encoding}' is not supported: send the body as is")


class DuplicateHeader(LunaError, code=12048, status=400, desc="Bad/incomplete input data"):
    """A header that must be single (``Luna-Account-Id``, ``Authorization``) came twice:
    which one is meant is ambiguous, so neither is used."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Header '{name}' must be given once")


class TooManyConnections(LunaError, code=12049, status=503, desc="Service unavailable"):
    """The worker holds ``LUNA_HANDLERS_SERVER.max_connections`` connections already."""

    def __init__(self) -> None:
        super().__init__("Too many open connections, retry later")


class MalformedRequest(LunaError, code=12050, status=400, desc="Bad request"):
    """The bytes received are not an HTTP/1.1 request."""

    def __init__(self) -> None:
        super().__init__("Invalid HTTP request received")


class StoppedOutcomeUnknown(DatabaseOutcomeUnknown):
    """The service stopped (its graceful-shutdown period ended) while the request ran: what it
    sent to the database may or may not have been applied."""

    def __init__(self) -> None:
        super().__init__("The service stopped before the request finished; "
                         "it may or may not have been applied")


# --- processing (34007 is LUNA's; 36001-36004: our choice, not published by LUNA) ------------


class StaticHandlerPolicies(LunaError, code=34007, status=403, desc="Forbidden"):
    """Policies were sent with a request to a static handler (only dynamic ones take them)."""

    def __init__(self) -> None:
        super().__init__("Allowed use only dynamic handler")


class MultipleFaces(LunaError, code=36001, status=400, desc="Bad/incomplete input data"):
    """``multiface_policy`` 0 and the image has more than one face."""

    def __init__(self, image: int, faces: int) -> None:
        super().__init__(f"Image {image} has {faces} faces, multiface_policy 0 allows one")


class DynamicHandlerWithoutPolicies(LunaError, code=36002, status=400,
                                    desc="Bad/incomplete input data"):
    """A dynamic handler was run without a ``policies`` part."""

    def __init__(self) -> None:
        super().__init__("A dynamic handler needs policies in the request (a 'policies' part)")


class UnsupportedImageType(LunaError, code=36003, status=400, desc="Bad/incomplete input data"):
    """``image_type`` other than 0 (raw image) or 1 (aligned face warp)."""

    def __init__(self, image_type: str) -> None:
        super().__init__(f"image_type {image_type!r} is not supported: 0 (raw image) "
                         "or 1 (face warp) only")


class NoFaceFound(LunaError, code=36004, status=400, desc="Bad/incomplete input data"):
    """A request that needs exactly one face (POST /1/faces) found none, or several."""

    def __init__(self, faces: int) -> None:
        super().__init__(f"The image must have exactly one face, it has {faces}")
