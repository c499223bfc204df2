"""Create the stores: list, face, list_face, event, sample.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

from luna_handlers.db.schema.sqltypes import utc_now

revision: str = "0003"
down_revision: str | None = "0002"

INDEXES = {
    "list": [["account_id", "create_time"]],
    "face": [["account_id", "create_time"]],
    "list_face": [["face_id"]],
    "event": [["account_id", "create_time"], ["account_id", "handler_id", "create_time"],
              ["face_id"]],
}


def _id(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(36), nullable=nullable)


def _time(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.TIMESTAMP, nullable=False, server_default=utc_now())


def _index_name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    """Create the tables of the stores and their indexes."""
    op.create_table(
        "list",
        _id("list_id"), _id("account_id"), sa.Column("description", sa.String(128)),
        _time("create_time"), _time("last_update_time"),
        sa.PrimaryKeyConstraint("list_id", name="pk_list"),
    )
    op.create_table(
        "face",
        _id("face_id"), _id("account_id"), _id("event_id", nullable=True),
        sa.Column("external_id", sa.String(128)), sa.Column("user_data", sa.String(128)),
        _time("create_time"), _id("avatar_sample_id", nullable=True),
        sa.Column("descriptor", sa.LargeBinary), sa.Column("descriptor_version", sa.Integer),
        sa.PrimaryKeyConstraint("face_id", name="pk_face"),
    )
    op.create_table(
        "list_face",
        _id("list_id"), _id("face_id"), _time("link_time"),
        sa.ForeignKeyConstraint(["list_id"], ["list.list_id"], name="fk_list_face_list",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["face_id"], ["face.face_id"], name="fk_list_face_face",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("list_id", "face_id", name="pk_list_face"),
    )
    op.create_table(
        "event",
        _id("event_id"), _id("account_id"), _id("handler_id"),
        sa.Column("source", sa.String(128)), sa.Column("tags", sa.String(2000)),
        sa.Column("track_id", sa.String(128)), sa.Column("external_id", sa.String(128)),
        sa.Column("user_data", sa.String(128)), _time("create_time"), _time("end_time"),
        _id("face_id", nullable=True), sa.Column("detections", sa.Text),
        sa.Column("matches", sa.Text), sa.Column("top_match", sa.Text),
        sa.Column("descriptor", sa.LargeBinary), sa.Column("descriptor_version", sa.Integer),
        sa.PrimaryKeyConstraint("event_id", name="pk_event"),
    )
    op.create_table(
        "sample",
        _id("sample_id"), _id("account_id"), sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("image", sa.LargeBinary, nullable=False), _time("create_time"),
        sa.PrimaryKeyConstraint("sample_id", name="pk_sample"),
    )
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.create_index(_index_name(table, columns), table, columns)


def downgrade() -> None:
    """Drop the tables of the stores."""
    for table, indexes in INDEXES.items():
        for columns in indexes:
            op.drop_index(_index_name(table, columns), table)
    for table in ("sample", "event", "list_face", "face", "list"):
        op.drop_table(table)
