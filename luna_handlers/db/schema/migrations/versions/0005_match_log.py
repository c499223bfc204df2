"""The list membership log that keeps each instance's matching index coherent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

PostgreSQL only: ``list_face_log``, ``list_face_log_state`` and the triggers on
``list_face`` and ``face`` that fill the log (see :mod:`luna_handlers.db.schema.match_log`).
Oracle: nothing; it has no matching index (matching by list stays the SQL path there), so
the revision only moves the version.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

from luna_handlers.db.schema.match_log import DROP_TRIGGERS, INITIAL_STATE, LOG, STATE, TRIGGERS

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    """The log, its state row and the triggers (PostgreSQL)."""
    if op.get_context().dialect.name != "postgresql":
        return
    for table in (LOG, STATE):
        op.execute(CreateTable(table))
    for index in LOG.indexes:
        op.execute(CreateIndex(index))
    op.execute(INITIAL_STATE)
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Back to 0004 (PostgreSQL: the triggers and tables go)."""
    if op.get_context().dialect.name != "postgresql":
        return
    for statement in DROP_TRIGGERS:
        op.execute(statement)
    op.drop_table(STATE.name)
    op.drop_table(LOG.name)
