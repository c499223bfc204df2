"""Events, the atomic saveEvents, samples and matching against a real database (PostgreSQL;
Oracle when one is given): exact top-k against numpy on the same data, filters, isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from luna_handlers.db import (
    DBContext,
    EventFilters,
    EventMatchFilters,
    EventWrite,
    FaceMatchFilters,
    FaceWrite,
    SampleWrite,
)
from luna_handlers.db.stores.matching import top_k
from luna_handlers.errors import DatabaseFailure, ListNotFound

DIM = 128


def account() -> str:
    return str(uuid.uuid4())


def vectors(count: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).standard_normal((count, DIM)).astype("<f4")
    normalised: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normalised.astype("<f4")


def detection(sample_id: str) -> dict[str, object]:
    return {"rect": {"x": 1, "y": 2, "width": 30, "height": 40}, "score": 0.98,
            "landmarks5": [[1, 2]] * 5, "sample_id": sample_id}


async def test_save_events_stores_everything(db_context: DBContext) -> None:
    acc, handler = account(), str(uuid.uuid4())
    list_id = await db_context.createList(acc)
    warp, crop = SampleWrite("face_warp", b"warp"), SampleWrite("face_crop", b"crop")
    face = FaceWrite(descriptor=vectors(1, 1)[0].tobytes(), descriptor_version=1,
                     list_ids=(list_id,), avatar_sample_id=warp.sample_id)
    when = datetime(2026, 5, 1, 12, tzinfo=UTC)
    stored = EventWrite(handler_id=handler, detections=[detection(warp.sample_id)],
                        source="cam", tags=("a", "b c"), user_data="u",
                        create_time=when, matches=[{"label": "l", "candidates": []}],
                        top_match={"face_id": "f", "similarity": 0.5},
                        descriptor=face.descriptor, descriptor_version=1, face=face,
                        samples=(warp, crop))
    no_event = EventWrite(handler_id=handler, store_event=False,
                          face=FaceWrite(descriptor=None, descriptor_version=None),
                          samples=(SampleWrite("face_warp", b"alone"),))
    await db_context.saveEvents(acc, [stored, no_event])
    event = await db_context.getEvent(stored.event_id, acc)
    assert event is not None
    assert (event.handler_id, event.source, event.tags, event.user_data, event.face_id,
            event.detections, event.matches, event.top_match, event.descriptor_version) == (
        handler, "cam", ("a", "b c"), "u", face.face_id, [detection(warp.sample_id)],
        [{"label": "l", "candidates": []}], {"face_id": "f", "similarity": 0.5}, 1)
    assert event.create_time == event.end_time == datetime(2026, 5, 1, 12)
    got_face = await db_context.getFace(face.face_id, acc)
    assert got_face is not None and (got_face.event_id, got_face.lists) == (
        stored.event_id, (list_id,))
    assert await db_context.getSample(crop.sample_id, acc) == b"crop"
    assert await db_context.getEvent(no_event.event_id) is None
    alone = await db_context.getFace(no_event.face.face_id, acc)  # type: ignore[union-attr]
    assert alone is not None and alone.event_id is None
    assert await db_context.getSample(no_event.samples[0].sample_id, acc) == b"alone"
    lookup = await db_context.getEventDescriptors(acc, [stored.event_id, no_event.event_id])
    assert lookup.found == {stored.event_id: (face.descriptor, 1)}
    assert lookup.missing == (no_event.event_id,)


async def test_save_events_is_all_or_nothing(db_context: DBContext) -> None:
    acc = account()
    good = EventWrite(handler_id=str(uuid.uuid4()), samples=(SampleWrite("face_warp", b"1"),))
    bad = EventWrite(handler_id=str(uuid.uuid4()), face=FaceWrite(
        descriptor=None, descriptor_version=None, list_ids=(str(uuid.uuid4()),)))
    with pytest.raises(ListNotFound):
        await db_context.saveEvents(acc, [good, bad])
    assert await db_context.getEvent(good.event_id) is None
    assert await db_context.getSample(good.samples[0].sample_id) is None
    assert await db_context.countEvents(EventFilters(account_id=acc)) == 0


async def test_save_events_many_in_one_write(db_context: DBContext) -> None:
    """A write of several events (one statement on PostgreSQL): each row with its own
    values, server times where none were given, samples of events not stored kept."""
    acc, handler = account(), str(uuid.uuid4())
    when = datetime(2026, 5, 2, 8, tzinfo=UTC)
    events = [EventWrite(handler_id=handler, source=f"cam{n}", tags=(f"t{n}",),
                         create_time=when + timedelta(minutes=n) if n % 2 else None,
                         end_time=when + timedelta(minutes=n + 1) if n == 1 else None,
                         descriptor=vectors(4, 7)[n].tobytes() if n < 2 else None,
                         descriptor_version=1 if n < 2 else None,
                         store_event=n != 3,
                         samples=tuple(SampleWrite("face_warp", f"{n}.{k}".encode())
                                       for k in range(n % 3)))
              for n in range(4)]
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    await db_context.saveEvents(acc, events)
    for n, written in enumerate(events):
        got = await db_context.getEvent(written.event_id, acc)
        for k, sample in enumerate(written.samples):
            assert await db_context.getSample(sample.sample_id, acc) == f"{n}.{k}".encode()
        if n == 3:
            assert got is None
            continue
        assert got is not None
        assert (got.source, got.tags, got.descriptor_version) == (
            f"cam{n}", (f"t{n}",), 1 if n < 2 else None)
        if n % 2:
            assert got.create_time == (when + timedelta(minutes=n)).replace(tzinfo=None)
        else:
            assert got.create_time > before  # the server's clock
        expected_end = when + timedelta(minutes=2) if n == 1 else None
        assert got.end_time == (got.create_time if expected_end is None
                                else expected_end.replace(tzinfo=None))
    lookup = await db_context.getEventDescriptors(acc, [e.event_id for e in events[:2]])
    assert lookup.found == {e.event_id: (e.descriptor, 1) for e in events[:2]}


async def test_save_events_stores_many_faces_and_their_links(db_context: DBContext) -> None:
    """Faces of several events (three statements on PostgreSQL, whatever their number),
    each with its own values and lists; a list named twice links once; one unknown list
    among them stores nothing, and is named."""
    acc, handler = account(), str(uuid.uuid4())
    first, second = await db_context.createList(acc), await db_context.createList(acc)
    matrix = vectors(4, 8)
    lists = [(first,), (first, second, first), (), (second,)]
    faces = [FaceWrite(matrix[n].tobytes(), 1, list_ids=lists[n], external_id=f"x{n}",
                       user_data=f"u{n}") for n in range(4)]
    events = [EventWrite(handler_id=handler, store_event=n != 2, face=face)
              for n, face in enumerate(faces)]
    unknown = str(uuid.uuid4())
    refused = EventWrite(handler_id=handler, face=FaceWrite(None, None, list_ids=(unknown,)))
    with pytest.raises(ListNotFound) as raised:
        await db_context.saveEvents(acc, [*events, refused])
    assert unknown in str(raised.value.detail)
    assert await db_context.getFace(faces[0].face_id, acc) is None
    await db_context.saveEvents(acc, events)
    for n, (face, written) in enumerate(zip(faces, events, strict=True)):
        got = await db_context.getFace(face.face_id, acc)
        assert got is not None
        assert (got.external_id, got.user_data, got.event_id, sorted(got.lists)) == (
            f"x{n}", f"u{n}", written.event_id if n != 2 else None,
            sorted(dict.fromkeys(lists[n])))
    lookup = await db_context.getFaceDescriptors(acc, [face.face_id for face in faces])
    assert lookup.found == {face.face_id: (matrix[n].tobytes(), 1)
                            for n, face in enumerate(faces)}


async def test_save_events_refuses_a_value_too_long_whole(db_context: DBContext) -> None:
    """An over-long value is refused as by a one-row insert, never cut to the column's
    length, and the write stores nothing."""
    acc = account()
    good = EventWrite(handler_id=str(uuid.uuid4()), samples=(SampleWrite("face_warp", b"1"),))
    long = EventWrite(handler_id=str(uuid.uuid4()), source="s" * 129)
    with pytest.raises(DatabaseFailure):
        await db_context.saveEvents(acc, [good, long])
    assert await db_context.countEvents(EventFilters(account_id=acc)) == 0
    assert await db_context.getSample(good.samples[0].sample_id) is None


async def test_event_filters_and_paging(db_context: DBContext) -> None:
    acc, h1, h2 = account(), str(uuid.uuid4()), str(uuid.uuid4())
    base = datetime(2026, 1, 1)
    writes = [EventWrite(handler_id=h1 if n % 2 else h2, source=f"s{n % 3}",
                         tags=("x", f"t{n}") if n < 4 else ("y",),
                         create_time=base + timedelta(hours=n)) for n in range(8)]
    await db_context.saveEvents(acc, writes)
    other = account()
    await db_context.saveEvents(other, [EventWrite(handler_id=h1, tags=("x",))])

    async def ids(**filters: object) -> set[str]:
        found = await db_context.getEvents(EventFilters(account_id=acc, **filters),  # type: ignore[arg-type]
                                           1, 100)
        assert await db_context.countEvents(
            EventFilters(account_id=acc, **filters)) == len(found)  # type: ignore[arg-type]
        return {event.event_id for event in found}

    every = [w.event_id for w in writes]
    assert await ids() == set(every)
    assert await ids(handler_id=h1) == set(every[1::2])
    assert await ids(source="s0") == {every[0], every[3], every[6]}
    assert await ids(tags=["x"]) == set(every[:4])
    assert await ids(tags=["x", "t2"]) == {every[2]}
    assert await ids(tags=["t"]) == set()  # an element, not a substring
    assert await ids(create_time__gte=base + timedelta(hours=2),
                     create_time__lt=base + timedelta(hours=4)) == set(every[2:4])
    # An aware time is compared as UTC.
    aware = datetime(2026, 1, 1, 8, tzinfo=UTC).astimezone()
    assert await ids(create_time__gte=aware - timedelta(hours=2)) == set(every[6:])
    page1 = await db_context.getEvents(EventFilters(account_id=acc), 1, 3)
    assert [e.event_id for e in page1] == every[::-1][:3]  # newest first
    assert await db_context.getEvent(every[0], other) is None


async def test_match_faces_is_exact_top_k(db_context: DBContext) -> None:
    acc, stranger = account(), account()
    matrix = vectors(300, 7)
    list_id = await db_context.createList(acc)
    faces = [FaceWrite(descriptor=row.tobytes(), descriptor_version=1, external_id=f"e{n}",
                       list_ids=(list_id,) if n < 200 else ()) for n, row in enumerate(matrix)]
    await db_context.saveEvents(acc, [EventWrite(handler_id="h", store_event=False, face=f)
                                      for f in faces])
    # Another account's exact copy of the probe, and another version's: never candidates.
    probe = vectors(1, 99)[0]
    await db_context.createFace(stranger, FaceWrite(probe.tobytes(), 1))
    await db_context.createFace(acc, FaceWrite(probe.tobytes(), 2))

    found = await db_context.matchFaces(acc, probe.tobytes(), FaceMatchFilters(), 10, 1)
    expected = top_k(matrix, probe, 10)
    assert [m.face_id for m in found] == [faces[row].face_id for row, _ in expected]
    assert [m.external_id for m in found] == [f"e{row}" for row, _ in expected]
    np.testing.assert_allclose([m.cosine for m in found], matrix[[r for r, _ in expected]] @ probe,
                               rtol=1e-5)
    assert [m.cosine for m in found] == sorted((m.cosine for m in found), reverse=True)
    by_list = await db_context.matchFaces(acc, probe.tobytes(), FaceMatchFilters(list_id=list_id),
                                          5, 1)
    assert [m.face_id for m in by_list] == [faces[r].face_id for r, _ in top_k(matrix[:200],
                                                                              probe, 5)]
    chosen = [faces[n].face_id for n in (3, 250, 299)]
    by_ids = await db_context.matchFaces(acc, probe.tobytes(), FaceMatchFilters(face_ids=chosen),
                                         10, 1)
    assert sorted(m.face_id for m in by_ids) == sorted(chosen)
    assert await db_context.matchFaces(acc, probe.tobytes(), FaceMatchFilters(
        create_time__lt=datetime(2000, 1, 1)), 10, 1) == []
    own = await db_context.matchFaces(stranger, probe.tobytes(), FaceMatchFilters(), 10, 1)
    assert len(own) == 1 and own[0].cosine == pytest.approx(1.0)


async def test_match_events_filters(db_context: DBContext) -> None:
    acc, h1, h2 = account(), str(uuid.uuid4()), str(uuid.uuid4())
    matrix = vectors(40, 3)
    writes = [EventWrite(handler_id=h1 if n < 20 else h2, descriptor=row.tobytes(),
                         descriptor_version=1, create_time=datetime(2026, 2, 1, n % 24))
              for n, row in enumerate(matrix)]
    await db_context.saveEvents(acc, writes)
    probe = matrix[5]
    found = await db_context.matchEvents(acc, probe.tobytes(), EventMatchFilters(), 3, 1)
    assert [m.event_id for m in found] == [writes[r].event_id for r, _ in top_k(matrix, probe, 3)]
    assert found[0].event_id == writes[5].event_id and found[0].cosine == pytest.approx(1.0)
    only_h2 = await db_context.matchEvents(acc, probe.tobytes(),
                                           EventMatchFilters(handler_ids=[h2]), 50, 1)
    assert {m.event_id for m in only_h2} == {w.event_id for w in writes[20:]}
    late = await db_context.matchEvents(acc, probe.tobytes(), EventMatchFilters(
        create_time__gte=datetime(2026, 2, 1, 10)), 50, 1)
    assert {m.event_id for m in late} == {w.event_id for n, w in enumerate(writes)
                                          if n % 24 >= 10}
    assert await db_context.matchEvents(account(), probe.tobytes(), EventMatchFilters(), 5,
                                        1) == []


def test_top_k_edges() -> None:
    matrix = vectors(5, 1)
    assert top_k(matrix, matrix[0], 0) == []
    assert top_k(matrix, matrix[0], 50)[0][0] == 0
    assert len(top_k(matrix, matrix[0], 50)) == 5
    assert top_k(matrix[:0], matrix[0], 3) == []
