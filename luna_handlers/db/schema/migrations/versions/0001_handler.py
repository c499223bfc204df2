"""Create the handler table.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from luna_handlers.db.schema.sqltypes import utc_now

revision: str = "0001"
down_revision: str | None = None


def upgrade() -> None:
    """Create the handler table and its indexes."""
    op.create_table(
        "handler",
        sa.Column("handler_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("create_time", sa.TIMESTAMP, nullable=False, server_default=utc_now()),
        sa.Column("last_update_time", sa.TIMESTAMP, nullable=False, server_default=utc_now()),
        sa.Column("description", sa.String(128)),
        sa.Column("policies", sa.Text),
        sa.Column("is_dynamic", sa.Boolean(create_constraint=True, name="is_dynamic_bool"),
                  nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("handler_id", name="pk_handler"),
    )
    op.create_index("ix_handler_account_id_create_time", "handler",
                    ["account_id", "create_time"])
    op.create_index("ix_handler_description", "handler", ["description"])


def downgrade() -> None:
    """Drop the handler table."""
    op.drop_index("ix_handler_description", "handler")
    op.drop_index("ix_handler_account_id_create_time", "handler")
    op.drop_table("handler")
