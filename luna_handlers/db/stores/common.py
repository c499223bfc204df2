"""What every store of the DB context shares: statement builders by id, and :class:`Store`.

A store is the statements and methods of one kind of object (handlers, verifiers; lists,
faces, events, samples next); :class:`~luna_handlers.db.context.DBContext` is all of them
over one :class:`~luna_handlers.db.database.Database`. Every method takes an optional
``accountId``: with it, an object of another account does not exist; without it, there is
no account restriction (root access).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from luna_handlers.db.changes import notify_after
from luna_handlers.db.database import Database
from luna_handlers.db.dialects import named
from luna_handlers.db.listing import COUNT, filter_params, grams_param, id_column
from luna_handlers.db.pages import page_rows
from luna_handlers.db.prepared import Prepared, Row, Statement
from luna_handlers.db.records import ListFilters, RenderedPolicies

SCOPES = (False, True)  # without and with an account restriction


def new_id() -> str:
    """A fresh object id (uuid4)."""
    return str(uuid.uuid4())


def dump(policies: dict[str, Any] | None) -> str | None:
    """Policies as the JSON text stored."""
    return None if policies is None else orjson.dumps(policies).decode()


#: The columns of a policies rendering (:class:`RenderedPolicies`), written with the policies.
RENDERED_COLUMNS = ("rendered_policies", "rendered_with")


def rendered_values(rendered: RenderedPolicies | None) -> dict[str, Any]:
    """The bind values of :data:`RENDERED_COLUMNS` (NULL without a rendering: reads render)."""
    return {"v_rendered_policies": None if rendered is None else rendered.json,
            "v_rendered_with": None if rendered is None else rendered.made_with}


def rendered_binds() -> dict[str, Any]:
    """``column = :v_<column>`` for :data:`RENDERED_COLUMNS`, for an UPDATE's values."""
    return {column: sa.bindparam(f"v_{column}") for column in RENDERED_COLUMNS}


def match(table: sa.Table, scoped: bool) -> list[sa.ColumnElement[bool]]:
    """``id = :object_id`` (and ``account_id = :account_id`` when scoped)."""
    clauses = [id_column(table) == sa.bindparam("object_id")]
    if scoped:
        clauses.append(table.c.account_id == sa.bindparam("account_id"))
    return clauses


def changed(dml: sa.Update | sa.Delete, table: sa.Table, dialect_name: str, *,
            notify: bool, also: Callable[[sa.CTE], sa.CTE] | None = None) -> Statement:
    """The statement returns one row per changed row; with ``notify``, on a dialect that
    sends change notifications, it also notifies the caches in the same statement, and so
    the same transaction: on commit only (``also``: see :func:`notify_after`, that path
    only)."""
    if notify and named(dialect_name).supports_changes:
        return notify_after(dml, id_column(table), also)
    return dml.returning(id_column(table))


# Fixed-shape statements, one per (table, scoped): see luna_handlers.db.prepared.
def get_statement(table: sa.Table, scoped: bool) -> Prepared:
    """The row by id."""
    return Prepared(lambda _dialect: sa.select(table).where(*match(table, scoped)))


def exists_statement(table: sa.Table, scoped: bool) -> Prepared:
    """The id, if the row exists."""
    return Prepared(lambda _dialect: sa.select(id_column(table)).where(*match(table, scoped)))


def delete_statement(table: sa.Table, scoped: bool, *, notify: bool = False,
                     also: Callable[[sa.CTE], sa.CTE] | None = None) -> Prepared:
    """Delete by id; one row per deleted row."""
    return Prepared(lambda dialect: changed(
        sa.delete(table).where(*match(table, scoped)), table, dialect, notify=notify,
        also=also))


def insert_statement(table: sa.Table, columns: Sequence[str],
                     wrap: Callable[[sa.Insert, str], Statement] | None = None) -> Prepared:
    """Insert one row; the values are bound as ``v_<column>``. ``wrap(insert, dialect)``
    makes the statement sent (adds a counter update, say)."""
    # Bind names differ from column names: SQLAlchemy reserves those for VALUES itself.
    values: dict[str, Any] = {column: sa.bindparam(f"v_{column}") for column in columns}
    return Prepared(lambda dialect: (sa.insert(table).values(values) if wrap is None
                                     else wrap(sa.insert(table).values(values), dialect)))


def by_id(object_id: str, account_id: str | None) -> dict[str, Any]:
    """The bind values of a statement by id (scoped when ``account_id`` is given)."""
    params = {"object_id": object_id}
    if account_id is not None:
        params["account_id"] = account_id
    return params


class Store:
    """The building blocks of a store on one table: run, read one, exists, delete, list."""

    database: Database

    async def _read(self, prepared: Prepared, params: dict[str, Any]) -> Sequence[Row]:
        async with self.database.read() as session:
            return await session.rows(prepared, params)

    async def _write(self, prepared: Prepared, params: dict[str, Any]) -> Sequence[Row]:
        async with self.database.write() as session:
            return await session.rows(prepared, params)

    async def _scan(self, prepared: Prepared, params: dict[str, Any]) -> Sequence[Row]:
        # Lists and counts have their own share of the connections (``Database.scan``).
        async with self.database.scan() as session:
            return await session.rows(prepared, params)

    async def _one(self, get: dict[bool, Prepared], object_id: str, account_id: str | None
                   ) -> Row | None:
        rows = await self._read(get[account_id is not None], by_id(object_id, account_id))
        return rows[0] if rows else None

    async def _exists(self, exists: dict[bool, Prepared], object_id: str,
                      account_id: str | None) -> bool:
        return bool(await self._read(exists[account_id is not None],
                                     by_id(object_id, account_id)))

    async def _delete(self, delete: dict[bool, Prepared], object_id: str,
                      account_id: str | None) -> bool:
        return bool(await self._write(delete[account_id is not None],
                                      by_id(object_id, account_id)))

    async def _list(self, table: sa.Table, filters: ListFilters, page: int,
                    page_size: int) -> Sequence[Row]:
        # On the scan share too; a search may take more than one statement (see there).
        return await page_rows(self.database, table, filters, page, page_size)

    async def _count(self, table: sa.Table, filters: ListFilters) -> int:
        params = filter_params(table, filters)
        rows = await self._scan(COUNT(table, tuple(params)), params | grams_param(filters))
        return int(rows[0]["total"])
