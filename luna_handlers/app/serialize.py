"""JSON responses (orjson) and the JSON shape of handlers and verifiers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from luna_handlers.app.policies import (
    HANDLER_RENDERING,
    VERIFIER_RENDERING,
    normalise_handler_policies,
    normalise_verifier_policies,
)
from luna_handlers.db import HandlerRecord, VerifierRecord
from luna_handlers.errors import HandlerCorrupted, VerifierCorrupted
from luna_handlers.processing.times import rfc3339


class ORJSONResponse(Response):
    """A JSON response rendered by orjson (several times faster than the stdlib encoder)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` with orjson."""
        return orjson.dumps(content)


class RawResponse(Response):
    """A response whose body and raw headers are ready: nothing is rendered or encoded.

    ``raw_headers`` must hold ``content-length`` (and ``content-type``) already, lower-case.
    """

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]],
                 status_code: int = 200) -> None:
        # Response.__init__ is skipped on purpose: it would render and rebuild the headers.
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def format_time(moment: datetime) -> str:
    """A naive UTC database timestamp as RFC 3339 with microseconds: ``...T20:12:40.123456Z``."""
    return rfc3339(moment)


def _stored(text: str | None, made_with: str | None, running: str) -> orjson.Fragment | None:
    """The rendering stored by the write, when the running version made it: spliced as is."""
    return orjson.Fragment(text) if text is not None and made_with == running else None


def handler_json(record: HandlerRecord) -> dict[str, Any]:
    """The GET representation of a handler, policies with every default filled in (the
    rendering stored on write when it is current, else rendered from the stored policies)."""
    policies: Any = _stored(record.rendered_policies, record.rendered_with, HANDLER_RENDERING)
    if policies is None and record.policies is not None:
        try:
            policies = normalise_handler_policies(record.policies)
        except ValueError:
            raise HandlerCorrupted(record.handler_id) from None
    return {
        "handler_id": record.handler_id,
        "account_id": record.account_id,
        "description": record.description,
        "is_dynamic": record.is_dynamic,
        "policies": policies,
        "create_time": format_time(record.create_time),
        "last_update_time": format_time(record.last_update_time),
    }


def verifier_json(record: VerifierRecord) -> dict[str, Any]:
    """The GET representation of a verifier, policies with every default filled in (as for
    :func:`handler_json`)."""
    policies: Any = _stored(record.rendered_policies, record.rendered_with, VERIFIER_RENDERING)
    if policies is None:
        try:
            policies = normalise_verifier_policies(record.policies)
        except ValueError:
            raise VerifierCorrupted(record.verifier_id) from None
    return {
        "verifier_id": record.verifier_id,
        "account_id": record.account_id,
        "description": record.description,
        "policies": policies,
        "version": record.version,
        "create_time": format_time(record.create_time),
        "last_update_time": format_time(record.last_update_time),
    }
