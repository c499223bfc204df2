"""Match, conditional tags, lists and verifiers through the API, on real photos."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from starlette.applications import Starlette

from luna_handlers.db import EventFilters
from tests.app.conftest import acc, assert_error, create_handler, create_verifier, new_account
from tests.app.photos import photo
from tests.app.test_events_api import db_of, events_of, multipart

SAME = ("rotated+10", "jpeg-q20", "scaled-half", "flipped")


async def _list(app: Starlette, account: str) -> str:
    return await db_of(app).createList(account, "processing tests")


async def _enrol(client: httpx.AsyncClient, account: str, list_id: str) -> dict[str, str]:
    """Faces of the three people, stored in ``list_id`` by a handler; name -> face id."""
    enrol = await create_handler(client, account, policies={"storage_policy": {
        "face_policy": {"store_face": 1, "link_to_lists_policy": [{"list_id": list_id}]}}})
    faces = {}
    for name in ("astronaut", "camera", "grace_hopper"):
        [event] = await events_of(client, account, enrol, photo(name), external_id=name)
        faces[name] = event["face_id"]
    return faces


def _match_handler(list_id: str, **extra: Any) -> dict[str, Any]:
    return {"match_policy": [{"label": "staff", "threshold": 0.5, "limit": 3,
                              "candidates": {"origin": "faces", "list_id": list_id}}],
            **extra}


async def test_match_by_list_best_first_and_conditional_tags(
        app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    list_id = await _list(app, account)
    faces = await _enrol(client, account, list_id)
    handler_id = await create_handler(client, account, policies=_match_handler(
        list_id, conditional_tags_policy=[
            {"tag": "known", "filters": {"match": [{"label": "staff",
                                                    "similarity__gte": 0.9}]}},
            {"tag": "never", "filters": {"match": [{"label": "other"}]}}]))
    for edit in SAME:
        [event] = await events_of(client, account, handler_id, photo("astronaut", edit))
        [group] = event["matches"]
        assert group["label"] == "staff"
        [best] = group["candidates"]
        assert best["face"] == {"face_id": faces["astronaut"], "external_id": "astronaut"}
        assert best["similarity"] >= 0.9, (edit, best)
        assert event["tags"] == ["known"]
        assert event["top_match"]["face_id"] == faces["astronaut"]
    [stranger] = await events_of(client, account, handler_id, photo("camera", "cropped"))
    assert [c["face"]["face_id"] for c in stranger["matches"][0]["candidates"]] == [
        faces["camera"]]


async def test_no_candidate_of_another_account(app: Starlette,
                                               client: httpx.AsyncClient) -> None:
    owner, other = new_account(), new_account()
    list_id = await _list(app, owner)
    await _enrol(client, owner, list_id)
    handler_id = await create_handler(client, other, policies=_match_handler(list_id))
    [event] = await events_of(client, other, handler_id, photo("astronaut"))
    assert event["matches"] == [{"label": "staff", "candidates": []}]
    spoof = await create_handler(client, other, policies={"match_policy": [
        {"label": "x", "candidates": {"origin": "faces", "account_id": owner}}]})
    [event] = await events_of(client, other, spoof, photo("astronaut"))
    assert event["matches"] == [{"label": "x", "candidates": []}]


async def test_match_by_events_and_link_filters(app: Starlette,
                                                client: httpx.AsyncClient) -> None:
    account = new_account()
    blind = await create_handler(client, account, policies={})
    await events_of(client, account, blind, photo("grace_hopper"))  # no descriptor: no match
    source = await create_handler(client, account, policies={
        "extract_policy": {"extract_face_descriptor": 1}})
    [first] = await events_of(client, account, source, photo("grace_hopper"))
    list_id = await _list(app, account)
    handler_id = await create_handler(client, account, policies={
        "match_policy": [{"label": "seen", "threshold": 0.9, "candidates": {
            "origin": "events", "handler_ids": [source, blind],
            "create_time__gte": "now-1h"}}],
        "storage_policy": {"face_policy": {"store_face": 1, "link_to_lists_policy": [
            {"list_id": list_id, "filters": {"match": [{"label": "seen"}]}}]}}})
    [again] = await events_of(client, account, handler_id, photo("grace_hopper", "rotated-10"))
    [candidate] = again["matches"][0]["candidates"]
    assert candidate["event"]["event_id"] == first["event_id"]
    face = await db_of(app).getFace(again["face_id"], account)
    assert face is not None and face.lists == (list_id,)
    [other] = await events_of(client, account, handler_id, photo("astronaut"))
    assert other["matches"][0]["candidates"] == []
    face = await db_of(app).getFace(other["face_id"], account)
    assert face is not None and face.lists == ()


async def test_a_failed_write_stores_nothing(app: Starlette,
                                             client: httpx.AsyncClient) -> None:
    account = new_account()
    unknown_list = "00000000-0000-4000-8000-000000000000"
    handler_id = await create_handler(client, account, policies={"storage_policy": {
        "face_policy": {"store_face": 1, "link_to_lists_policy": [{"list_id": unknown_list}]}}})
    response = await client.post(f"/1/handlers/{handler_id}/events", headers=acc(account),
                                 **multipart([photo("astronaut"), photo("camera")]))
    body = assert_error(response, 404, 22002)
    assert unknown_list in body["detail"]
    db = db_of(app)
    assert await db.countEvents(EventFilters(account_id=account, handler_id=handler_id)) == 0
    assert await db.countFaces(account) == 0


async def test_verifications(app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    faces = await _enrol(client, account, await _list(app, account))
    verifier = await create_verifier(client, account, policies={"verification_threshold": 0.9})
    url = f"/1/verifiers/{verifier}/verifications"
    ids = ",".join([faces["astronaut"], faces["grace_hopper"]])
    response = await client.post(url, params={"face_ids": ids}, headers=acc(account),
                                 **multipart([photo("astronaut", "rotated+10")]))
    assert response.status_code == 200, response.text
    [image] = response.json()["images"]
    assert image["filename"] == "0.jpg"
    [detection] = image["detections"]["face_detections"]
    same, other = detection["verifications"]
    assert same["face"] == {"face_id": faces["astronaut"]} and same["status"] is True
    assert other["face"] == {"face_id": faces["grace_hopper"]} and other["status"] is False
    assert same["similarity"] >= 0.9 > other["similarity"]
    assert detection["sample"]["sample_id"] is None  # verifiers store no sample by default
    unknown = "00000000-0000-4000-8000-000000000001"
    body = assert_error(await client.post(url, params={"face_ids": unknown},
                                          headers={**acc(account), "Content-Type": "image/jpeg"},
                                          content=photo("camera")), 404, 22001)
    assert unknown in body["detail"]
    foreign = assert_error(await client.post(
        url.replace(verifier, await create_verifier(client, (b := new_account()))),
        params={"face_ids": faces["camera"]}, headers={**acc(b), "Content-Type": "image/jpeg"},
        content=photo("camera")), 404, 22001)
    assert faces["camera"] in foreign["detail"]
    assert_error(await client.post(url, headers={**acc(account), "Content-Type": "image/jpeg"},
                                   content=photo("camera")), 400, 12014)


async def test_verification_samples_are_stored_together(app: Starlette,
                                                        client: httpx.AsyncClient) -> None:
    account = new_account()
    faces = await _enrol(client, account, await _list(app, account))
    verifier = await create_verifier(client, account, policies={
        "storage_policy": {"face_sample_policy": {"store_sample": 1}}})
    response = await client.post(
        f"/1/verifiers/{verifier}/verifications", params={"face_ids": faces["camera"]},
        headers=acc(account), **multipart([photo("astronaut"), photo("grace_hopper")]))
    assert response.status_code == 200, response.text
    samples = [image["detections"]["face_detections"][0]["sample"]
               for image in response.json()["images"]]
    assert len({sample["sample_id"] for sample in samples}) == 2
    for sample in samples:
        assert sample["url"] == f"/1/samples/faces/{sample['sample_id']}"
        got = await client.get(sample["url"], headers=acc(account))
        assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"  # a JPEG


async def test_raw_verification(app: Starlette, client: httpx.AsyncClient) -> None:
    account = new_account()
    faces = await _enrol(client, account, await _list(app, account))
    verifier = await create_verifier(client, account, policies={"verification_threshold": 0.9})
    zero = base64.b64encode(bytes(512)).decode()
    url = f"/1/verifiers/{verifier}/raw"
    body = {"references": [{"type": "face", "id": faces["astronaut"]}],
            "candidates": [{"type": "face", "id": faces["astronaut"]},
                           {"type": "face", "id": faces["camera"]}]}
    response = await client.post(url, json=body, headers=acc(account))
    assert response.status_code == 200, response.text
    [reference] = response.json()["matches"]
    assert reference["reference_id"] == faces["astronaut"]
    same, other = reference["matches"]
    assert same["similarity"] > 0.999 and same["status"] is True and other["status"] is False
    bad = {**body, "candidates": [{"type": "descriptor", "data": zero,
                                   "descriptor_version": 1}]}
    assert_error(await client.post(url, json=bad, headers=acc(account)), 400, 12022)
    wrong_version = {**body, "candidates": [{"type": "descriptor", "data": zero,
                                             "descriptor_version": 2}]}
    assert_error(await client.post(url, json=wrong_version, headers=acc(account)), 400, 12022)
