"""Stored renderings made anew: the rows of ``handler`` or ``verifier`` whose rendering was
made by another version of the policy models (or none was stored), rendered again in batches.

A stored rendering is used only while its ``rendered_with`` is the running one's
(:class:`~luna_handlers.db.records.RenderedPolicies`); any other row is rendered on every
read, which is correct but costs per item again. ``luna-handlers db upgrade`` (and ``db
rerender``) run this after migrating, so that a list's cost stays flat across versions.

Online: a batch is read, rendered in Python and written back in one statement per batch on
PostgreSQL (per row on Oracle) only where the row is unchanged since it was read (same
``last_update_time``): a write in between stored its own, current rendering. Neither the
answer of a read nor ``last_update_time`` changes, so no cache is told.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from luna_handlers.db.database import Database
from luna_handlers.db.listing import StatementsByShape, id_column
from luna_handlers.db.prepared import Prepared, Statement

#: Rows read, rendered and written back per round trip.
BATCH = 1000

Render = Callable[[str], str | None]  # stored policies -> their rendering (None: corrupted)


@dataclass(frozen=True)
class Rerendered:
    """What one table's pass did: rows rendered anew (not those written meanwhile: they
    hold their own), and rows whose policies do not render (corrupted: reads answer them
    as before)."""

    rendered: int
    corrupted: int


def _stale(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    """A batch of stale rows: the first (shape ``()``: Oracle reads '' as NULL, so no id
    would follow an "after" of '') or those ``after`` an id."""
    key = id_column(table)
    made_with = table.c.rendered_with
    after = [key > sa.bindparam("after")] if "after" in shape else []
    return Prepared(lambda _dialect: (
        sa.select(key.label("object_id"), table.c.policies, table.c.last_update_time)
        .where(table.c.policies.is_not(None), *after,
               sa.or_(made_with.is_(None), made_with != sa.bindparam("made_with")))
        .order_by(key).limit(sa.bindparam("batch"))))


def _store(table: sa.Table, _shape: tuple[str, ...]) -> Prepared:
    key = id_column(table)

    def build(dialect: str) -> Statement:
        if dialect != "postgresql":
            return (sa.update(table).where(key == sa.bindparam("object_id"),
                                           table.c.last_update_time == sa.bindparam("seen"))
                    .values(rendered_policies=sa.bindparam("json"),
                            rendered_with=sa.bindparam("made_with")).returning(key))
        batch = sa.func.unnest(sa.bindparam("ids", type_=ARRAY(sa.String)),
                               sa.bindparam("jsons", type_=ARRAY(sa.Text)),
                               sa.bindparam("seen", type_=ARRAY(sa.TIMESTAMP))
                               ).table_valued("id", "json", "seen").render_derived()
        return (sa.update(table).where(key == batch.c.id,
                                       table.c.last_update_time == batch.c.seen)
                .values(rendered_policies=batch.c.json,
                        rendered_with=sa.bindparam("made_with")).returning(key))
    return Prepared(build)


STALE = StatementsByShape(_stale)
STORE = StatementsByShape(_store)


async def rerender(database: Database, table: sa.Table, render: Render, made_with: str,
                   batch: int = BATCH) -> Rerendered:
    """Render anew every row of ``table`` not rendered ``made_with``; see the module."""
    store = STORE(table, ())
    rendered = corrupted = 0
    params: dict[str, Any] = {"made_with": made_with, "batch": batch}
    stale = STALE(table, ())
    while True:
        async with database.read() as session:
            rows = await session.rows(stale, params)
        if not rows:
            return Rerendered(rendered, corrupted)
        done = [{"object_id": row["object_id"], "json": json, "seen": row["last_update_time"]}
                for row in rows if (json := render(row["policies"])) is not None]
        corrupted += len(rows) - len(done)
        async with database.write() as session:
            if database.dialect_name != "postgresql":
                for values in done:
                    rendered += len(await session.rows(store, values | {"made_with": made_with}))
            elif done:
                rendered += len(await session.rows(store, {
                    "ids": [d["object_id"] for d in done], "jsons": [d["json"] for d in done],
                    "seen": [d["seen"] for d in done], "made_with": made_with}))
        params["after"] = rows[-1]["object_id"]
        stale = STALE(table, ("after",))
