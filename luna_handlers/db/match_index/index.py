"""The in-process index of list members' descriptors, strongly coherent with PostgreSQL.

One entry per (account, list, descriptor version, descriptor size): the members as a
float32 matrix (:class:`~.members.Members`) and a watermark W, the xmin of the snapshot
they were read at. A probe makes ONE round trip (:data:`~.statements.DELTA`): the faces of
the list's log rows with xid >= W, each with what it is now (member or not, descriptor,
external id), and the new xmin; those faces are applied and W moves to the new xmin.

Why nothing is missed: a change not visible in W's snapshot was made by a transaction
running then or later, so its xid is >= W and its log row is found once it commits; a change
of a face with no log row at xid >= W was visible before, so the entry has it. Faces found
are re-read in this snapshot, not replayed, so xid order against commit order does not
matter, and a long transaction only keeps W back (bigger deltas, never wrong ones). Writes
committed before a probe starts (by any instance) are in its snapshot: read-your-writes
across instances, with no notification (so it works behind a transaction pooler).

Failover: an entry is only good on the server it was read from (an asynchronous standby
may lack rows), so a new pool generation drops every entry, and so does a probe whose read
ran while the pool switched; a server whose xmin went back below W (same address, other
server) reloads. The log keeps :data:`RETENTION` (see :meth:`MatchIndex.prune`); an entry
behind what was pruned reloads. Memory: at most ``capacity`` descriptors and one list per 64
of them per process, least recently used lists dropped first; a list bigger than the bound
stays on the SQL path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from threadpoolctl import threadpool_limits

from luna_handlers.db.database import Database
from luna_handlers.db.match_index import metrics
from luna_handlers.db.match_index.members import Members, TimeWindow
from luna_handlers.db.match_index.statements import DELTA, LOAD, PRUNE
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.store_records import FaceMatch
from luna_handlers.errors import DatabaseError

logger = logging.getLogger("luna_handlers.db")

RETENTION = 3600.0  # seconds of log kept; an entry idle for longer reloads
#: Lists held at most per descriptor of the bound: an empty list's entry costs memory too
#: (~1 KB), so lists of other accounts or of no faces cannot pile up without limit.
LISTS_PER_DESCRIPTOR = 1 / 64
OVERSIZE_PAUSE = 60.0  # seconds a list found bigger than the bound stays on the SQL path

Key = tuple[str, str, int, int]  # account, list, descriptor version, descriptor bytes


class _Entry:
    """One list's members, the watermark and pool generation they were read at, and the
    coordination of its probes."""

    __slots__ = ("fresh_from", "generation", "idle", "lock", "members", "readers", "watermark")

    def __init__(self) -> None:
        self.members: Members | None = None
        self.watermark = 0
        self.generation: int | None = None
        self.lock = asyncio.Lock()  # one refresh (load or delta) at a time
        self.fresh_from = -1  # the ticket of the refresh whose result it holds
        self.readers = 0  # scorings running in a thread now
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def size(self) -> int:
        return 0 if self.members is None else self.members.size

    def release(self) -> None:
        """A scoring ended."""
        self.readers -= 1
        if not self.readers:
            self.idle.set()


class MatchIndex:
    """The matching index of one DB context (one per worker process); PostgreSQL only."""

    def __init__(self, database: Database, capacity: int, retention: float = RETENTION
                 ) -> None:
        self._database = database
        self._capacity = capacity
        self._retention = retention
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._descriptors = 0  # held by the entries in _entries
        self._generation: int | None = None
        self._ticket = 0  # +1 per refresh started
        self._oversize: dict[Key, float] = {}  # key -> until when it stays on the SQL path
        self._pruned_at = time.monotonic()
        if capacity:
            # One BLAS thread per scoring, process-wide (the engine runs in processes of its
            # own). Measured on this 2-core machine under load ~3.4, 100,000 faces: a warm
            # probe's p50 9 ms with one thread against 18-24 ms with OpenBLAS's two; and
            # concurrent probes then take a core each instead of fighting over both.
            threadpool_limits(1, user_api="blas")

    @property
    def descriptors(self) -> int:
        """Descriptors held now."""
        return self._descriptors

    def holds(self, account_id: str, list_id: str, version: int, nbytes: int) -> bool:
        """Whether the list is held now (loaded and not evicted)."""
        return (account_id, list_id, version, nbytes) in self._entries

    async def match(self, account_id: str, list_id: str, descriptor: bytes, version: int,
                    limit: int, *, created: TimeWindow = (None, None)
                    ) -> list[FaceMatch] | None:
        """The ``limit`` members of the list (faces of the account, of ``version``, created
        in ``created``: see :meth:`Members.match`) most similar to ``descriptor``, best
        first, as of a snapshot taken after the call began; None when the index does not
        serve it (the caller takes the SQL path)."""
        key = (account_id, list_id, version, len(descriptor))
        if not self._capacity:
            return None
        if self._oversize.get(key, 0.0) > time.monotonic():
            metrics.count_probe("sql")
            return None
        self._follow_pool()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        self._entries.move_to_end(key)
        arrival = self._ticket
        async with entry.lock:
            outcome = "hit"
            # A refresh that started after this call began has read what this call must see.
            if entry.fresh_from <= arrival:
                self._ticket += 1
                started = self._ticket
                outcome = await self._refresh(key, entry)
                entry.fresh_from = started
            members = entry.members
            if members is None:
                metrics.count_probe(outcome)
                return None
            entry.readers += 1
            entry.idle.clear()
        loop = asyncio.get_running_loop()

        def score() -> list[FaceMatch]:
            try:
                return members.match(descriptor, limit, created)
            finally:  # when the thread is done, even if the caller was cancelled meanwhile
                loop.call_soon_threadsafe(entry.release)

        found = await loop.run_in_executor(None, score)
        metrics.count_probe(outcome)
        return found

    async def prune(self) -> int:
        """Delete the log rows of transactions that ended before a horizon recorded at least
        the retention ago (and record the next horizon), if one is due; how many went.
        Safe at any time from any instance: a delta that needs pruned rows reloads."""
        rows = await self._run(PRUNE, {"retention": self._retention}, write=True)
        return int(rows[0]["deleted"])

    async def maybe_prune(self) -> None:
        """:meth:`prune`, at most every quarter of the retention per process; a failure is
        logged (the next try comes a quarter later)."""
        now = time.monotonic()
        if now - self._pruned_at < self._retention / 4:
            return
        self._pruned_at = now
        try:
            deleted = await self.prune()
        except DatabaseError as exc:
            logger.warning("pruning the list membership log failed: %s", exc)
            return
        if deleted:
            logger.info("pruned %d rows of the list membership log", deleted)

    # -- refreshes -------------------------------------------------------------------------

    async def _refresh(self, key: Key, entry: _Entry) -> str:
        """Bring the entry up to a snapshot taken now; the outcome for the metrics (``sql``:
        it was dropped, the caller takes the SQL path)."""
        held = entry.size
        generation = self._pool_generation()
        if entry.members is None or entry.generation != generation:
            outcome, listed = await self._load(key, entry)
        else:
            outcome, listed = await self._delta(key, entry)
        if self._pool_generation() != generation:  # read on which pool? Drop everything.
            self._follow_pool()
            entry.members = None
            return "sql"
        entry.generation = generation
        if self._entries.get(key) is not entry:  # flushed meanwhile: answer, do not keep
            return outcome
        self._descriptors += entry.size - held
        if not listed:  # a list that does not exist (any more): no members, not kept
            self._drop(key)
            entry.members = Members.of_rows((), key[3])
        elif entry.size > self._capacity:
            self._drop(key)
            now = time.monotonic()
            self._oversize = {k: until for k, until in self._oversize.items() if until > now}
            self._oversize[key] = now + OVERSIZE_PAUSE
            outcome = "sql"
        else:
            self._evict_for(key)
        metrics.set_held(self._descriptors)
        return outcome

    async def _load(self, key: Key, entry: _Entry) -> tuple[str, bool]:
        account_id, list_id, version, nbytes = key
        rows = await self._run(LOAD, {"list_id": list_id, "account_id": account_id,
                                      "version": version})
        # A new object: scorings running on the old one go on undisturbed.
        entry.members = await asyncio.to_thread(Members.of_rows, rows, nbytes)
        entry.watermark = int(rows[0]["xmin"])
        return "load", bool(rows[0]["listed"])

    async def _delta(self, key: Key, entry: _Entry) -> tuple[str, bool]:
        account_id, list_id, version, nbytes = key
        rows = await self._run(DELTA, {"list_id": list_id, "account_id": account_id,
                                       "version": version, "since": entry.watermark})
        head = rows[0]
        if head["listed"] and (head["pruned_below"] > entry.watermark
                               or head["xmin"] < entry.watermark):
            # The log no longer has every row since W, or this is not the server W is of.
            return await self._load(key, entry)
        changed = [row for row in rows if row["face_id"] is not None]
        members = entry.members
        assert members is not None
        if changed:
            await entry.idle.wait()  # scorings on these rows end first (no new ones start)
            for row in changed:
                descriptor = row["descriptor"]
                if descriptor is not None and len(descriptor) == nbytes:
                    members.put(row["face_id"], row["external_id"], descriptor,
                                row["create_time"])
                else:
                    members.remove(row["face_id"])
        entry.watermark = int(head["xmin"])
        return ("delta" if changed else "hit"), bool(head["listed"])

    async def _run(self, prepared: Prepared, params: dict[str, Any], *, write: bool = False
                   ) -> list[Row]:
        borrow = self._database.write() if write else self._database.read()
        async with borrow as session:
            return list(await session.rows(prepared, params))

    # -- the pool and the bound ------------------------------------------------------------

    def _pool_generation(self) -> int | None:
        active = self._database.active_host()
        return None if active is None else active[1]

    def _follow_pool(self) -> None:
        """Drop every entry when the pool is not the one they were read on."""
        generation = self._pool_generation()
        if generation == self._generation:
            return
        if self._entries:
            logger.info("pool generation %s: dropping the matching index (%d lists)",
                        generation, len(self._entries))
            metrics.count_flush()
        self._generation = generation
        self._entries.clear()
        self._descriptors = 0
        metrics.set_held(0)

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key)
        self._descriptors -= entry.size

    def _evict_for(self, key: Key) -> None:
        """Least recently used lists go until everything fits the bound (``key`` stays)."""
        self._entries.move_to_end(key)
        most_lists = max(1, int(self._capacity * LISTS_PER_DESCRIPTOR))
        while self._descriptors > self._capacity or len(self._entries) > most_lists:
            oldest = next(iter(self._entries))
            if oldest == key:
                return
            self._drop(oldest)
            metrics.count_eviction()
