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


def _list_indexes(table: str) -> tuple[sa.Index, ...]:
    """The indexes of list pages in their order (newest first, the id breaking ties): one by
    account, one unscoped (time windows, deep pages of root access). On PostgreSQL the
    unscoped one carries the description, for the walk of a search (migration 0007); the
    grams indexes (and, between 0004 and 0007, a trigram index) are PostgreSQL's and not
    declared here."""
    return (sa.Index(f"ix_{table}_account_time", "account_id", sa.text("create_time DESC"),
                     f"{table}_id"),
            sa.Index(f"ix_{table}_time", sa.text("create_time DESC"), f"{table}_id",
                     postgresql_include=["description"]))


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
    rendered_policies: Mapped[str | None] = mapped_column(sa.Text, sort_order=7)
    """the policies as returned (defaults filled in), rendered on write (migration 0006)"""
    rendered_with: Mapped[str | None] = mapped_column(sa.String(32), sort_order=8)
    """what ``rendered_policies`` was rendered with; used only while it is the running one"""


class Handler(_Common, Base):
    """Database table model for handlers."""

    __tablename__ = "handler"

    handler_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, sort_order=0)
    """handler id, uuid4"""
    is_dynamic: Mapped[bool] = mapped_column(
        sa.Boolean(create_constraint=True, name="is_dynamic_bool"), nullable=False,
        server_default=sa.false(), sort_order=6)
    """whether a handler is dynamic"""

    __table_args__ = _list_indexes("handler")


class Verifier(_Common, Base):
    """Database table model for verifiers."""

    __tablename__ = "verifier"

    verifier_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, sort_order=0)
    """verifier id, uuid4"""
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False,
                                         server_default=sa.text("1"), sort_order=6)
    """verifier version: 1 on creation, +1 on every replace"""

    __table_args__ = _list_indexes("verifier")


class HandlerCount(Base):
    """Handlers per account, exact: a few rows per account whose ``n`` sum to its count.

    Written in the statement that inserts or deletes a handler (PostgreSQL only; Oracle
    counts with ``count(*)`` and has no such table), on the stripe ``pg_backend_pid() % 16``
    so that concurrent inserts into one account do not all wait for one row lock.
    """

    __tablename__ = "handler_count"

    account_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    stripe: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


#: Stripes per account of ``handler_count``: more than the connections of a pool rarely help.
COUNT_STRIPES = 16
#: Fills ``handler_count`` from the table (migration 0004, the bench's bulk load): one row
#: per account on stripe 0. Run it under a lock that keeps writers out.
HANDLER_COUNT_BACKFILL = ("INSERT INTO handler_count (account_id, stripe, n) "
                          "SELECT account_id, 0, count(*) FROM handler GROUP BY account_id")

__all__ = ["COUNT_STRIPES", "HANDLER_COUNT_BACKFILL", "Base", "Handler", "HandlerCount",
           "Verifier"]
