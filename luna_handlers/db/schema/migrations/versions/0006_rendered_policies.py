"""Policies rendered on write: ``rendered_policies`` and ``rendered_with`` on both tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A list page used to render every item's policies (fill in every default: a pydantic validate
and dump per item, most of a page's CPU), kept in a memo whose size bounded nothing at a
million handlers. The writes now store the rendering beside the policies, in the same INSERT
or UPDATE, and reads splice it (see :class:`~luna_handlers.db.records.RenderedPolicies`).

The migration only adds the columns: its rows keep NULL, rendered on every read (correct
but not flat), until ``luna-handlers db upgrade`` renders them after migrating
(:mod:`luna_handlers.db.stores.rendering`, which also renders anew the rows of another
version's policy models), or they are next written. A row whose policies do not render (a
corrupted row) keeps NULL, and reads answer it as before (``HandlerCorrupted``). ``CLOB`` on
Oracle (``sa.Text``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"

COLUMNS = ("rendered_policies", "rendered_with")


def upgrade() -> None:
    """Add the columns to ``handler`` and ``verifier``."""
    for table in ("handler", "verifier"):
        op.add_column(table, sa.Column("rendered_policies", sa.Text, nullable=True))
        op.add_column(table, sa.Column("rendered_with", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop the columns (the policies themselves were never changed)."""
    for table in ("verifier", "handler"):
        for column in reversed(COLUMNS):
            op.drop_column(table, column)
