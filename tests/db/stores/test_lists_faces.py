"""Lists and faces against a real database (PostgreSQL; Oracle when one is given): every
operation, paging, links, and account isolation."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from luna_handlers.db import DBContext, FaceWrite, ListFilters, SampleWrite
from luna_handlers.errors import FaceNotFound, ListNotFound


def account() -> str:
    return str(uuid.uuid4())


def descriptor(seed: int) -> bytes:
    vector = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    normalised: bytes = (vector / np.linalg.norm(vector)).astype("<f4").tobytes()
    return normalised


def face(*list_ids: str, seed: int = 1, **fields: object) -> FaceWrite:
    return FaceWrite(descriptor=descriptor(seed), descriptor_version=1, list_ids=list_ids,
                     **fields)  # type: ignore[arg-type]


async def test_list_lifecycle_and_paging(db_context: DBContext) -> None:
    acc = account()
    ids = [await db_context.createList(acc, f"list {n}") for n in range(5)]
    got = await db_context.getList(ids[0], acc)
    assert got is not None and (got.account_id, got.description) == (acc, "list 0")
    assert await db_context.listExists(ids[0], acc)
    filters = ListFilters(account_id=acc)
    assert await db_context.countLists(filters) == 5
    pages = [await db_context.getLists(filters, page, 2) for page in (1, 2, 3)]
    seen = [record.list_id for page in pages for record in page]
    assert sorted(seen) == sorted(ids) and len(seen) == 5  # no overlap, no gap
    times = [record.create_time for page in pages for record in page]
    assert times == sorted(times, reverse=True)
    assert await db_context.deleteList(ids[0], acc)
    assert not await db_context.listExists(ids[0], acc)
    assert not await db_context.deleteList(ids[0], acc)


async def test_face_lifecycle_with_lists_and_samples(db_context: DBContext) -> None:
    acc = account()
    first, second = await db_context.createList(acc), await db_context.createList(acc)
    sample = SampleWrite("face_warp", b"\xff\xd8jpeg")
    face_id = await db_context.createFace(
        acc, face(first, second, first, external_id="ext", user_data="ud",
                  avatar_sample_id=sample.sample_id), [sample])
    got = await db_context.getFace(face_id, acc)
    assert got is not None
    assert (got.external_id, got.user_data, got.avatar_sample_id, got.descriptor_version,
            set(got.lists), got.event_id) == ("ext", "ud", sample.sample_id, 1,
                                              {first, second}, None)
    assert await db_context.getSample(sample.sample_id, acc) == b"\xff\xd8jpeg"
    found = await db_context.getFaceDescriptors(acc, [face_id, "nope"])
    assert found.found[face_id] == (descriptor(1), 1) and found.missing == ("nope",)
    # Deleting a list takes the links, not the face.
    assert await db_context.deleteList(first, acc)
    after = await db_context.getFace(face_id, acc)
    assert after is not None and after.lists == (second,)
    assert await db_context.deleteFace(face_id, acc)
    assert await db_context.getFace(face_id, acc) is None
    assert not await db_context.deleteFace(face_id, acc)
    assert await db_context.countFaces(acc, listId=second) == 0


async def test_unknown_list_stores_nothing(db_context: DBContext) -> None:
    acc, other = account(), account()
    mine, theirs = await db_context.createList(acc), await db_context.createList(other)
    sample = SampleWrite("face_crop", b"crop")
    new = face(mine, theirs)
    with pytest.raises(ListNotFound) as caught:
        await db_context.createFace(acc, new, [sample])
    assert caught.value.ids == (theirs,)
    assert await db_context.getFace(new.face_id) is None
    assert await db_context.getSample(sample.sample_id) is None
    assert await db_context.countFaces(acc) == 0


async def test_faces_paging_and_filters(db_context: DBContext) -> None:
    acc = account()
    list_id = await db_context.createList(acc)
    in_list = [await db_context.createFace(acc, face(list_id, seed=n)) for n in range(3)]
    alone = await db_context.createFace(acc, face(seed=9))
    assert await db_context.countFaces(acc) == 4
    assert await db_context.countFaces(acc, listId=list_id) == 3
    assert await db_context.countFaces(acc, faceIds=[alone, in_list[0], "x"]) == 2
    assert await db_context.countFaces(acc, listId=list_id, faceIds=[alone]) == 0
    pages = [await db_context.getFaces(acc, list_id, page=p, pageSize=2) for p in (1, 2)]
    assert sorted(f.face_id for page in pages for f in page) == sorted(in_list)
    assert all(f.lists == (list_id,) for page in pages for f in page)


async def test_attach_detach(db_context: DBContext) -> None:
    acc, other = account(), account()
    list_id = await db_context.createList(acc)
    faces = [await db_context.createFace(acc, face(seed=n)) for n in range(3)]
    foreign = await db_context.createFace(other, face())
    await db_context.attachFacesToList(list_id, faces[:2], acc)
    await db_context.attachFacesToList(list_id, faces[:2], acc)  # idempotent
    assert await db_context.countFaces(acc, listId=list_id) == 2
    with pytest.raises(FaceNotFound) as caught:
        await db_context.attachFacesToList(list_id, [faces[2], foreign, "nope"], acc)
    assert caught.value.ids == (foreign, "nope")
    assert await db_context.countFaces(acc, listId=list_id) == 2  # all or nothing
    await db_context.detachFacesFromList(list_id, [faces[0], faces[2]], acc)
    assert [f.face_id for f in await db_context.getFaces(acc, list_id)] == [faces[1]]
    with pytest.raises(ListNotFound):
        await db_context.attachFacesToList(list_id, faces, other)
    with pytest.raises(ListNotFound):
        await db_context.detachFacesFromList(str(uuid.uuid4()), faces, acc)


async def test_other_account_sees_nothing(db_context: DBContext) -> None:
    owner, stranger = account(), account()
    list_id = await db_context.createList(owner)
    sample = SampleWrite("face_warp", b"w")
    face_id = await db_context.createFace(owner, face(list_id), [sample])
    assert await db_context.getList(list_id, stranger) is None
    assert not await db_context.listExists(list_id, stranger)
    assert not await db_context.deleteList(list_id, stranger)
    assert await db_context.countLists(ListFilters(account_id=stranger)) == 0
    assert await db_context.getFace(face_id, stranger) is None
    assert await db_context.getFaces(stranger, list_id) == []
    assert await db_context.countFaces(stranger, faceIds=[face_id]) == 0
    assert not await db_context.deleteFace(face_id, stranger)
    assert await db_context.deleteFaces([face_id], stranger) == 0
    assert await db_context.getSample(sample.sample_id, stranger) is None
    assert (await db_context.getFaceDescriptors(stranger, [face_id])).missing == (face_id,)
    with pytest.raises(ListNotFound):
        await db_context.createFace(stranger, face(list_id))
    # ...and the owner's objects are untouched.
    kept = await db_context.getFace(face_id, owner)
    assert kept is not None and kept.lists == (list_id,)
