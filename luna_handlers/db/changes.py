"""Change notifications of handlers: what a writer sends, and the feed a reader listens to.

Writers (``DBContext.putHandler``, ``DBContext.deleteHandler``) send ``pg_notify(CHANNEL,
handler_id)`` in the statement that changes the row (:func:`notify_after`), so the
notification leaves only if the transaction commits, and after the change is visible to new
snapshots. Every service instance reads them through a :class:`ChangeFeed` from
``Database.changes()``, which follows the host the pool uses now; a dialect without
notifications (Oracle) gives no feed, and the handler cache is then disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from luna_handlers.db.hosts import HostPort

CHANNEL = "luna_handlers_handler_changed"

#: The host requests use now and the pool's generation (a new one after every switch, which
#: moves the feed), or None while there is no pool.
Target = Callable[[], tuple[HostPort, int] | None]


@runtime_checkable
class ChangeFeed(Protocol):
    """A listener that calls ``on_change(handler_id)`` per change and ``on_reset()`` after
    every (re)connect, since changes sent while it was away are lost for good."""

    @property
    def healthy(self) -> bool:
        """True while changes are being received (the cache may serve)."""
        ...

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        ...

    def start(self) -> None:
        """Start listening in the background (idempotent)."""
        ...

    async def wait_healthy(self, seconds: float) -> bool:
        """Wait until the feed listens (True) or ``seconds`` pass (False)."""
        ...

    async def close(self) -> None:
        """Stop listening; prompt even while a host hangs."""
        ...


#: What a dialect hands in to make its feed: (target, on_change, on_reset, name) -> feed;
#: ``name`` tells this feed's connection apart on the server (None: the dialect's default).
FeedFactory = Callable[[Target, Callable[[str], None], Callable[[], None], str | None],
                       ChangeFeed | None]


def notify_after(dml: sa.Update | sa.Delete, id_column: sa.ColumnElement[Any],
                 also: Callable[[sa.CTE], sa.CTE] | None = None) -> sa.Select[Any]:
    """``dml`` as a CTE followed by one ``pg_notify`` per changed row, in ONE statement.

    One round trip instead of two, and no notification when nothing matched. The result has
    one row per changed row, so ``bool(result.first())`` says whether anything changed.
    ``also(changed)`` adds a statement over the changed rows (``changed_id``,
    ``account_id``) to the same one, e.g. a counter update.
    """
    changed = dml.returning(id_column.label("changed_id"),
                            dml.table.c.account_id).cte("changed")
    notify = sa.select(sa.func.pg_notify(CHANNEL, changed.c.changed_id)).select_from(changed)
    return notify if also is None else notify.add_cte(also(changed))
