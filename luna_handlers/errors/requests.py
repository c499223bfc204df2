"""Errors of the request itself: parameters, headers, body, and the HTTP edge."""

from __future__ import annotations

from luna_handlers.errors.base import LunaError


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
