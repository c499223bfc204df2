"""Table models of the stores: ``List``, ``Face``, ``ListFace``, ``Event``, ``Sample``.

Same conventions as :mod:`luna_handlers.db.schema.models` (one metadata for both dialects):
binary data (descriptors, images) is ``BYTEA`` on PostgreSQL and ``BLOB`` on Oracle; JSON is
text (``TEXT``/``CLOB``), except ``event.tags``, a bounded string so that it can be filtered
on (a CLOB cannot be compared on Oracle). Ids are plain references between faces, events and
samples (an event outlives the face it stored, as in LUNA); only list links cascade.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from luna_handlers.db.schema.models import Base
from luna_handlers.db.schema.sqltypes import utc_now

ID = sa.String(36)
SHORT = sa.String(128)


def _created() -> Mapped[datetime]:
    return mapped_column(sa.TIMESTAMP, nullable=False, server_default=utc_now())


class List(Base):
    """A list of faces."""

    __tablename__ = "list"

    list_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, nullable=False)
    description: Mapped[str | None] = mapped_column(SHORT)
    create_time: Mapped[datetime] = _created()
    last_update_time: Mapped[datetime] = _created()

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


class Face(Base):
    """A face: its descriptor (with the engine's version) and what a client attached."""

    __tablename__ = "face"

    face_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, nullable=False)
    event_id: Mapped[str | None] = mapped_column(ID)
    external_id: Mapped[str | None] = mapped_column(SHORT)
    user_data: Mapped[str | None] = mapped_column(SHORT)
    create_time: Mapped[datetime] = _created()
    avatar_sample_id: Mapped[str | None] = mapped_column(ID)
    descriptor: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    descriptor_version: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index(None, "account_id", "create_time"),)


class ListFace(Base):
    """A face in a list; gone with either."""

    __tablename__ = "list_face"

    list_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("list.list_id", ondelete="CASCADE", name="fk_list_face_list"),
        primary_key=True)
    face_id: Mapped[str] = mapped_column(
        ID, sa.ForeignKey("face.face_id", ondelete="CASCADE", name="fk_list_face_face"),
        primary_key=True)
    link_time: Mapped[datetime] = _created()

    __table_args__ = (sa.Index(None, "face_id"),)


class Event(Base):
    """An event: one processed face (or image) of a handler."""

    __tablename__ = "event"

    event_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, nullable=False)
    handler_id: Mapped[str] = mapped_column(ID, nullable=False)
    source: Mapped[str | None] = mapped_column(SHORT)
    tags: Mapped[str | None] = mapped_column(sa.String(2000))
    """JSON array of strings"""
    track_id: Mapped[str | None] = mapped_column(SHORT)
    external_id: Mapped[str | None] = mapped_column(SHORT)
    user_data: Mapped[str | None] = mapped_column(SHORT)
    create_time: Mapped[datetime] = _created()
    end_time: Mapped[datetime] = _created()
    face_id: Mapped[str | None] = mapped_column(ID)
    detections: Mapped[str | None] = mapped_column(sa.Text)
    """JSON: the detections with rect, landmarks5, score and sample ids"""
    matches: Mapped[str | None] = mapped_column(sa.Text)
    top_match: Mapped[str | None] = mapped_column(sa.Text)
    descriptor: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    descriptor_version: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index(None, "account_id", "create_time"),
                      sa.Index(None, "account_id", "handler_id", "create_time"),
                      sa.Index(None, "face_id"))


class Sample(Base):
    """A face sample image (JPEG)."""

    __tablename__ = "sample"

    sample_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    image: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    create_time: Mapped[datetime] = _created()


__all__ = ["Event", "Face", "List", "ListFace", "Sample"]
