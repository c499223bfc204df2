"""POST /1/handlers/{id}/events on real photos: detect, extract, store; every error."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from luna_handlers.db import DBContext
from tests.app.conftest import POLICIES, acc, assert_error, create_handler, new_account
from tests.app.photos import photo, two_faces

JPEG = {"Content-Type": "image/jpeg"}


async def post_events(client: httpx.AsyncClient, account: str, handler_id: str,
                      image: bytes, **params: Any) -> httpx.Response:
    """A raw-body POST of one JPEG."""
    return await client.post(f"/1/handlers/{handler_id}/events", content=image,
                             params=params, headers={**acc(account), **JPEG})


async def events_of(client: httpx.AsyncClient, account: str, handler_id: str, image: bytes,
                    **params: Any) -> list[dict[str, Any]]:
    """The events of a successful POST."""
    response = await post_events(client, account, handler_id, image, **params)
    assert response.status_code == 201, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def db_of(app: Starlette) -> DBContext:
    """The app's DB context: stored state is checked on the real database."""
    db: DBContext = app.state.db
    return db


def sample_id_of(event: dict[str, Any]) -> str | None:
    """The sample id of an event's only detection."""
    [detection] = event["detections"]
    sample_id: str | None = detection["samples"]["face"]["sample_id"]
    return sample_id


def multipart(images: list[bytes], policies: object | None = None) -> dict[str, Any]:
    """httpx ``files`` for a multipart body."""
    files: list[tuple[str, tuple[str, bytes, str]]] = [
        ("image", (f"{i}.jpg", image, "image/jpeg")) for i, image in enumerate(images)]
    if policies is not None:
        files.append(("policies", ("policies.json", orjson.dumps(policies),
                                   "application/json")))
    return {"files": files}


async def test_one_face_gives_one_stored_event(app: Starlette,
                                               client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account, policies={})
    [event] = await events_of(client, account, handler_id, photo("astronaut"),
                              source="door", tags="a,b", track_id="t1", external_id="e1",
                              user_data="u")
    assert (event["handler_id"], event["account_id"], event["source"], event["tags"],
            event["track_id"], event["external_id"], event["user_data"]) == (
        handler_id, account, "door", ["a", "b"], "t1", "e1", "u")
    assert event["url"] == f"/1/events/{event['event_id']}"
    assert event["face_id"] is None and event["matches"] == []
    [detection] = event["detections"]
    face = detection["samples"]["face"]
    assert face["url"] == f"/1/samples/faces/{face['sample_id']}"
    rect = face["detection"]["rect"]
    assert 100 < rect["x"] < 300 and 50 < rect["width"] < 250
    assert len(face["detection"]["landmarks5"]) == 5
    assert face["detection"]["detection_score"] > 0.85
    stored = await db_of(app).getEvent(event["event_id"], account)
    assert stored is not None and stored.detections == event["detections"]
    assert (stored.source, stored.tags, stored.external_id) == ("door", ("a", "b"), "e1")
    assert stored.descriptor_version is None  # the defaults extract no descriptor
    sample = await db_of(app).getSample(face["sample_id"], account)
    assert sample is not None and sample[:2] == b"\xff\xd8"
    assert await db_of(app).getSample(face["sample_id"], new_account()) is None
    # and through the store routes, as a client would follow the urls
    by_route = await client.get(event["url"], headers=acc(account))
    assert by_route.status_code == 200, by_route.text
    assert by_route.json()["detections"] == event["detections"]
    jpeg = await client.get(face["url"], headers=acc(account))
    assert jpeg.status_code == 200 and jpeg.content == sample
    assert_error(await client.get(face["url"], headers=acc(new_account())), 404, 22003)


async def test_an_image_without_a_face_is_an_event_without_detections(
        client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account)
    for name in ("coffee", "cat"):
        [event] = await events_of(client, account, handler_id, photo(name))
        assert event["detections"] == [] and event["face_id"] is None


async def test_multiface_policy(client: httpx.AsyncClient) -> None:
    account = new_account()
    by_policy = {value: await create_handler(client, account, policies={
        "detect_policy": {"multiface_policy": value}}) for value in (0, 1, 2)}
    assert_error(await post_events(client, account, by_policy[0], two_faces()), 400, 36001)
    assert len(await events_of(client, account, by_policy[0], photo("camera"))) == 1
    both = await events_of(client, account, by_policy[1], two_faces())
    scores = [e["detections"][0]["samples"]["face"]["detection"]["detection_score"]
              for e in both]
    assert len(both) == 2 and scores == sorted(scores, reverse=True)
    [best] = await events_of(client, account, by_policy[2], two_faces())
    assert best["detections"][0]["samples"]["face"]["detection"]["detection_score"] == scores[0]


async def test_thresholds_drop_faces(client: httpx.AsyncClient) -> None:
    account = new_account()
    strict = await create_handler(client, account, policies={
        "extract_policy": {"fd_score_threshold": 0.999}})
    [event] = await events_of(client, account, strict, photo("astronaut"))
    assert event["detections"] == []


