"""POST /1/faces from images, the calibration of the default thresholds through the service,
and an engine that is busy."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from luna_handlers.app.application import create_app
from luna_handlers.config import load_settings
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.engine import FaceEngine
from tests.app.conftest import (
    acc,
    assert_error,
    create_handler,
    create_verifier,
    make_settings,
    new_account,
    serve,
    shared,
)
from tests.app.photos import photo, two_faces
from tests.app.test_events_api import JPEG, db_of, multipart
from tests.engine.conftest import EDITS, FACES

PEOPLE = tuple(FACES)


async def _face(client: httpx.AsyncClient, account: str, image: bytes,
                **params: str) -> httpx.Response:
    return await client.post("/1/faces", content=image, params=params,
                             headers={**acc(account), **JPEG})


async def test_a_face_from_an_image(app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    list_id = await db_of(app).createList(account)
    response = await _face(client, account, photo("grace_hopper"), list_ids=list_id,
                           external_id="gh", user_data="admiral")
    assert response.status_code == 201, response.text
    face_id = response.json()["face_id"]
    assert response.headers["location"] == response.json()["url"] == f"/1/faces/{face_id}"
    face = await db_of(app).getFace(face_id, account)
    assert face is not None
    assert (face.external_id, face.user_data, face.lists, face.descriptor_version) == (
        "gh", "admiral", (list_id,), 1)
    assert face.avatar_sample_id is not None
    assert await db_of(app).getSample(face.avatar_sample_id, account) is not None
    assert_error(await _face(client, account, photo("coffee")), 400, 36004)
    assert_error(await _face(client, account, two_faces()), 400, 36004)
    assert_error(await _face(client, account, photo("camera"),
                             list_ids="00000000-0000-4000-8000-000000000000"), 404, 22002)
    assert_error(await client.post("/1/faces", headers=acc(account),
                                   **multipart([photo("camera"), photo("camera")])), 400, 12017)
    assert await db_of(app).countFaces(account) == 1


async def _verifier_faces(client: httpx.AsyncClient, account: str) -> dict[str, str]:
    faces = {}
    for name in PEOPLE:
        response = await _face(client, account, photo(name))
        assert response.status_code == 201, response.text
        faces[name] = response.json()["face_id"]
    return faces


async def test_default_verification_threshold_separates_people_with_a_margin(
        client: httpx.AsyncClient) -> None:
    """Every edited copy against every enrolled person, with the verifier's default
    threshold (0.9): same person passes, others fail; the margin is printed and bounded."""
    account = new_account()
    faces = await _verifier_faces(client, account)
    verifier = await create_verifier(client, account, policies={})
    ids = ",".join(faces[name] for name in PEOPLE)
    same: list[float] = []
    other: list[float] = []
    for name in PEOPLE:
        for edit in EDITS:
            response = await client.post(f"/1/verifiers/{verifier}/verifications",
                                         params={"face_ids": ids}, content=photo(name, edit),
                                         headers={**acc(account), **JPEG})
            assert response.status_code == 200, response.text
            [detection] = response.json()["images"][0]["detections"]["face_detections"]
            for check, person in zip(detection["verifications"], PEOPLE, strict=True):
                assert check["status"] is (person == name), (name, edit, person, check)
                (same if person == name else other).append(check["similarity"])
    print(f"same person >= {min(same):.3f}, different people <= {max(other):.3f}, "
          f"threshold 0.9")
    assert min(same) - 0.9 >= 0.05 and 0.9 - max(other) >= 0.5


async def test_raw_with_given_descriptors_and_another_accounts_face(
        app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    faces = await _verifier_faces(client, account)
    lookup = await db_of(app).getFaceDescriptors(account, [faces["camera"]])
    data = base64.b64encode(lookup.found[faces["camera"]].descriptor).decode()
    verifier = await create_verifier(client, account, policies={})
    body = {"references": [{"type": "descriptor", "data": data, "descriptor_version": 1,
                            "id": "probe"}],
            "candidates": [{"type": "face", "id": faces["camera"]},
                           {"type": "face", "id": faces["astronaut"]}]}
    response = await client.post(f"/1/verifiers/{verifier}/raw", json=body,
                                 headers=acc(account))
    assert response.status_code == 200, response.text
    [reference] = response.json()["matches"]
    assert reference["reference_id"] == "probe"
    assert [m["status"] for m in reference["matches"]] == [True, False]
    other = new_account()
    foreign = await create_verifier(client, other, policies={})
    answer = assert_error(await client.post(f"/1/verifiers/{foreign}/raw", json=body,
                                            headers=acc(other)), 404, 22001)
    assert faces["camera"] in answer["detail"]


@pytest.fixture(scope="module")
async def tiny_client(migrated_pool: HostPool) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose engine has one worker and one queue place."""
    settings = dataclasses.replace(load_settings(environ={}).engine, workers=1, queue_size=1)
    engine = FaceEngine(settings)

    @asynccontextmanager
    async def lend() -> AsyncIterator[FaceEngine]:
        yield engine

    await asyncio.to_thread(engine.start)
    try:
        async with serve(create_app(make_settings(migrated_pool), shared(migrated_pool),
                                    lend)) as http:
            yield http
    finally:
        await asyncio.to_thread(engine.close)


async def test_a_busy_engine_is_503_with_retry_after(tiny_client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(tiny_client, account, policies={})
    big = photo("astronaut", "scaled-1.5")
    responses = await asyncio.gather(*(tiny_client.post(
        f"/1/handlers/{handler_id}/events", content=big, headers={**acc(account), **JPEG})
        for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 201 and statuses[-1] == 503, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert_error(busy, 503, 35001)
    assert busy.headers["retry-after"] == "1"
