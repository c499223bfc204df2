"""/1/lists, /1/faces, /1/events and /1/samples/faces over HTTP against a real database:
CRUD, links, filters, paging, bad input and account isolation (faces and events are stored
through the DB context: creating them from images is the processing routes' work)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette

from luna_handlers.db import DBContext, EventWrite, FaceWrite, SampleWrite
from tests.app.conftest import TIME_FORMAT, acc, assert_error, new_account


@pytest.fixture(scope="module")
def db(app: Starlette, client: httpx.AsyncClient) -> DBContext:
    """The DB context of the running app (its lifespan is started by ``client``)."""
    context: DBContext = app.state.db
    return context


async def create_list(client: httpx.AsyncClient, account: str, **body: str) -> str:
    response = await client.post("/1/lists", json=body, headers=acc(account))
    assert response.status_code == 201, response.text
    return str(response.json()["list_id"])


async def test_list_crud_and_count(client: httpx.AsyncClient) -> None:
    account = new_account()
    response = await client.post("/1/lists", json={"description": "staff"},
                                 headers=acc(account))
    assert response.status_code == 201
    list_id = response.json()["list_id"]
    assert response.json()["url"] == response.headers["location"] == f"/1/lists/{list_id}"
    got = (await client.get(f"/1/lists/{list_id}")).json()
    assert set(got) == {"list_id", "account_id", "description", "create_time",
                        "last_update_time"}
    assert (got["account_id"], got["description"]) == (account, "staff")
    assert TIME_FORMAT.fullmatch(got["create_time"])
    assert (await client.head(f"/1/lists/{list_id}")).status_code == 200
    second = await create_list(client, account)
    page = (await client.get("/1/lists", params={"page_size": 1},
                             headers=acc(account))).json()["lists"]
    assert [item["list_id"] for item in page] == [second]  # newest first
    count = await client.get("/1/lists/count", headers=acc(account))
    assert count.json() == {"lists_count": 2}
    assert (await client.delete(f"/1/lists/{list_id}", headers=acc(account))).status_code == 204
    assert_error(await client.get(f"/1/lists/{list_id}"), 404, 22002)
    assert_error(await client.delete(f"/1/lists/{list_id}", headers=acc(account)), 404, 22002)
    assert (await client.head(f"/1/lists/{list_id}")).status_code == 404


@pytest.mark.parametrize(("body", "path"), [
    ([], ""), ({"description": 5}, "description"), ({"description": "x" * 129}, "description"),
    ({"other": 1}, "other")])
async def test_bad_list_body(client: httpx.AsyncClient, body: object, path: str) -> None:
    response = await client.post("/1/lists", json=body, headers=acc(new_account()))
    assert f"Path: '{path}'" in assert_error(response, 400, 12022)["detail"]


async def test_link_faces_and_read_faces(client: httpx.AsyncClient, db: DBContext) -> None:
    account = new_account()
    list_id = await create_list(client, account)
    avatar = SampleWrite("face_warp", b"\xff\xd8\xff jpeg")
    face_ids = [await db.createFace(account, FaceWrite(
        b"\0" * 512, 1, external_id=f"e{n}", avatar_sample_id=avatar.sample_id if n == 0
        else None), [avatar] if n == 0 else []) for n in range(3)]
    patch = {"action": "attach", "face_ids": face_ids[:2]}
    response = await client.patch(f"/1/lists/{list_id}/faces", json=patch, headers=acc(account))
    assert response.status_code == 204
    face = (await client.get(f"/1/faces/{face_ids[0]}", headers=acc(account))).json()
    assert face == {"face_id": face_ids[0], "account_id": account, "event_id": None,
                    "external_id": "e0", "user_data": "", "lists": [list_id],
                    "create_time": face["create_time"],
                    "avatar": f"/1/samples/faces/{avatar.sample_id}"}
    sample = await client.get(face["avatar"], headers=acc(account))
    assert (sample.status_code, sample.headers["content-type"], sample.content) == (
        200, "image/jpeg", b"\xff\xd8\xff jpeg")
    listed = await client.get("/1/faces", params={"list_id": list_id}, headers=acc(account))
    assert sorted(f["face_id"] for f in listed.json()["faces"]) == sorted(face_ids[:2])
    by_ids = await client.get("/1/faces/count", headers=acc(account),
                              params={"face_ids": ",".join(face_ids[1:])})
    assert by_ids.json() == {"faces_count": 2}
    unknown = str(uuid.uuid4())
    body = assert_error(await client.patch(
        f"/1/lists/{list_id}/faces", headers=acc(account),
        json={"action": "attach", "face_ids": [face_ids[2], unknown]}), 404, 22001)
    assert unknown in body["detail"] and face_ids[2] not in body["detail"]
    response = await client.patch(f"/1/lists/{list_id}/faces", headers=acc(account),
                                  json={"action": "detach", "face_ids": [face_ids[0]]})
    assert response.status_code == 204
    count = await client.get("/1/faces/count", params={"list_id": list_id}, headers=acc(account))
    assert count.json() == {"faces_count": 1}
    assert (await client.delete(f"/1/faces/{face_ids[1]}", headers=acc(account))
            ).status_code == 204
    assert_error(await client.get(f"/1/faces/{face_ids[1]}"), 404, 22001)


@pytest.mark.parametrize(("body", "path"), [
    ({"action": "move", "face_ids": []}, "action"), ({"action": "attach"}, "face_ids"),
    ({"action": "attach", "face_ids": ["nope"]}, "face_ids.0"),
    ({"action": "attach", "face_ids": []}, "face_ids")])
async def test_bad_link_body(client: httpx.AsyncClient, body: object, path: str) -> None:
    account = new_account()
    list_id = await create_list(client, account)
    response = await client.patch(f"/1/lists/{list_id}/faces", json=body, headers=acc(account))
    assert f"Path: '{path}'" in assert_error(response, 400, 12022)["detail"]


async def test_events_get_and_filters(client: httpx.AsyncClient, db: DBContext) -> None:
    account, handler = new_account(), str(uuid.uuid4())
    events = [EventWrite(handler_id=handler, source="door" if n else "gate", tags=("vip",)
                         if n == 2 else (), create_time=datetime(2026, 3, 1, n, tzinfo=UTC),
                         detections=[{"score": 0.9}]) for n in range(3)]
    await db.saveEvents(account, events)
    got = (await client.get(f"/1/events/{events[0].event_id}", headers=acc(account))).json()
    assert got["url"] == f"/1/events/{events[0].event_id}"
    assert (got["handler_id"], got["source"], got["tags"], got["detections"], got["matches"],
            got["create_time"], got["end_time"]) == (
        handler, "gate", [], [{"score": 0.9}], [], "2026-03-01T00:00:00.000000Z",
        "2026-03-01T00:00:00.000000Z")

    async def found(**params: str) -> list[str]:
        response = await client.get("/1/events", params=params, headers=acc(account))
        assert response.status_code == 200, response.text
        count = await client.get("/1/events/count", params=params, headers=acc(account))
        ids = [event["event_id"] for event in response.json()["events"]]
        assert count.json() == {"events_count": len(ids)}
        return ids

    every = [event.event_id for event in events]
    assert await found() == every[::-1]
    assert await found(source="door") == [every[2], every[1]]
    assert await found(tags="vip") == [every[2]]
    assert await found(handler_id=handler, create_time__gte="2026-03-01T01:00:00Z",
                       create_time__lt="2026-03-01T02:00:00Z") == [every[1]]
    paged = await client.get("/1/events", params={"page": 2, "page_size": 2},
                             headers=acc(account))
    assert [event["event_id"] for event in paged.json()["events"]] == [every[0]]
    assert_error(await client.get("/1/events", params={"tags": "a,,b"}), 400, 12012)
    assert_error(await client.get("/1/events", params={"face_id": "x"}), 400, 12012)


async def test_other_account_and_bad_ids_are_not_found(client: httpx.AsyncClient,
                                                       db: DBContext) -> None:
    owner, stranger = new_account(), new_account()
    list_id = await create_list(client, owner)
    sample = SampleWrite("face_crop", b"jpeg")
    face_id = await db.createFace(owner, FaceWrite(None, None, list_ids=(list_id,)), [sample])
    event = EventWrite(handler_id=str(uuid.uuid4()))
    await db.saveEvents(owner, [event])
    them = acc(stranger)
    assert_error(await client.get(f"/1/lists/{list_id}", headers=them), 404, 22002)
    assert_error(await client.delete(f"/1/lists/{list_id}", headers=them), 404, 22002)
    assert_error(await client.patch(f"/1/lists/{list_id}/faces", headers=them, json={
        "action": "detach", "face_ids": [face_id]}), 404, 22002)
    assert_error(await client.get(f"/1/faces/{face_id}", headers=them), 404, 22001)
    assert_error(await client.delete(f"/1/faces/{face_id}", headers=them), 404, 22001)
    assert_error(await client.get(f"/1/events/{event.event_id}", headers=them), 404, 23001)
    assert_error(await client.get(f"/1/samples/faces/{sample.sample_id}", headers=them),
                 404, 22003)
    assert (await client.get("/1/faces", params={"list_id": list_id}, headers=them)
            ).json() == {"faces": []}
    assert (await client.get("/1/events/count", headers=them)).json() == {"events_count": 0}
    for path, code in (("/1/lists/x", 22002), ("/1/faces/x", 22001), ("/1/events/x", 23001),
                       ("/1/samples/faces/x", 22003)):
        assert_error(await client.get(path), 404, code)
    assert_error(await client.delete(f"/1/faces/{face_id}"), 400, 12014)  # account required
    assert (await client.get(f"/1/faces/{face_id}", headers=acc(owner))).status_code == 200
