"""The statements of a description search on PostgreSQL (:func:`luna_handlers.db.pages.page_rows`
picks them).

A prepared statement is planned once for every pattern (a generic plan), blind to how
common the term is, and no single plan is right for both kinds of term. So each statement
has one sensible plan whatever the term: first a walk of the list in its order, filtered
(a common term fills the page after a few hundred rows); only when the walk's rows run out
of matches, every match, sorted (a rare term has few), from an index of 3-character
substrings (``luna_grams``, migration 0007): the account's own for a search within one
account, the one over every account otherwise.
"""

from __future__ import annotations

import sqlalchemy as sa

from luna_handlers.db.listing import (
    StatementsByShape,
    but_search,
    deferred_join,
    grams_match,
    id_column,
    list_order,
    search_of,
    where_clauses,
)
from luna_handlers.db.prepared import Prepared, Statement

#: The walk of a search reads up to this many rows per row of the pages up to the one
#: asked for (page 1 of 10: 2,000), so a term in 1 % of the rows or more is answered by
#: it; rarer terms go to an index of matches, where few matches are cheap.
WALK_PER_ROW = 200
#: ... and never more rows than this (a deep page of a common term is sorted instead).
WALK_MAX = 20_000


def walk_limit(page: int, page_size: int) -> int:
    """The rows the walk of a search reads for ``page`` (see :data:`WALK_PER_ROW`)."""
    return min(WALK_MAX, WALK_PER_ROW * page * page_size)


def _walk(table: sa.Table, shape: tuple[str, ...], dialect: str) -> sa.Subquery:
    """The first ``walk_limit`` rows of the list without the search, in its order (an
    ordered index walk: a subquery with a LIMIT keeps the search's filter out of it; the
    unscoped index carries the description, so a walk of every account reads no table
    rows)."""
    return (sa.select(id_column(table).label("page_id"), table.c.create_time,
                      table.c.description)
            .where(*where_clauses(table, but_search(shape), dialect))
            .order_by(*list_order(table)).limit(sa.bindparam("walk_limit")).subquery("walk"))


def _walk_page(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    """The page among the matches of the walk's rows."""
    def build(dialect: str) -> Statement:
        walk = _walk(table, shape, dialect)
        matches = sa.select(walk.c.page_id).where(*where_clauses(walk, search_of(shape), dialect))
        return deferred_join(table, matches, (walk.c.create_time.desc(), walk.c.page_id))
    return Prepared(build)


def _walked(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    """How many rows the walk read (fewer than ``walk_limit``: the whole list)."""
    return Prepared(lambda dialect: sa.select(sa.func.count().label("walked"))
                    .select_from(_walk(table, shape, dialect)))


def _matched_page(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    """The page among every match of the search, found by an index of matches alone (the
    account's grams for a search in one account, else the grams of every account; a scan
    for a term of under 3 characters), then filtered and sorted. ``MATERIALIZED``: the
    other filters and the order must not lead the plan (an index walk of a rare term's
    list would read all of it)."""
    def build(dialect: str) -> Statement:
        key = id_column(table).name
        columns = [table.c[name] for name in (key, "account_id", "create_time", "is_dynamic")
                   if name in table.c]
        found = (grams_match(table, "account_id" in shape) if "description" in shape
                 else where_clauses(table, search_of(shape), dialect))
        matched = sa.select(*columns).where(*found).cte("matched").prefix_with("MATERIALIZED")
        # No id list here (page_rows): the other filters need no id column of "matched".
        return deferred_join(table, sa.select(matched.c[key].label("page_id"))
                             .where(*where_clauses(matched, but_search(shape), dialect)),
                             (matched.c.create_time.desc(), matched.c[key]))
    return Prepared(build)


WALK_PAGE = StatementsByShape(_walk_page)
WALKED = StatementsByShape(_walked)
MATCHED_PAGE = StatementsByShape(_matched_page)
