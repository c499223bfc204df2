"""The list store: lists of faces (the faces themselves and their links: ``faces``)."""

from __future__ import annotations

import sqlalchemy as sa

from luna_handlers.db.prepared import Row
from luna_handlers.db.records import ListFilters
from luna_handlers.db.schema.store_models import List
from luna_handlers.db.store_records import ListRecord, new_id
from luna_handlers.db.stores.common import (
    SCOPES,
    Store,
    delete_statement,
    exists_statement,
    get_statement,
    insert_statement,
)

LIST: sa.Table = List.__table__  # type: ignore[assignment]  # declarative gives a Table

GET_LIST = {scoped: get_statement(LIST, scoped) for scoped in SCOPES}
EXISTS_LIST = {scoped: exists_statement(LIST, scoped) for scoped in SCOPES}
DELETE_LIST = {scoped: delete_statement(LIST, scoped) for scoped in SCOPES}
INSERT_LIST = insert_statement(LIST, ("list_id", "account_id", "description"))


def _list(row: Row) -> ListRecord:
    return ListRecord(
        list_id=row["list_id"], account_id=row["account_id"],
        description=row["description"] or "",  # Oracle stores '' as NULL
        create_time=row["create_time"], last_update_time=row["last_update_time"])


class ListStore(Store):
    """Reads and writes of lists."""

    async def createList(self, accountId: str, description: str = "") -> str:
        """Create an empty list and return its id."""
        list_id = new_id()
        await self._write(INSERT_LIST, {"v_list_id": list_id, "v_account_id": accountId,
                                        "v_description": description})
        return list_id

    async def getList(self, listId: str, accountId: str | None = None) -> ListRecord | None:
        """The list, or None when it does not exist (in this account)."""
        row = await self._one(GET_LIST, listId, accountId)
        return None if row is None else _list(row)

    async def listExists(self, listId: str, accountId: str | None = None) -> bool:
        """True if the list exists (in this account)."""
        return await self._exists(EXISTS_LIST, listId, accountId)

    async def deleteList(self, listId: str, accountId: str | None = None) -> bool:
        """Delete the list and its links (not its faces); True if it existed."""
        return await self._delete(DELETE_LIST, listId, accountId)

    async def getLists(self, filters: ListFilters, page: int = 1,
                       pageSize: int = 10) -> list[ListRecord]:
        """One page of lists, newest first."""
        return [_list(row) for row in await self._list(LIST, filters, page, pageSize)]

    async def countLists(self, filters: ListFilters) -> int:
        """How many lists match the filters."""
        return await self._count(LIST, filters)
