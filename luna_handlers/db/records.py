"""What the DB context reads and takes: handler and verifier records, list filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from luna_handlers.errors import HandlerCorrupted, VerifierCorrupted


class HandlerRecord(NamedTuple):
    """A handler as stored; ``policies_json`` (the stored text) is None for dynamic handlers.

    The policies are decoded on access, not on read: a page or GET whose policies rendering
    (``rendered_policies``, stored by the write, see :class:`RenderedPolicies`) is current
    splices that text and never decodes them. Records are named tuples, immutable and several
    times cheaper to make than frozen dataclasses (a list page makes one per item).
    """

    handler_id: str
    account_id: str
    description: str
    is_dynamic: bool
    policies_json: str | None
    create_time: datetime
    last_update_time: datetime
    rendered_policies: str | None = None
    rendered_with: str | None = None

    @property
    def policies(self) -> dict[str, Any] | None:
        """The stored policies, decoded; ``HandlerCorrupted`` when the text is not JSON."""
        return None if self.policies_json is None else _load(
            self.policies_json, HandlerCorrupted(self.handler_id))


class VerifierRecord(NamedTuple):
    """A verifier as stored (``policies_json``: the stored text, decoded on access)."""

    verifier_id: str
    account_id: str
    description: str
    policies_json: str
    version: int
    create_time: datetime
    last_update_time: datetime
    rendered_policies: str | None = None
    rendered_with: str | None = None

    @property
    def policies(self) -> dict[str, Any]:
        """The stored policies, decoded; ``VerifierCorrupted`` when the text is not JSON."""
        policies: dict[str, Any] = _load(self.policies_json, VerifierCorrupted(self.verifier_id))
        return policies


class RenderedPolicies(NamedTuple):
    """The policies as a GET returns them (every default filled in), rendered when they are
    written and stored beside them, so that reads splice the text instead of rendering.

    ``made_with`` names the rendering (the policy models and the service version): a stored
    rendering is used only while it equals the running one; after an upgrade that changes the
    defaults, reads render from ``policies`` again, as they did before any rendering was stored.
    """

    json: str
    made_with: str


def _load(text: str, corrupted: Exception) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise corrupted from None


@dataclass(frozen=True)
class ListFilters:
    """Filters shared by the list and count methods; ``None`` means "any"."""

    account_id: str | None = None
    description: str | None = None  # substring, matched literally (% and _ are escaped)
    ids: Sequence[str] | None = None
    create_time__gte: datetime | None = None
    create_time__lt: datetime | None = None
    is_dynamic: bool | None = None  # handlers only