async def test_storage_policy_switches(app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    nothing = await create_handler(client, account, policies={"storage_policy": {
        "face_sample_policy": {"store_sample": 0}, "event_policy": {"store_event": 0}}})
    [event] = await events_of(client, account, nothing, photo("camera"))
    assert event["url"] is None and event["face_id"] is None
    assert event["detections"][0]["samples"]["face"]["sample_id"] is None
    assert await db_of(app).getEvent(event["event_id"], account) is None
    face_only = await create_handler(client, account, policies={"storage_policy": {
        "face_policy": {"store_face": 1}, "event_policy": {"store_event": 0}}})
    [event] = await events_of(client, account, face_only, photo("camera"))
    assert event["face_id"] is not None and event["url"] is None
    face = await db_of(app).getFace(event["face_id"], account)
    assert face is not None and face.event_id is None and face.descriptor_version == 1
    assert face.avatar_sample_id == sample_id_of(event) is not None
    both = await create_handler(client, account, policies={"storage_policy": {
        "face_policy": {"store_face": 1, "set_sample_as_avatar": 0}}})
    [event] = await events_of(client, account, both, photo("camera"), external_id="x")
    face = await db_of(app).getFace(event["face_id"], account)
    stored = await db_of(app).getEvent(event["event_id"], account)
    assert face is not None and stored is not None
    assert (face.event_id, face.external_id, face.avatar_sample_id) == (
        event["event_id"], "x", None)
    assert stored.face_id == face.face_id and stored.descriptor_version == 1


async def test_request_errors(client: httpx.AsyncClient) -> None:
    account = new_account()
    static = await create_handler(client, account)
    dynamic = await create_handler(client, account, is_dynamic=True, policies=None)
    url = f"/1/handlers/{static}/events"
    image = photo("grace_hopper")
    assert_error(await client.post(url, content=image, headers=JPEG), 400, 12014)
    assert_error(await post_events(client, new_account(), static, image), 404, 34000)
    assert_error(await post_events(client, account, "not-a-uuid", image), 404, 34000)
    assert_error(await post_events(client, account, static, image, image_type=2), 400, 36003)
    assert_error(await post_events(client, account, static, image, bogus=1), 400, 12012)
    assert_error(await post_events(client, account, static, b"not an image"), 400, 35002)
    assert_error(await client.post(url, content=b"x", headers={
        **acc(account), "Content-Type": "text/plain"}), 400, 12017)
    assert_error(await client.post(url, json={}, headers=acc(account)), 400, 12022)
    assert_error(await client.post(url, json={"images": [{"image": "bad base64"}]},
                                   headers=acc(account)), 400, 12022)
    assert_error(await client.post(url, headers=acc(account), **multipart([image], POLICIES)),
                 403, 34007)
    assert_error(await post_events(client, account, dynamic, image), 400, 36002)
    assert_error(await client.post(f"/1/handlers/{dynamic}/events", headers=acc(account),
                                   **multipart([image], {"detect_policy": {"estimate_mask": 1}})),
                 400, 35004)
    assert_error(await client.post(f"/1/handlers/{dynamic}/events", headers=acc(account),
                                   **multipart([image], {"detect_policy": {"bad": 1}})),
                 400, 12022)
    assert_error(await client.post(url, headers={**acc(account), **JPEG}, content=image,
                                   params={"tags": ""}), 400, 12012)
    bad_time = {**acc(account), **JPEG, "Luna-Event-Time": "yesterday"}
    assert_error(await client.post(url, headers=bad_time, content=image), 400, 12012)


async def test_dynamic_handler_with_several_images_and_event_times(
        client: httpx.AsyncClient) -> None:
    account = new_account()
    dynamic = await create_handler(client, account, is_dynamic=True, policies=None)
    response = await client.post(
        f"/1/handlers/{dynamic}/events",
        headers={**acc(account), "Luna-Event-Time": "2026-01-31T13:00:00+03:00",
                 "Luna-Event-End-Time": "2026-01-31T10:00:05Z"},
        **multipart([photo("astronaut"), photo("coffee"), photo("camera")],
                    {"detect_policy": {"multiface_policy": 2}}))
    assert response.status_code == 201, response.text
    events = response.json()["events"]
    assert [len(e["detections"]) for e in events] == [1, 0, 1]
    assert {(e["create_time"], e["end_time"]) for e in events} == {
        ("2026-01-31T10:00:00.000000Z", "2026-01-31T10:00:05.000000Z")}


async def test_json_body_with_base64_images(client: httpx.AsyncClient) -> None:
    account = new_account()
    dynamic = await create_handler(client, account, is_dynamic=True, policies=None)
    images = [{"image": base64.b64encode(photo(name)).decode(), "mimetype": "image/jpeg"}
              for name in ("astronaut", "coffee")]
    response = await client.post(f"/1/handlers/{dynamic}/events", headers=acc(account), json={
        "images": images, "policies": {"detect_policy": {"multiface_policy": 2}}})
    assert response.status_code == 201, response.text
    assert [len(e["detections"]) for e in response.json()["events"]] == [1, 0]
    static = await create_handler(client, account)
    assert_error(await client.post(f"/1/handlers/{static}/events", headers=acc(account),
                                   json={"images": images[:1], "policies": {}}), 403, 34007)
    assert_error(await client.post(f"/1/handlers/{static}/events", headers=acc(account),
                                   json={"images": [{**images[0], "face_bounding_boxes": []}]}),
                 400, 12022)


async def test_warp_input(app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account, policies={})
    [event] = await events_of(client, account, handler_id, photo("camera"))
    sample_id = sample_id_of(event)
    assert sample_id is not None
    warp = await db_of(app).getSample(sample_id, account)
    assert warp is not None
    [from_warp] = await events_of(client, account, handler_id, warp, image_type=1)
    rect = from_warp["detections"][0]["samples"]["face"]["detection"]["rect"]
    assert rect == {"x": 0, "y": 0, "width": 112, "height": 112}
