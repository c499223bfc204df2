"""Create the verifier table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from luna_handlers.db.schema.sqltypes import utc_now

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    """Create the verifier table and its indexes."""
    op.create_table(
        "verifier",
        sa.Column("verifier_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("create_time", sa.TIMESTAMP, nullable=False, server_default=utc_now()),
        sa.Column("last_update_time", sa.TIMESTAMP, nullable=False, server_default=utc_now()),
        sa.Column("description", sa.String(128)),
        sa.Column("policies", sa.Text),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("verifier_id", name="pk_verifier"),
    )
    op.create_index("ix_verifier_account_id_create_time", "verifier",
                    ["account_id", "create_time"])
    op.create_index("ix_verifier_description", "verifier", ["description"])


def downgrade() -> None:
    """Drop the verifier table."""
    op.drop_index("ix_verifier_description", "verifier")
    op.drop_index("ix_verifier_account_id_create_time", "verifier")
    op.drop_table("verifier")
