"""The handler store: the statements and DB-context methods of handlers.

Writers of a handler notify the handler caches of every instance in the same statement
(``changed(..., notify=True)``), on dialects that send notifications.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from luna_handlers.db.listing import filter_params
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.records import HandlerRecord, ListFilters, RenderedPolicies
from luna_handlers.db.schema.models import Handler
from luna_handlers.db.schema.sqltypes import utc_now
from luna_handlers.db.stores.common import (
    RENDERED_COLUMNS,
    SCOPES,
    Store,
    by_id,
    changed,
    delete_statement,
    dump,
    exists_statement,
    get_statement,
    insert_statement,
    match,
    new_id,
    rendered_binds,
    rendered_values,
)
from luna_handlers.db.stores.counts import counted_deletes, counted_insert, counter_for

HANDLER: sa.Table = Handler.__table__  # type: ignore[assignment]  # declarative gives a Table


def _put(scoped: bool) -> Prepared:
    return Prepared(lambda dialect: changed(
        sa.update(HANDLER).where(*match(HANDLER, scoped)).values(
            description=sa.bindparam("v_description"), is_dynamic=sa.bindparam("v_is_dynamic"),
            policies=sa.bindparam("v_policies"), last_update_time=utc_now(),
            **rendered_binds()),
        HANDLER, dialect, notify=True))


GET_HANDLER = {scoped: get_statement(HANDLER, scoped) for scoped in SCOPES}
EXISTS_HANDLER = {scoped: exists_statement(HANDLER, scoped) for scoped in SCOPES}
DELETE_HANDLER = {scoped: delete_statement(HANDLER, scoped, notify=True, also=counted_deletes)
                  for scoped in SCOPES}
PUT_HANDLER = {scoped: _put(scoped) for scoped in SCOPES}
INSERT_HANDLER = insert_statement(
    HANDLER, ("handler_id", "account_id", "description", "is_dynamic", "policies",
              *RENDERED_COLUMNS),
    lambda insert, dialect: counted_insert(insert) if dialect == "postgresql" else insert)


def _handler(row: Row) -> HandlerRecord:
    return HandlerRecord(
        handler_id=row["handler_id"], account_id=row["account_id"],
        description=row["description"] or "", is_dynamic=bool(row["is_dynamic"]),
        policies_json=row["policies"], create_time=row["create_time"],
        last_update_time=row["last_update_time"],
        rendered_policies=row["rendered_policies"], rendered_with=row["rendered_with"],
    )


class HandlerStore(Store):
    """Reads and writes of handlers."""

    async def createHandler(self, policies: dict[str, Any] | None, accountId: str,
                            description: str = "", isDynamic: bool = False,
                            *, rendered: RenderedPolicies | None = None) -> str:
        """Create a handler and return its id. Dynamic handlers store no policies;
        ``rendered``: the policies as a read returns them, stored beside them."""
        handler_id = new_id()
        await self._write(INSERT_HANDLER, {
            "v_handler_id": handler_id, "v_account_id": accountId,
            "v_description": description, "v_is_dynamic": isDynamic,
            "v_policies": None if isDynamic else dump(policies),
            **rendered_values(None if isDynamic else rendered)})
        return handler_id

    async def getHandler(self, handlerId: str, accountId: str | None = None
                         ) -> HandlerRecord | None:
        """The handler, or None when it does not exist (in this account)."""
        row = await self._one(GET_HANDLER, handlerId, accountId)
        return None if row is None else _handler(row)

    async def getHandlers(self, filters: ListFilters, page: int = 1,
                          pageSize: int = 10) -> list[HandlerRecord]:
        """One page of handlers, newest first."""
        return [_handler(row) for row in await self._list(HANDLER, filters, page, pageSize)]

    async def getHandlersCount(self, filters: ListFilters) -> int:
        """How many handlers match the filters (by account or all: from the counter,
        :mod:`~luna_handlers.db.stores.counts`)."""
        counter = counter_for(self.database.dialect_name, filters, HANDLER)
        if counter is None:
            return await self._count(HANDLER, filters)
        rows = await self._scan(counter, filter_params(HANDLER, filters))
        return int(rows[0]["total"])

    async def doesHandlerExist(self, handlerId: str, accountId: str | None = None) -> bool:
        """True if the handler exists (in this account)."""
        return await self._exists(EXISTS_HANDLER, handlerId, accountId)

    async def putHandler(self, handlerId: str, policies: dict[str, Any] | None,
                         description: str, accountId: str | None,
                         isDynamic: bool = False,
                         *, rendered: RenderedPolicies | None = None) -> bool:
        """Replace description, policies (and their ``rendered`` form) and type; False when
        the handler does not exist.

        On PostgreSQL the handler caches of every instance are notified in the same
        statement (see :func:`~luna_handlers.db.stores.common.changed`).
        """
        params = by_id(handlerId, accountId) | {
            "v_description": description, "v_is_dynamic": isDynamic,
            "v_policies": None if isDynamic else dump(policies),
            **rendered_values(None if isDynamic else rendered)}
        return bool(await self._write(PUT_HANDLER[accountId is not None], params))

    async def deleteHandler(self, handlerId: str, accountId: str | None = None) -> bool:
        """Delete the handler; True if it existed (the caches are notified as for a put)."""
        return await self._delete(DELETE_HANDLER, handlerId, accountId)
