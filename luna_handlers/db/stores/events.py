"""The event store: events, and the one atomic write of everything a processed image
stores (:meth:`EventStore.saveEvents`).

On PostgreSQL the samples and events of that write are ONE statement (the events' columns
as arrays expanded by ``unnest``, the samples' insert as a CTE of it), whatever their
number: a request's write is BEGIN, the faces (if any: their lists' check, the faces,
their links, whatever their number), that statement, COMMIT."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from luna_handlers.db.listing import StatementsByShape, like_contains
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.schema.sqltypes import utc_now
from luna_handlers.db.schema.store_models import Event
from luna_handlers.db.store_records import EventFilters, EventRecord, EventWrite, dump_json
from luna_handlers.db.stores.common import SCOPES, Store, match
from luna_handlers.db.stores.faces import insert_faces
from luna_handlers.db.stores.samples import (
    insert_samples,
    sample_arrays,
    samples_insert,
    unbounded,
)

EVENT: sa.Table = Event.__table__  # type: ignore[assignment]  # declarative gives a Table

SHOWN = [column for column in EVENT.c if column.name != "descriptor"]
WRITTEN = ("event_id", "account_id", "handler_id", "source", "tags", "track_id", "external_id",
           "user_data", "face_id", "detections", "matches", "top_match", "descriptor",
           "descriptor_version")


def _insert(_dialect: str) -> Any:
    values: dict[str, Any] = {column: sa.bindparam(f"v_{column}") for column in WRITTEN}
    # No event time given: the server's clock, as for every other object.
    created = sa.func.coalesce(sa.bindparam("v_create_time", type_=sa.TIMESTAMP), utc_now())
    values["create_time"] = created
    values["end_time"] = sa.func.coalesce(sa.bindparam("v_end_time", type_=sa.TIMESTAMP),
                                          created)
    return sa.insert(EVENT).values(values)


INSERT_EVENT = Prepared(_insert)


def _rows_insert(_dialect: str) -> sa.Insert:
    # PostgreSQL only: every event of the write from arrays (``e_<column>``), with the
    # samples' insert (samples.samples_insert) as a CTE: one statement, one round trip.
    arrays = [column for column in WRITTEN if column != "account_id"] + \
        ["create_time", "end_time"]
    rows = sa.func.unnest(*(sa.bindparam(f"e_{column}", type_=ARRAY(unbounded(EVENT.c[column])))
                            for column in arrays)).table_valued(*arrays).render_derived()
    created = sa.func.coalesce(rows.c.create_time, utc_now())
    values = [sa.bindparam("e_account_id", type_=EVENT.c.account_id.type) if column == "account_id"
              else rows.c[column] for column in WRITTEN]
    select = sa.select(*values, created, sa.func.coalesce(rows.c.end_time, created))
    return sa.insert(EVENT).from_select([*WRITTEN, "create_time", "end_time"], select) \
        .add_cte(samples_insert().cte("samples"))


EVENT_ROWS = Prepared(_rows_insert)


def _get_event(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(*SHOWN).where(*match(EVENT, scoped)))


GET_EVENT = {scoped: _get_event(scoped) for scoped in SCOPES}

# The filters, in a fixed order; ``tags`` is one LIKE per tag (``tag_0``, ``tag_1``...):
# a tag is found as an element of the stored JSON array (tags come from a comma list, so
# none holds a comma, the only way an encoded tag could span two elements).
FILTERS = ("account_id", "handler_id", "create_time__gte", "create_time__lt", "source",
           "face_id")


def _clause(name: str) -> sa.ColumnElement[bool]:
    if name == "create_time__gte":
        return EVENT.c.create_time >= sa.bindparam(name)
    if name == "create_time__lt":
        return EVENT.c.create_time < sa.bindparam(name)
    if name.startswith("tag_"):
        return EVENT.c.tags.like(sa.bindparam(name), escape="/")
    return EVENT.c[name] == sa.bindparam(name)


def _page(_table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    return Prepared(lambda _dialect: (
        sa.select(*SHOWN).where(*map(_clause, shape))
        .order_by(EVENT.c.create_time.desc(), EVENT.c.event_id)
        .limit(sa.bindparam("page_limit")).offset(sa.bindparam("page_offset"))))


def _count(_table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    return Prepared(lambda _dialect: sa.select(sa.func.count().label("total"))
                    .select_from(EVENT).where(*map(_clause, shape)))


PAGE = StatementsByShape(_page)
COUNT = StatementsByShape(_count)


def utc_naive(value: datetime | None) -> datetime | None:
    """A time as the naive UTC the columns hold."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _filter_params(filters: EventFilters) -> dict[str, Any]:
    params: dict[str, Any] = {
        "account_id": filters.account_id, "handler_id": filters.handler_id,
        "create_time__gte": utc_naive(filters.create_time__gte),
        "create_time__lt": utc_naive(filters.create_time__lt), "source": filters.source,
        "face_id": filters.face_id}
    params = {name: value for name, value in params.items() if value is not None}
    for index, tag in enumerate(dict.fromkeys(filters.tags or ())):
        params[f"tag_{index}"] = like_contains(orjson.dumps(tag).decode())
    return params


