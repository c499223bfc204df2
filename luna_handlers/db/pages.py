"""One page of a list: which statements answer it (:mod:`luna_handlers.db.listing` for
plain pages, :mod:`luna_handlers.db.search` for description searches on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from luna_handlers.db.database import Database
from luna_handlers.db.listing import (
    NEAR_OFFSET,
    NEAR_PAGE,
    PAGE,
    but_search,
    filter_params,
    grams_param,
    search_of,
)
from luna_handlers.db.prepared import Row
from luna_handlers.db.records import ListFilters
from luna_handlers.db.search import MATCHED_PAGE, WALK_PAGE, WALKED, walk_limit
from luna_handlers.db.tail import TAIL_PAGE, tail_shape


async def page_rows(database: Database, table: sa.Table, filters: ListFilters, page: int,
                    page_size: int) -> Sequence[Row]:
    """One page of ``table`` (newest first) on a session of the scan share.

    Without a search, a page near the start is read straight from the list index and a
    deeper one by the deferred join (of handlers by account or of all of them on
    PostgreSQL, from whichever end of the list is nearer: :mod:`luna_handlers.db.tail`).
    A search on PostgreSQL (with no id list, which would lead any plan) runs the walk
    first; its page is the answer when it is full (the page's matches all lie in the walk,
    which is a prefix of the list in its order) or when the walk read the whole list;
    otherwise the page comes from every match (found by an index of 3-character
    substrings: the account's own, or the table's). Each answer is that of one statement,
    identical to the plain page's.
    """
    params = filter_params(table, filters)
    shape = tuple(params)
    params |= {"page_limit": page_size, "page_offset": (page - 1) * page_size}
    async with database.scan() as session:
        if not search_of(shape):
            if params["page_offset"] < NEAR_OFFSET:
                statement = NEAR_PAGE
            else:
                statement = TAIL_PAGE if tail_shape(database.dialect_name, table, shape) else PAGE
            return await session.rows(statement(table, shape), params)
        if database.dialect_name != "postgresql" or "ids" in shape:
            return await session.rows(PAGE(table, shape), params)
        params["walk_limit"] = walk_limit(page, page_size)
        rows = await session.rows(WALK_PAGE(table, shape), params)
        if len(rows) == page_size:
            return rows
        walked = await session.rows(WALKED(table, but_search(shape)), params)
        if walked[0]["walked"] < params["walk_limit"]:
            return rows
        return await session.rows(MATCHED_PAGE(table, shape), params | grams_param(filters))
