"""Table models ``Handler`` and ``Verifier`` (also importable where the LUNA docs place them:
``luna_handlers.db.handlers_db_tools.models.handlers_models``).

The same metadata serves PostgreSQL and Oracle: ``policies`` is ``TEXT`` on PostgreSQL and
``CLOB`` on Oracle, timestamps are naive UTC ``TIMESTAMP`` columns filled by the database
(:func:`luna_handlers.db.schema.sqltypes.utc_now`), and ``is_dynamic`` is a boolean that becomes a
``SMALLINT`` with a check constraint where the server has no native boolean (Oracle < 23).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from luna_handlers.db.schema.sqltypes import utc_now

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Oracle needs them under 128 chars)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    @classmethod
    def getColumnNames(cls) -> list[str]:
        """Get all column names of the table, in order as in the database."""
        return [column.name for column in cls.__table__.columns]


class _Common:
    """Columns every policy set has; ``sort_order`` keeps them where LUNA has them."""

    account_id: Mapped[str] = mapped_column(sa.String(36), nullable=False, sort_order=1)
    """uuid4 of the account the object belongs to"""
    create_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now(), sort_order=2)
    """date and time of creation (UTC)"""
    last_update_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now(), sort_order=3)
    """date and time of the last change (UTC)"""
    description: Mapped[str | None] = mapped_column(sa.String(128), index=True, sort_order=4)
    """a client description"""
    policies: Mapped[str | None] = mapped_column(sa.Text, sort_order=5)
    """json with policies (NULL for dynamic handlers)"""


class Handler(_Common, Base):
    """Database table model for handlers."""

    __tablename__ = "handler"

    handler_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, sort_order=0)
    """handler id, uuid4"""
    is_dynamic: Mapped[bool] = mapped_column(
        sa.Boolean(create_constraint=True, name="is_dynamic_bool"), nullable=False,
        server_default=sa.false(), sort_order=6)
    """whether a handler is dynamic"""

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


class Verifier(_Common, Base):
    """Database table model for verifiers."""

    __tablename__ = "verifier"

    verifier_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, sort_order=0)
    """verifier id, uuid4"""
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False,
                                         server_default=sa.text("1"), sort_order=6)
    """verifier version: 1 on creation, +1 on every replace"""

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


__all__ = ["Base", "Handler", "Verifier"]
