"""The DB context: every SQL statement of the service, in SQLAlchemy Core, for both dialects.

Method names follow the LUNA DB-context API (``createHandler``, ``putVerifier``, ...). Every
method takes an optional ``accountId``: with it, an object of another account does not exist;
without it, there is no account restriction (root access).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from luna_handlers.db.database import Database
from luna_handlers.db.handlers_db_tools.models.handlers_models import Handler, Verifier
from luna_handlers.db.notify import notify_after, supports_notifications
from luna_handlers.db.sqltypes import utc_now
from luna_handlers.errors import HandlerCorrupted, VerifierCorrupted

HANDLER: sa.Table = Handler.__table__  # type: ignore[assignment]  # declarative gives a Table
VERIFIER: sa.Table = Verifier.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class HandlerRecord:
    """A handler as stored; ``policies`` is None for dynamic handlers."""

    handler_id: str
    account_id: str
    description: str
    is_dynamic: bool
    policies: dict[str, Any] | None
    create_time: datetime
    last_update_time: datetime


@dataclass(frozen=True)
class VerifierRecord:
    """A verifier as stored."""

    verifier_id: str
    account_id: str
    description: str
    policies: dict[str, Any]
    version: int
    create_time: datetime
    last_update_time: datetime


@dataclass(frozen=True)
class ListFilters:
    """Filters shared by the list and count methods; ``None`` means "any"."""

    account_id: str | None = None
    description: str | None = None  # substring, matched literally (% and _ are escaped)
    ids: Sequence[str] | None = None
    create_time__gte: datetime | None = None
    create_time__lt: datetime | None = None
    is_dynamic: bool | None = None  # handlers only


def _new_id() -> str:
    return str(uuid.uuid4())


def _dump(policies: dict[str, Any] | None) -> str | None:
    return None if policies is None else orjson.dumps(policies).decode()


def _where(table: sa.Table, id_column: str, filters: ListFilters) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if filters.account_id is not None:
        clauses.append(table.c.account_id == filters.account_id)
    # Empty means "any": Oracle stores '' as NULL, so filtering on it would differ by dialect.
    if filters.description:
        clauses.append(table.c.description.contains(filters.description, autoescape=True))
    if filters.ids is not None:
        clauses.append(table.c[id_column].in_(list(filters.ids)))
    if filters.create_time__gte is not None:
        clauses.append(table.c.create_time >= filters.create_time__gte)
    if filters.create_time__lt is not None:
        clauses.append(table.c.create_time < filters.create_time__lt)
    if filters.is_dynamic is not None and "is_dynamic" in table.c:
        clauses.append(table.c.is_dynamic == filters.is_dynamic)
    return clauses


def _by_id(table: sa.Table, id_column: str, object_id: str,
           account_id: str | None) -> list[sa.ColumnElement[bool]]:
    clauses = [table.c[id_column] == object_id]
    if account_id is not None:
        clauses.append(table.c.account_id == account_id)
    return clauses


def _handler(row: sa.Row[Any]) -> HandlerRecord:
    try:
        policies = None if row.policies is None else orjson.loads(row.policies)
    except orjson.JSONDecodeError:
        raise HandlerCorrupted(row.handler_id) from None
    return HandlerRecord(
        handler_id=row.handler_id, account_id=row.account_id,
        description=row.description or "", is_dynamic=bool(row.is_dynamic), policies=policies,
        create_time=row.create_time, last_update_time=row.last_update_time,
    )


def _verifier(row: sa.Row[Any]) -> VerifierRecord:
    try:
        policies = orjson.loads(row.policies or "{}")
    except orjson.JSONDecodeError:
        raise VerifierCorrupted(row.verifier_id) from None
    return VerifierRecord(
        verifier_id=row.verifier_id, account_id=row.account_id,
        description=row.description or "", policies=policies,
        version=row.version, create_time=row.create_time,
        last_update_time=row.last_update_time,
    )


class DBContext:
    """All reads and writes of handlers and verifiers."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- shared building blocks ------------------------------------------------------------

    async def _list(self, table: sa.Table, id_column: str, filters: ListFilters, page: int,
                    page_size: int) -> Sequence[sa.Row[Any]]:
        query = (
            sa.select(table).where(*_where(table, id_column, filters))
            # Newest first; the id breaks ties so that pages never overlap or skip.
            .order_by(table.c.create_time.desc(), table.c[id_column])
            .limit(page_size).offset((page - 1) * page_size)
        )
        async with self.database.read() as conn:
            return (await conn.execute(query)).all()

    async def _count(self, table: sa.Table, id_column: str, filters: ListFilters) -> int:
        query = sa.select(sa.func.count()).select_from(table).where(
            *_where(table, id_column, filters))
        async with self.database.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _get(self, table: sa.Table, id_column: str, object_id: str,
                   account_id: str | None) -> sa.Row[Any] | None:
        query = sa.select(table).where(*_by_id(table, id_column, object_id, account_id))
        async with self.database.read() as conn:
            return (await conn.execute(query)).first()

    async def _exists(self, table: sa.Table, id_column: str, object_id: str,
                      account_id: str | None) -> bool:
        query = sa.select(table.c[id_column]).where(
            *_by_id(table, id_column, object_id, account_id))
        async with self.database.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def _delete(self, table: sa.Table, id_column: str, object_id: str,
                      account_id: str | None) -> bool:
        query = sa.delete(table).where(*_by_id(table, id_column, object_id, account_id))
        async with self.database.write() as conn:
            return (await conn.execute(query)).rowcount > 0

    async def ping(self) -> None:
        """One cheap round trip to the database (health checks)."""
        query = sa.select(sa.literal(1))
        async with self.database.read() as conn:
            await conn.execute(query)

    # -- handlers --------------------------------------------------------------------------

    async def createHandler(self, policies: dict[str, Any] | None, accountId: str,
                            description: str = "", isDynamic: bool = False) -> str:
        """Create a handler and return its id. Dynamic handlers store no policies."""
        handler_id = _new_id()
        query = sa.insert(HANDLER).values(
            handler_id=handler_id, account_id=accountId, description=description,
            is_dynamic=isDynamic, policies=None if isDynamic else _dump(policies))
        async with self.database.write() as conn:
            await conn.execute(query)
        return handler_id

    async def getHandler(self, handlerId: str, accountId: str | None = None
                         ) -> HandlerRecord | None:
        """The handler, or None when it does not exist (in this account)."""
        row = await self._get(HANDLER, "handler_id", handlerId, accountId)
        return None if row is None else _handler(row)

    async def getHandlers(self, filters: ListFilters, page: int = 1,
                          pageSize: int = 10) -> list[HandlerRecord]:
        """One page of handlers, newest first."""
        return [_handler(row) for row in
                await self._list(HANDLER, "handler_id", filters, page, pageSize)]

    async def getHandlersCount(self, filters: ListFilters) -> int:
        """How many handlers match the filters."""
        return await self._count(HANDLER, "handler_id", filters)

    async def doesHandlerExist(self, handlerId: str, accountId: str | None = None) -> bool:
        """True if the handler exists (in this account)."""
        return await self._exists(HANDLER, "handler_id", handlerId, accountId)

    async def putHandler(self, handlerId: str, policies: dict[str, Any] | None,
                         description: str, accountId: str | None,
                         isDynamic: bool = False) -> bool:
        """Replace description, policies and type; False when the handler does not exist."""
        query = (
            sa.update(HANDLER).where(*_by_id(HANDLER, "handler_id", handlerId, accountId))
            .values(description=description, is_dynamic=isDynamic,
                    policies=None if isDynamic else _dump(policies),
                    last_update_time=utc_now())
        )
        return await self._change_handler(query)

    async def deleteHandler(self, handlerId: str, accountId: str | None = None) -> bool:
        """Delete the handler; True if it existed."""
        query = sa.delete(HANDLER).where(*_by_id(HANDLER, "handler_id", handlerId, accountId))
        return await self._change_handler(query)

    async def _change_handler(self, query: sa.Update | sa.Delete) -> bool:
        # The notification goes in the same statement, hence the same transaction: it is
        # sent on commit only, so the handler caches of every instance never miss a change.
        async with self.database.write() as conn:
            if supports_notifications(self.database.dialect_name):
                return (await conn.execute(notify_after(query, HANDLER.c.handler_id))
                        ).first() is not None
            return (await conn.execute(query)).rowcount > 0

    # -- verifiers -------------------------------------------------------------------------

    async def createVerifier(self, policies: dict[str, Any], accountId: str,
                             description: str = "") -> str:
        """Create a verifier at version 1 and return its id."""
        verifier_id = _new_id()
        query = sa.insert(VERIFIER).values(
            verifier_id=verifier_id, account_id=accountId, description=description,
            policies=_dump(policies), version=1)
        async with self.database.write() as conn:
            await conn.execute(query)
        return verifier_id

    async def getVerifier(self, verifierId: str, accountId: str | None = None
                          ) -> VerifierRecord | None:
        """The verifier, or None when it does not exist (in this account)."""
        row = await self._get(VERIFIER, "verifier_id", verifierId, accountId)
        return None if row is None else _verifier(row)

    async def getVerifiers(self, filters: ListFilters, page: int = 1,
                           pageSize: int = 10) -> list[VerifierRecord]:
        """One page of verifiers, newest first."""
        return [_verifier(row) for row in
                await self._list(VERIFIER, "verifier_id", filters, page, pageSize)]

    async def getVerifierCount(self, filters: ListFilters) -> int:
        """How many verifiers match the filters."""
        return await self._count(VERIFIER, "verifier_id", filters)

    async def checkVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """True if the verifier exists (in this account)."""
        return await self._exists(VERIFIER, "verifier_id", verifierId, accountId)

    async def putVerifier(self, verifierId: str, policies: dict[str, Any], description: str,
                          accountId: str | None) -> int | None:
        """Replace a verifier and return its new version; None when it does not exist.

        ``version = version + 1`` in one UPDATE: the row lock serialises concurrent
        replaces, so none is lost.
        """
        query = (
            sa.update(VERIFIER).where(*_by_id(VERIFIER, "verifier_id", verifierId, accountId))
            .values(description=description, policies=_dump(policies),
                    version=VERIFIER.c.version + 1, last_update_time=utc_now())
            .returning(VERIFIER.c.version)
        )
        async with self.database.write() as conn:
            version = (await conn.execute(query)).scalar_one_or_none()
        return None if version is None else int(version)

    async def deleteVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """Delete the verifier; True if it existed."""
        return await self._delete(VERIFIER, "verifier_id", verifierId, accountId)
