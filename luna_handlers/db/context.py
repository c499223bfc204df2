"""The DB context: every SQL statement of the service, in SQLAlchemy Core, for both dialects.

Method names follow the LUNA DB-context API (``createHandler``, ``putVerifier``, ...). Every
method takes an optional ``accountId``: with it, an object of another account does not exist;
without it, there is no account restriction (root access).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from luna_handlers.db.database import Database
from luna_handlers.db.handlers_db_tools.models.handlers_models import Handler, Verifier
from luna_handlers.db.listing import COUNT, PAGE, filter_params, id_column
from luna_handlers.db.notify import notify_after, supports_notifications
from luna_handlers.db.prepared import Prepared, Row, Statement
from luna_handlers.db.records import HandlerRecord, ListFilters, VerifierRecord
from luna_handlers.db.sqltypes import utc_now

# The records and filters are part of the DB-context API: importable from here too.
__all__ = ["HANDLER", "VERIFIER", "DBContext", "HandlerRecord", "ListFilters", "VerifierRecord"]

HANDLER: sa.Table = Handler.__table__  # type: ignore[assignment]  # declarative gives a Table
VERIFIER: sa.Table = Verifier.__table__  # type: ignore[assignment]


def _new_id() -> str:
    return str(uuid.uuid4())


def _dump(policies: dict[str, Any] | None) -> str | None:
    return None if policies is None else orjson.dumps(policies).decode()


def _match(table: sa.Table, scoped: bool) -> list[sa.ColumnElement[bool]]:
    clauses = [id_column(table) == sa.bindparam("object_id")]
    if scoped:
        clauses.append(table.c.account_id == sa.bindparam("account_id"))
    return clauses


def _changed(dml: sa.Update | sa.Delete, table: sa.Table, dialect_name: str) -> Statement:
    """The statement returns one row per changed row; on PostgreSQL it also notifies the
    handler caches, in the same statement and so the same transaction: on commit only."""
    if table is HANDLER and supports_notifications(dialect_name):
        return notify_after(dml, id_column(table))
    return dml.returning(id_column(table))


# Fixed-shape statements, one per (table, scoped): see luna_handlers.db.prepared.
def _get(table: sa.Table, scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(table).where(*_match(table, scoped)))


def _exists(table: sa.Table, scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(id_column(table)).where(*_match(table, scoped)))


def _delete(table: sa.Table, scoped: bool) -> Prepared:
    return Prepared(lambda dialect: _changed(
        sa.delete(table).where(*_match(table, scoped)), table, dialect))


def _insert(table: sa.Table, columns: Sequence[str]) -> Prepared:
    # Bind names differ from column names: SQLAlchemy reserves those for VALUES itself.
    values: dict[str, Any] = {column: sa.bindparam(f"v_{column}") for column in columns}
    return Prepared(lambda _dialect: sa.insert(table).values(values))


def _put_handler(scoped: bool) -> Prepared:
    return Prepared(lambda dialect: _changed(
        sa.update(HANDLER).where(*_match(HANDLER, scoped)).values(
            description=sa.bindparam("v_description"), is_dynamic=sa.bindparam("v_is_dynamic"),
            policies=sa.bindparam("v_policies"), last_update_time=utc_now()),
        HANDLER, dialect))


def _put_verifier(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: (
        sa.update(VERIFIER).where(*_match(VERIFIER, scoped))
        .values(description=sa.bindparam("v_description"), policies=sa.bindparam("v_policies"),
                version=VERIFIER.c.version + 1, last_update_time=utc_now())
        .returning(VERIFIER.c.version)))


SCOPES = (False, True)
GET = {table.name: {scoped: _get(table, scoped) for scoped in SCOPES}
       for table in (HANDLER, VERIFIER)}
EXISTS = {table.name: {scoped: _exists(table, scoped) for scoped in SCOPES}
          for table in (HANDLER, VERIFIER)}
DELETE = {table.name: {scoped: _delete(table, scoped) for scoped in SCOPES}
          for table in (HANDLER, VERIFIER)}
PUT_HANDLER = {scoped: _put_handler(scoped) for scoped in SCOPES}
PUT_VERIFIER = {scoped: _put_verifier(scoped) for scoped in SCOPES}
INSERT_HANDLER = _insert(HANDLER, ("handler_id", "account_id", "description", "is_dynamic",
                                   "policies"))
INSERT_VERIFIER = _insert(VERIFIER, ("verifier_id", "account_id", "description", "policies",
                                     "version"))
PING = Prepared(lambda _dialect: sa.select(sa.literal_column("1")))


def _by_id(object_id: str, account_id: str | None) -> dict[str, Any]:
    params = {"object_id": object_id}
    if account_id is not None:
        params["account_id"] = account_id
    return params


def _handler(row: Row) -> HandlerRecord:
    return HandlerRecord(
        handler_id=row["handler_id"], account_id=row["account_id"],
        description=row["description"] or "", is_dynamic=bool(row["is_dynamic"]),
        policies_json=row["policies"], create_time=row["create_time"],
        last_update_time=row["last_update_time"],
    )


def _verifier(row: Row) -> VerifierRecord:
    return VerifierRecord(
        verifier_id=row["verifier_id"], account_id=row["account_id"],
        # Oracle stores '' as NULL.
        description=row["description"] or "", policies_json=row["policies"] or "{}",
        version=row["version"], create_time=row["create_time"],
        last_update_time=row["last_update_time"],
    )


class DBContext:
    """All reads and writes of handlers and verifiers."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- shared building blocks ------------------------------------------------------------

    async def _read(self, prepared: Prepared, params: dict[str, Any]) -> Sequence[Row]:
        async with self.database.read() as session:
            return await session.rows(prepared, params)

    async def _write(self, prepared: Prepared, params: dict[str, Any]) -> Sequence[Row]:
        async with self.database.write() as session:
            return await session.rows(prepared, params)

    async def _one(self, table: sa.Table, object_id: str, account_id: str | None
                   ) -> Row | None:
        rows = await self._read(GET[table.name][account_id is not None],
                                _by_id(object_id, account_id))
        return rows[0] if rows else None

    async def _exists(self, table: sa.Table, object_id: str, account_id: str | None) -> bool:
        return bool(await self._read(EXISTS[table.name][account_id is not None],
                                     _by_id(object_id, account_id)))

    async def _delete(self, table: sa.Table, object_id: str, account_id: str | None) -> bool:
        return bool(await self._write(DELETE[table.name][account_id is not None],
                                      _by_id(object_id, account_id)))

    async def _list(self, table: sa.Table, filters: ListFilters, page: int,
                    page_size: int) -> Sequence[Row]:
        params = filter_params(table, filters)
        statement = PAGE(table, tuple(params))
        return await self._read(statement, params | {"page_limit": page_size,
                                                     "page_offset": (page - 1) * page_size})

    async def _count(self, table: sa.Table, filters: ListFilters) -> int:
        params = filter_params(table, filters)
        rows = await self._read(COUNT(table, tuple(params)), params)
        return int(rows[0]["total"])

    async def ping(self) -> None:
        """One cheap round trip to the database (health checks)."""
        await self._read(PING, {})

    # -- handlers --------------------------------------------------------------------------

    async def createHandler(self, policies: dict[str, Any] | None, accountId: str,
                            description: str = "", isDynamic: bool = False) -> str:
        """Create a handler and return its id. Dynamic handlers store no policies."""
        handler_id = _new_id()
        await self._write(INSERT_HANDLER, {
            "v_handler_id": handler_id, "v_account_id": accountId,
            "v_description": description, "v_is_dynamic": isDynamic,
            "v_policies": None if isDynamic else _dump(policies)})
        return handler_id

    async def getHandler(self, handlerId: str, accountId: str | None = None
                         ) -> HandlerRecord | None:
        """The handler, or None when it does not exist (in this account)."""
        row = await self._one(HANDLER, handlerId, accountId)
        return None if row is None else _handler(row)

    async def getHandlers(self, filters: ListFilters, page: int = 1,
                          pageSize: int = 10) -> list[HandlerRecord]:
        """One page of handlers, newest first."""
        return [_handler(row) for row in await self._list(HANDLER, filters, page, pageSize)]

    async def getHandlersCount(self, filters: ListFilters) -> int:
        """How many handlers match the filters."""
        return await self._count(HANDLER, filters)

    async def doesHandlerExist(self, handlerId: str, accountId: str | None = None) -> bool:
        """True if the handler exists (in this account)."""
        return await self._exists(HANDLER, handlerId, accountId)

    async def putHandler(self, handlerId: str, policies: dict[str, Any] | None,
                         description: str, accountId: str | None,
                         isDynamic: bool = False) -> bool:
        """Replace description, policies and type; False when the handler does not exist.

        On PostgreSQL the handler caches of every instance are notified in the same
        statement (see :func:`_changed`).
        """
        params = _by_id(handlerId, accountId) | {
            "v_description": description, "v_is_dynamic": isDynamic,
            "v_policies": None if isDynamic else _dump(policies)}
        return bool(await self._write(PUT_HANDLER[accountId is not None], params))

    async def deleteHandler(self, handlerId: str, accountId: str | None = None) -> bool:
        """Delete the handler; True if it existed (the caches are notified as for a put)."""
        return await self._delete(HANDLER, handlerId, accountId)

    # -- verifiers -------------------------------------------------------------------------

    async def createVerifier(self, policies: dict[str, Any], accountId: str,
                             description: str = "") -> str:
        """Create a verifier at version 1 and return its id."""
        verifier_id = _new_id()
        await self._write(INSERT_VERIFIER, {
            "v_verifier_id": verifier_id, "v_account_id": accountId,
            "v_description": description, "v_policies": _dump(policies), "v_version": 1})
        return verifier_id

    async def getVerifier(self, verifierId: str, accountId: str | None = None
                          ) -> VerifierRecord | None:
        """The verifier, or None when it does not exist (in this account)."""
        row = await self._one(VERIFIER, verifierId, accountId)
        return None if row is None else _verifier(row)

    async def getVerifiers(self, filters: ListFilters, page: int = 1,
                           pageSize: int = 10) -> list[VerifierRecord]:
        """One page of verifiers, newest first."""
        return [_verifier(row) for row in await self._list(VERIFIER, filters, page, pageSize)]

    async def getVerifierCount(self, filters: ListFilters) -> int:
        """How many verifiers match the filters."""
        return await self._count(VERIFIER, filters)

    async def checkVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """True if the verifier exists (in this account)."""
        return await self._exists(VERIFIER, verifierId, accountId)

    async def putVerifier(self, verifierId: str, policies: dict[str, Any], description: str,
                          accountId: str | None) -> int | None:
        """Replace a verifier and return its new version; None when it does not exist.

        ``version = version + 1`` in one UPDATE: the row lock serialises concurrent
        replaces, so none is lost.
        """
        params = _by_id(verifierId, accountId) | {
            "v_description": description, "v_policies": _dump(policies)}
        rows = await self._write(PUT_VERIFIER[accountId is not None], params)
        return int(rows[0]["version"]) if rows else None

    async def deleteVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """Delete the verifier; True if it existed."""
        return await self._delete(VERIFIER, verifierId, accountId)