def _event(row: Row) -> EventRecord:
    return EventRecord(
        event_id=row["event_id"], account_id=row["account_id"], handler_id=row["handler_id"],
        source=row["source"], tags=tuple(orjson.loads(row["tags"] or "[]")),
        track_id=row["track_id"], external_id=row["external_id"],
        user_data=row["user_data"] or "", create_time=row["create_time"],
        end_time=row["end_time"], face_id=row["face_id"],
        detections=orjson.loads(row["detections"] or "[]"),
        matches=None if row["matches"] is None else orjson.loads(row["matches"]),
        top_match=None if row["top_match"] is None else orjson.loads(row["top_match"]),
        descriptor_version=row["descriptor_version"])


def _event_params(account_id: str, event: EventWrite) -> dict[str, Any]:
    return {
        "v_event_id": event.event_id, "v_account_id": account_id,
        "v_handler_id": event.handler_id, "v_source": event.source,
        "v_tags": orjson.dumps(list(event.tags)).decode(), "v_track_id": event.track_id,
        "v_external_id": event.external_id, "v_user_data": event.user_data,
        "v_create_time": utc_naive(event.create_time), "v_end_time": utc_naive(event.end_time),
        "v_face_id": None if event.face is None else event.face.face_id,
        "v_detections": dump_json(list(event.detections)),
        "v_matches": None if event.matches is None else dump_json(list(event.matches)),
        "v_top_match": dump_json(event.top_match), "v_descriptor": event.descriptor,
        "v_descriptor_version": event.descriptor_version}


def _rows_params(account_id: str, events: Sequence[EventWrite]) -> dict[str, Any]:
    stored = [_event_params(account_id, event) for event in events if event.store_event]
    params: dict[str, Any] = {"e_account_id": account_id}
    for column in (*WRITTEN, "create_time", "end_time"):
        if column != "account_id":
            params[f"e_{column}"] = [event[f"v_{column}"] for event in stored]
    samples = [sample for event in events for sample in event.samples]
    return params | sample_arrays(account_id, samples)


class EventStore(Store):
    """Reads of events, and the atomic write of processed images."""

    async def saveEvents(self, accountId: str, events: Sequence[EventWrite]) -> None:
        """Store every event with its face (and that face's list links) and samples in ONE
        transaction: all or nothing. ``ListNotFound`` when a face's list is not in the
        account; ``DatabaseUnavailable`` (nothing stored) or ``DatabaseOutcomeUnknown``
        (the COMMIT was lost on its way) on a connection lost meanwhile."""
        async with self.database.transaction() as session:
            await insert_faces(session, self.database.dialect_name, accountId, [
                (event.face, event.event_id if event.store_event else None)
                for event in events if event.face is not None])
            if self.database.dialect_name == "postgresql":
                await session.rows(EVENT_ROWS, _rows_params(accountId, events))
                return
            for event in events:
                await insert_samples(session, accountId, event.samples)
                if event.store_event:
                    await session.rows(INSERT_EVENT, _event_params(accountId, event))

    async def getEvent(self, eventId: str, accountId: str | None = None) -> EventRecord | None:
        """The event, or None when it does not exist (in this account)."""
        row = await self._one(GET_EVENT, eventId, accountId)
        return None if row is None else _event(row)

    async def getEvents(self, filters: EventFilters, page: int = 1,
                        pageSize: int = 10) -> list[EventRecord]:
        """One page of events, newest first."""
        params = _filter_params(filters)
        rows = await self._read(PAGE(EVENT, tuple(params)), params | {
            "page_limit": pageSize, "page_offset": (page - 1) * pageSize})
        return [_event(row) for row in rows]

    async def countEvents(self, filters: EventFilters) -> int:
        """How many events match the filters."""
        params = _filter_params(filters)
        return int((await self._read(COUNT(EVENT, tuple(params)), params))[0]["total"])
