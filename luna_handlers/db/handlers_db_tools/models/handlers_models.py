"""Table models ``Handler`` and ``Verifier``, importable where the LUNA docs place them.

The same metadata serves PostgreSQL and Oracle: ``policies`` is ``TEXT`` on PostgreSQL and
``CLOB`` on Oracle, timestamps are naive UTC ``TIMESTAMP`` columns filled by the database
(:func:`luna_handlers.db.sqltypes.utc_now`), and ``is_dynamic`` is a boolean that becomes a
``SMALLINT`` with a check constraint where the server has no native boolean (Oracle < 23).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from luna_handlers.db.sqltypes import utc_now

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


class Handler(Base):
    """Database table model for handlers."""

    __tablename__ = "handler"

    handler_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    """handler id, uuid4"""
    account_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    """account uuid4 to which this handler belongs"""
    create_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now())
    """date and time of creation of the handler (UTC)"""
    last_update_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now())
    """date and time of the last change of the handler (UTC)"""
    description: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    """a client handler description"""
    policies: Mapped[str | None] = mapped_column(sa.Text)
    """json with policies; NULL for dynamic handlers"""
    is_dynamic: Mapped[bool] = mapped_column(
        sa.Boolean(create_constraint=True, name="is_dynamic_bool"), nullable=False,
        server_default=sa.false())
    """whether a handler is dynamic"""

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


class Verifier(Base):
    """Database table model for verifiers."""

    __tablename__ = "verifier"

    verifier_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    """verifier id, uuid4"""
    account_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    """account id"""
    create_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now())
    """verifier creation time (UTC)"""
    last_update_time: Mapped[datetime] = mapped_column(
        sa.TIMESTAMP, nullable=False, server_default=utc_now())
    """verifier last update time (UTC)"""
    description: Mapped[str | None] = mapped_column(sa.String(128), index=True)
    """verifier description"""
    policies: Mapped[str | None] = mapped_column(sa.Text)
    """verifier policies (json)"""
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, server_default=sa.text("1"))
    """verifier version: 1 on creation, +1 on every replace"""

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


__all__ = ["Base", "Handler", "Verifier"]
