"""Exact handler counts by account from ``handler_count``, kept by the inserts and deletes.

``count(*)`` is an index-only scan of every matching entry: 100,000 for a hot account,
the whole table unscoped. The counter keeps a few rows per account whose ``n`` add up to its
handlers, changed in the statement that inserts or deletes the handler (a CTE), so it
commits or rolls back with it and a delete that finds nothing changes nothing. Each write
goes to the stripe ``pg_backend_pid() % COUNT_STRIPES``: pooled connections mostly keep to
their own row, so concurrent inserts into one account do not queue for one row lock until
commit. Counts with any other filter (description, time window, ids, type) use ``count(*)``
over the indexes; Oracle has no counter and always counts.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from luna_handlers.db.listing import filter_params
from luna_handlers.db.prepared import Prepared
from luna_handlers.db.records import ListFilters
from luna_handlers.db.schema.models import COUNT_STRIPES, HandlerCount

HANDLER_COUNT: sa.Table = HandlerCount.__table__  # type: ignore[assignment]


def count_rows(changed: sa.CTE, delta: int) -> sa.Insert:
    """Add ``delta`` to the counter of each row of ``changed`` (its ``account_id``)."""
    upsert = pg_insert(HANDLER_COUNT).from_select(
        ["account_id", "stripe", "n"],
        sa.select(changed.c.account_id, sa.func.pg_backend_pid() % COUNT_STRIPES,
                  sa.literal(delta)))
    return upsert.on_conflict_do_update(
        index_elements=[HANDLER_COUNT.c.account_id, HANDLER_COUNT.c.stripe],
        set_={"n": HANDLER_COUNT.c.n + upsert.excluded.n})


def counted_insert(insert: sa.Insert) -> sa.Insert:
    """``insert`` (of one row) and its +1 on the counter, in one statement."""
    created = insert.returning(insert.table.c.account_id).cte("created")
    return count_rows(created, 1).add_cte(created)


def counted_deletes(changed: sa.CTE) -> sa.CTE:
    """The -1 of each deleted row of ``changed``, as a CTE of the delete's statement."""
    return count_rows(changed, -1).cte("counted")


def _counter(scoped: bool) -> Prepared:
    where = [HANDLER_COUNT.c.account_id == sa.bindparam("account_id")] if scoped else []
    return Prepared(lambda _dialect: sa.select(
        sa.func.coalesce(sa.func.sum(HANDLER_COUNT.c.n), 0).label("total")).where(*where))


#: Sum of an account's stripes / of all of them (0 when there is no row).
COUNTER = {scoped: _counter(scoped) for scoped in (False, True)}


def counter_for(dialect_name: str, filters: ListFilters, table: sa.Table) -> Prepared | None:
    """The counter statement answering a count of handlers with ``filters``, or None when
    the count needs ``count(*)`` (another filter in use, or no counter on this dialect)."""
    if dialect_name != "postgresql":
        return None
    shape = tuple(filter_params(table, filters))
    if shape == ():
        return COUNTER[False]
    if shape == ("account_id",):
        return COUNTER[True]
    return None
