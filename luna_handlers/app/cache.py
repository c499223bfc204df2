"""The read cache of handlers: an LRU of :class:`HandlerRecord` kept correct by a change feed.

Handlers are read on every event the platform processes and change rarely, so ``GET
/1/handlers/{id}`` is served from memory. Correctness comes from
:class:`luna_handlers.db.ChangeFeed` (``Database.changes()``): every instance invalidates a
handler within milliseconds of a commit anywhere, and flushes everything when its feed
reconnects. While the feed is down, :attr:`HandlerCache.enabled` is False: nothing is served
and nothing is stored.

The race this module is built around: a read that started before an invalidation may come back
with the old row *after* the invalidation was processed; storing it would keep a stale handler
forever. So a read takes a :class:`ReadToken` first (``begin_read``), and ``put`` stores the
record only if that handler was not invalidated (and the cache not cleared) since the token.
:meth:`HandlerCache.serve` is that protocol for the GET route: hit, or token, load, put.

Everything runs on the event loop thread: no method awaits, so none needs a lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from prometheus_client import Counter

from luna_handlers.app.serialize import format_time
from luna_handlers.db import ChangeFeed, Database, HandlerRecord

CACHE_HITS = Counter("luna_handlers_cache_hits", "GET handler requests served from the cache")
CACHE_MISSES = Counter("luna_handlers_cache_misses",
                       "GET handler requests that read the database (cache miss or bypass)")

# How many recent invalidations are remembered one by one; older ones are folded into a
# floor below which every token is refused (safe, and only costs a few refused puts).
INVALIDATION_MEMORY = 4096


class HealthSource(Protocol):
    """What the cache needs from the change feed."""

    @property
    def healthy(self) -> bool:
        """True while change notifications are being received."""
        ...


RawHeaders = list[tuple[bytes, bytes]]


def answer_headers(state: bytes, version: str, body: bytes) -> RawHeaders:
    """The raw headers of a GET handler answer: ``Luna-Cache`` (hit or miss), the version."""
    # The order and names of ``Response(body, media_type=..., headers={...})``.
    return [(b"luna-cache", state), (b"cache-handler-version", version.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class CachedHandler:
    """One entry: the record, and the rendered GET body with the headers of a hit on it when
    the route supplied the body.

    Keeping the body skips the policy normalisation and JSON encoding on every hit, and the
    headers their formatting (the version timestamp alone was a sizeable part of a hit): that
    is most of the CPU of a GET once the database is out of the way.
    """

    record: HandlerRecord
    body: bytes | None = None
    hit_headers: RawHeaders | None = None


class Served(NamedTuple):
    """A GET answer: the record (for the caller's account check), its body and headers."""

    record: HandlerRecord
    body: bytes
    headers: RawHeaders


@dataclass(frozen=True, slots=True)
class ReadToken:
    """Proof of when a database read of ``handler_id`` started (see ``begin_read``)."""

    handler_id: str
    epoch: int


class HandlerCache:
    """LRU of handlers by id, at most ``max_size`` entries; 0 disables it.

    Without a ``feed`` (or with one that is not healthy) the cache is disabled: serving
    without change notifications could serve a handler another instance changed.
    """

    def __init__(self, max_size: int, feed: HealthSource | None = None) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.max_size = max_size
        self.feed = feed
        self._entries: OrderedDict[str, CachedHandler] = OrderedDict()
        self._epoch = 0  # bumped by every invalidate and clear
        self._floor = 0  # tokens older than this are refused (clear, forgotten invalidations)
        self._invalidated: OrderedDict[str, int] = OrderedDict()  # id -> epoch of last one
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """True when the cache may serve and store: a size above 0 and a healthy feed."""
        return self.max_size > 0 and self.feed is not None and self.feed.healthy

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, handler_id: str) -> CachedHandler | None:
        """The cached handler (a hit), or None (a miss: read the DB, then ``put``)."""
        entry = self._entries.get(handler_id) if self.enabled else None
        if entry is None:
            self.misses += 1
            CACHE_MISSES.inc()
            return None
        self._entries.move_to_end(handler_id)
        self.hits += 1
        CACHE_HITS.inc()
        return entry

    def begin_read(self, handler_id: str) -> ReadToken:
        """Take before reading ``handler_id`` from the database; pass to ``put`` after."""
        return ReadToken(handler_id, self._epoch)

    def put(self, record: HandlerRecord, token: ReadToken, body: bytes | None = None) -> bool:
        """Store ``record`` (and its rendered ``body``) unless it may be stale; True if stored.

        Refused when the cache is disabled, when the token is for another handler, or when
        the handler was invalidated (or the cache cleared) after ``token`` was taken.
        """
        version = None if body is None else format_time(record.last_update_time)
        return self._put(record, token, body, version)

    async def serve(self, handler_id: str,
                    load: Callable[[str], Awaitable[HandlerRecord | None]],
                    render: Callable[[HandlerRecord], bytes]) -> Served | None:
        """The GET answer for ``handler_id``: from the cache, or ``load``-ed and ``render``-ed
        (and stored unless a change raced the read); None when it does not exist."""
        entry = self.get(handler_id)
        if entry is not None and entry.body is not None and entry.hit_headers is not None:
            # A copy: whoever holds the response may change its headers.
            return Served(entry.record, entry.body, list(entry.hit_headers))
        token = self.begin_read(handler_id)  # before the read: a racing change wins
        found = await load(handler_id)
        if found is None:
            return None
        body = render(found)
        version = format_time(found.last_update_time)
        # The body says it all: the stored policies (and their rendering) need not be kept
        # a second time.
        self._put(found._replace(policies_json=None, rendered_policies=None, rendered_with=None),
                  token, body, version)
        return Served(found, body, answer_headers(b"miss", version, body))

    def _put(self, record: HandlerRecord, token: ReadToken, body: bytes | None,
             version: str | None) -> bool:
        handler_id = record.handler_id
        if not self.enabled or token.handler_id != handler_id:
            return False
        if token.epoch < self._floor or self._invalidated.get(handler_id, 0) > token.epoch:
            return False
        hit = None if body is None or version is None else answer_headers(b"hit", version, body)
        self._entries[handler_id] = CachedHandler(record, body, hit)
        self._entries.move_to_end(handler_id)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return True

    def invalidate(self, handler_id: str) -> None:
        """Forget ``handler_id`` and refuse every read of it that started before now."""
        self._epoch += 1
        self._entries.pop(handler_id, None)
        self._invalidated[handler_id] = self._epoch
        self._invalidated.move_to_end(handler_id)
        if len(self._invalidated) > INVALIDATION_MEMORY:
            _oldest, epoch = self._invalidated.popitem(last=False)
            # Forgetting it one by one means refusing every token from before it.
            self._floor = max(self._floor, epoch)

    def clear(self) -> None:
        """Forget everything and refuse every read that started before now."""
        self._epoch += 1
        self._floor = self._epoch
        self._entries.clear()
        self._invalidated.clear()

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        return {"enabled": self.enabled, "size": len(self._entries),
                "max_size": self.max_size, "hits": self.hits, "misses": self.misses}


def cache_following(max_size: int, database: Database, *, name: str | None = None
                    ) -> tuple[HandlerCache, ChangeFeed | None]:
    """The cache of one service instance and the feed of ``database`` that keeps it correct.

    No feed (and a disabled cache) when ``max_size`` is 0 or the database sends no change
    notifications (Oracle). ``name`` tells the feed's connection apart on the server. The
    caller starts the feed (``feed.start()``) and closes it on shutdown.
    """
    if max_size == 0:
        return HandlerCache(0), None
    cache = HandlerCache(max_size)
    feed = database.changes(cache.invalidate, cache.clear, name)
    if feed is None:
        return HandlerCache(0), None  # no notifications, so no cache: correctness first
    cache.feed = feed
    return cache, feed
