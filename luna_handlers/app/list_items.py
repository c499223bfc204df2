"""The JSON of list items, rendered once and reused while the stored object is unchanged.

A list page (GET /1/handlers, GET /1/verifiers) renders every item, and rendering an item means
filling the defaults into its stored policies (a pydantic validate and dump of ~2.7 KB of
JSON): most of the CPU of a page. A :class:`RenderMemo` keeps the rendered JSON of each item by
object id, with what it was rendered from, and reuses it only for the same record:

* A hit needs every field of the record read now to equal the kept one, the policies compared
  as the text stored in the database (never decoded on a hit). Rendering is a function of
  exactly those values, so a hit never relies on timestamps changing with every write, and
  nothing needs invalidating: a change made through any instance is in the record the page
  reads.
* Only successful renders are kept: a corrupted record raises its error on every request.
* An entry holds strings, numbers, timestamps and bytes, never an object graph: the garbage
  collector stops tracking such tuples, so a full memo adds nothing to its collections (kept
  records made each full collection 2 ms longer).
* The memory is bounded: a memo keeps at most :data:`MEMO_BYTES` of JSON (rendered items and
  stored policies), least recently used out first. An item larger than that is not kept.

Every application keeps its own memos (``app.state``, see :mod:`luna_handlers.app.deps`).
Everything runs on the event loop thread and nothing awaits, so no lock is needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, Generic, TypeVar

import orjson
from starlette.responses import Response

from luna_handlers.app.serialize import handler_json, verifier_json
from luna_handlers.db import HandlerRecord, VerifierRecord

#: JSON bytes kept by each memo: ~2,400 typical handlers (2.7 KB rendered, 0.8 KB stored).
MEMO_BYTES = 8 * 1024 * 1024


R = TypeVar("R", HandlerRecord, VerifierRecord)


class RenderMemo(Generic[R]):
    """Rendered JSON of records by object id, reused while the record stays the same."""

    def __init__(self, record_type: type[R], id_field: str,
                 render: Callable[[R], dict[str, Any]], max_bytes: int = MEMO_BYTES) -> None:
        self._render: Callable[[R], dict[str, Any]] = render
        self._object_id = itemgetter(record_type._fields.index(id_field))
        self.max_bytes = max_bytes
        # id -> (the record as a plain tuple, the rendered JSON, the bytes both take)
        self._entries: OrderedDict[str, tuple[tuple[Any, ...], bytes, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def item(self, record: R) -> bytes:
        """The JSON of ``record`` (the render's errors propagate and nothing is kept)."""
        key: str = self._object_id(record)
        values = tuple(record)  # an exact tuple of str, int, datetime: the GC leaves it alone
        known = self._entries.get(key)
        if known is not None:
            if known[0] == values:
                self._entries.move_to_end(key)
                self.hits += 1
                return known[1]
            del self._entries[key]
            self._bytes -= known[2]
        self.misses += 1
        body = orjson.dumps(self._render(record))
        size = len(record.policies_json or "") + len(body)
        if size <= self.max_bytes:
            self._entries[key] = (values, body, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _old, (_values, _body, old_size) = self._entries.popitem(last=False)
                self._bytes -= old_size
        return body

    def page(self, key: str, records: Iterable[R]) -> Response:
        """The JSON response ``{key: [item, ...]}``, byte for byte the page rendered whole."""
        body = orjson.dumps({key: [orjson.Fragment(self.item(record)) for record in records]})
        return Response(body, media_type="application/json")


def handler_items() -> RenderMemo[HandlerRecord]:
    """A memo for the items of GET /1/handlers pages (one per application)."""
    return RenderMemo(HandlerRecord, "handler_id", handler_json)


def verifier_items() -> RenderMemo[VerifierRecord]:
    """A memo for the items of GET /1/verifiers pages (one per application)."""
    return RenderMemo(VerifierRecord, "verifier_id", verifier_json)
