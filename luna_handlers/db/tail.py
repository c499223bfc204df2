"""Deep pages of handlers read from the end of the list (PostgreSQL).

OFFSET reads every entry it skips: page 1000 of 100 in a list of 100,000 reads 99,900 index
entries, and that is the last page. With the exact count of the list at hand (the handler
counter, :mod:`luna_handlers.db.stores.counts`, kept in the same transactions as the rows),
a page in the second half of the list is the same page counted from the other end: the
list's index walked backwards, skipping only the rows after it. One statement reads the
count and the page in one snapshot, where the counter equals the rows, so the answer is the
plain OFFSET's for every page (ties included: the reverse order is the exact reverse). The
worst page is now the middle one, at half the entries.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from luna_handlers.db.listing import StatementsByShape, id_column, where_clauses
from luna_handlers.db.prepared import Prepared, Statement
from luna_handlers.db.stores.counts import HANDLER_COUNT


def tail_shape(dialect_name: str, table: sa.Table, shape: tuple[str, ...]) -> bool:
    """Whether a deep page of ``shape`` can be read from the end: the counter counts it."""
    return (dialect_name == "postgresql" and table.name == "handler"
            and shape in ((), ("account_id",)))


def _total(shape: tuple[str, ...]) -> Any:
    where = [HANDLER_COUNT.c.account_id == sa.bindparam("account_id")] if shape else []
    total = sa.cast(sa.func.coalesce(sa.func.sum(HANDLER_COUNT.c.n), 0), sa.BigInteger)
    return sa.select(total).where(*where).scalar_subquery()


def _tail_page(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    def build(dialect: str) -> Statement:
        key = id_column(table)
        offset: Any = sa.bindparam("page_offset", type_=sa.BigInteger)
        limit: Any = sa.bindparam("page_limit", type_=sa.BigInteger)
        total = _total(shape)
        forward = offset * 2 < total
        ids = sa.select(key.label("page_id")).where(*where_clauses(table, shape, dialect))
        head = (ids.order_by(table.c.create_time.desc(), key)
                .limit(sa.case((forward, limit), else_=0)).offset(offset))
        rest = total - offset  # rows from the page's first on
        tail = (ids.order_by(table.c.create_time, key.desc())
                .limit(sa.case((forward, 0), else_=sa.func.greatest(sa.func.least(limit, rest), 0)))
                .offset(sa.func.greatest(rest - limit, 0)))
        page = sa.union_all(head, tail).subquery("page")
        return (sa.select(table).join(page, key == page.c.page_id)
                .order_by(table.c.create_time.desc(), key))
    return Prepared(build)


TAIL_PAGE = StatementsByShape(_tail_page)
