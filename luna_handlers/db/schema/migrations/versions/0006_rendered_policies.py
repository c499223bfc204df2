"""Policies rendered on write: ``rendered_policies`` and ``rendered_with`` on both tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A list page used to render every item's policies (fill in every default: a pydantic validate
and dump per item, most of a page's CPU), kept in a memo whose size bounded nothing at a
million handlers. The writes now store the rendering beside the policies, in the same INSERT
or UPDATE, and reads splice it (see :class:`~luna_handlers.db.records.RenderedPolicies`).

The upgrade fills both columns for the rows already stored, in batches by id, rendering each
row as a read would. A row whose policies do not render (a corrupted row) keeps NULL, and
reads answer it as before (``HandlerCorrupted``). The offline script only adds the columns:
its rows keep NULL and are rendered on every read, correct but not flat, until they are
next written. ``CLOB`` on Oracle (``sa.Text``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"

COLUMNS = ("rendered_policies", "rendered_with")
#: Rows read, rendered and written back per round trip of the backfill.
BATCH = 1000


def upgrade() -> None:
    """Add the columns to ``handler`` and ``verifier``; fill them for existing rows."""
    for table in ("handler", "verifier"):
        op.add_column(table, sa.Column("rendered_policies", sa.Text, nullable=True))
        op.add_column(table, sa.Column("rendered_with", sa.String(32), nullable=True))
    if op.get_context().as_sql:
        return
    # The renderings are the application's (its policy models); imported here, where they
    # are used, so that loading the migration scripts does not load the models.
    from luna_handlers.app.policies import (
        HANDLER_RENDERING,
        VERIFIER_RENDERING,
        normalise_handler_policies,
        normalise_verifier_policies,
    )
    _backfill("handler", normalise_handler_policies, HANDLER_RENDERING)
    _backfill("verifier", normalise_verifier_policies, VERIFIER_RENDERING)


def _render(text: str, normalise: Callable[[dict[str, Any]], dict[str, Any]]) -> str | None:
    try:
        return orjson.dumps(normalise(orjson.loads(text))).decode()
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None  # corrupted: reads keep answering it as corrupted


def _backfill(name: str, normalise: Callable[[dict[str, Any]], dict[str, Any]],
              made_with: str) -> None:
    # Typed as the models type them: the rendering binds as a string, as the service's own
    # writes bind it (on Oracle never a temporary CLOB).
    table = sa.table(name, sa.column(f"{name}_id", sa.String), sa.column("policies", sa.Text),
                     sa.column("rendered_policies", sa.Text),
                     sa.column("rendered_with", sa.String))
    key = table.c[f"{name}_id"]
    bind = op.get_bind()
    update = (sa.update(table).where(key == sa.bindparam("b_id"))
              .values(rendered_policies=sa.bindparam("b_json"),
                      rendered_with=sa.bindparam("b_with")))
    last: str | None = None  # not '': Oracle reads '' as NULL
    while True:
        batch = sa.select(key, table.c.policies).where(table.c.policies.is_not(None))
        if last is not None:
            batch = batch.where(key > last)
        rows = bind.execute(batch.order_by(key).limit(BATCH)).all()
        if not rows:
            return
        done = [{"b_id": row[0], "b_json": rendered, "b_with": made_with}
                for row in rows if (rendered := _render(row[1], normalise)) is not None]
        if done:
            bind.execute(update, done)
        last = rows[-1][0]


def downgrade() -> None:
    """Drop the columns (the policies themselves were never changed)."""
    for table in ("verifier", "handler"):
        for column in reversed(COLUMNS):
            op.drop_column(table, column)
