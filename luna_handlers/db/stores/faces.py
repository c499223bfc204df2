"""The face store: faces, their descriptors and their links to lists.

Writes of several rows (a face with its links and samples; attach/detach) run in one
transaction (``Database.transaction()``): all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from luna_handlers.db.database import Session
from luna_handlers.db.listing import any_of
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.schema.sqltypes import utc_now
from luna_handlers.db.schema.store_models import Face, ListFace
from luna_handlers.db.store_records import FaceRecord, FaceWrite, SampleWrite
from luna_handlers.db.stores.common import SCOPES, Store, by_id, insert_statement, match
from luna_handlers.db.stores.lists import LIST
from luna_handlers.db.stores.samples import insert_samples, unbounded
from luna_handlers.errors import FaceNotFound, ListNotFound

FACE: sa.Table = Face.__table__  # type: ignore[assignment]  # declarative gives a Table
LIST_FACE: sa.Table = ListFace.__table__  # type: ignore[assignment]

#: Every column but the descriptor: what a read of a face returns.
SHOWN = [column for column in FACE.c if column.name != "descriptor"]
INSERT_FACE = insert_statement(FACE, (
    "face_id", "account_id", "event_id", "external_id", "user_data", "avatar_sample_id",
    "descriptor", "descriptor_version"))


def _link(dialect: str) -> Any:
    # A link already there is kept (attach is idempotent).
    if dialect == "postgresql":
        return pg_insert(LIST_FACE).values(
            list_id=sa.bindparam("list_id"), face_id=sa.bindparam("face_id")
        ).on_conflict_do_nothing()
    pair = sa.select(sa.bindparam("list_id", type_=sa.String), sa.bindparam(
        "face_id", type_=sa.String)).where(~sa.exists().where(
            LIST_FACE.c.list_id == sa.bindparam("list_id"),
            LIST_FACE.c.face_id == sa.bindparam("face_id")))
    if dialect == "oracle":
        pair = pair.select_from(sa.table("dual"))
    return sa.insert(LIST_FACE).from_select(["list_id", "face_id"], pair)


LINK = Prepared(_link)
LISTS_IN_ACCOUNT = Prepared(lambda dialect: sa.select(LIST.c.list_id).where(
    any_of(LIST.c.list_id, "ids", dialect), LIST.c.account_id == sa.bindparam("account_id")))


def _account(scoped: bool) -> list[sa.ColumnElement[bool]]:
    return [FACE.c.account_id == sa.bindparam("account_id")] if scoped else []


def _faces_in_account(scoped: bool) -> Prepared:
    return Prepared(lambda dialect: sa.select(FACE.c.face_id).where(
        any_of(FACE.c.face_id, "ids", dialect), *_account(scoped)))


def _delete_faces(scoped: bool) -> Prepared:
    return Prepared(lambda dialect: sa.delete(FACE).where(
        any_of(FACE.c.face_id, "ids", dialect), *_account(scoped)))


def _touch_list(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.update(LIST).where(*match(LIST, scoped)).values(
        last_update_time=utc_now()).returning(LIST.c.list_id))


def _get_face(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(*SHOWN).where(*match(FACE, scoped)))


FACES_IN_ACCOUNT = {scoped: _faces_in_account(scoped) for scoped in SCOPES}
DELETE_FACES = {scoped: _delete_faces(scoped) for scoped in SCOPES}
TOUCH_LIST = {scoped: _touch_list(scoped) for scoped in SCOPES}
GET_FACE = {scoped: _get_face(scoped) for scoped in SCOPES}
LINKS_OF = Prepared(lambda dialect: sa.select(LIST_FACE.c.face_id, LIST_FACE.c.list_id).where(
    any_of(LIST_FACE.c.face_id, "ids", dialect)).order_by(LIST_FACE.c.link_time,
                                                           LIST_FACE.c.list_id))
UNLINK = Prepared(lambda dialect: sa.delete(LIST_FACE).where(
    LIST_FACE.c.list_id == sa.bindparam("list_id"), any_of(LIST_FACE.c.face_id, "ids", dialect)))


def _faces_statement(scoped: bool, by_list: bool, by_ids: bool, count: bool) -> Prepared:
    def build(dialect: str) -> Any:
        where = _account(scoped)
        if by_list:
            where.append(sa.exists().where(LIST_FACE.c.face_id == FACE.c.face_id,
                                           LIST_FACE.c.list_id == sa.bindparam("list_id")))
        if by_ids:
            where.append(any_of(FACE.c.face_id, "ids", dialect))
        if count:
            return sa.select(sa.func.count().label("total")).select_from(FACE).where(*where)
        return (sa.select(*SHOWN).where(*where)
                .order_by(FACE.c.create_time.desc(), FACE.c.face_id)
                .limit(sa.bindparam("page_limit")).offset(sa.bindparam("page_offset")))
    return Prepared(build)


SHAPES = [(s, li, i) for s in SCOPES for li in (False, True) for i in (False, True)]
FACES_PAGE = {shape: _faces_statement(*shape, count=False) for shape in SHAPES}
FACES_COUNT = {shape: _faces_statement(*shape, count=True) for shape in SHAPES}


def _face(row: Row, lists: tuple[str, ...]) -> FaceRecord:
    return FaceRecord(
        face_id=row["face_id"], account_id=row["account_id"], event_id=row["event_id"],
        external_id=row["external_id"], user_data=row["user_data"] or "",
        create_time=row["create_time"], avatar_sample_id=row["avatar_sample_id"],
        descriptor_version=row["descriptor_version"], lists=lists)


def _scope(params: dict[str, Any], account_id: str | None) -> dict[str, Any]:
    return params if account_id is None else params | {"account_id": account_id}


#: The columns a face is written with (the rest are the database's).
WRITTEN = ("face_id", "account_id", "event_id", "external_id", "user_data",
           "avatar_sample_id", "descriptor", "descriptor_version")


def _arrays(*columns: sa.Column[Any]) -> Any:
    # Every value of each column as one array parameter ``a_<column>``, expanded by unnest.
    return sa.func.unnest(*(sa.bindparam(f"a_{column.name}", type_=ARRAY(unbounded(column)))
                            for column in columns)
                          ).table_valued(*(column.name for column in columns)).render_derived()


def _face_rows() -> sa.Insert:
    rows = _arrays(*(FACE.c[name] for name in WRITTEN if name != "account_id"))
    values = [sa.bindparam("a_account_id", type_=FACE.c.account_id.type)
              if name == "account_id" else rows.c[name] for name in WRITTEN]
    return sa.insert(FACE).from_select(list(WRITTEN), sa.select(*values))


def _link_rows() -> Any:
    rows = _arrays(LIST_FACE.c.list_id, LIST_FACE.c.face_id)
    return pg_insert(LIST_FACE).from_select(
        ["list_id", "face_id"], sa.select(rows.c.list_id, rows.c.face_id)
    ).on_conflict_do_nothing()


#: PostgreSQL: every face of a write in one statement, every link in another.
FACE_ROWS = Prepared(lambda _dialect: _face_rows())
LINK_ROWS = Prepared(lambda _dialect: _link_rows())


async def insert_faces(session: Session, dialect_name: str, account_id: str,
                       faces: Sequence[tuple[FaceWrite, str | None]]) -> None:
    """Insert the faces (each with the event it comes from, else its own ``event_id``) and
    their list links on a transaction's session; ``ListNotFound`` (naming every unknown
    list) when a list is not in the account. On PostgreSQL three statements whatever
    their number (the lists, the faces, the links)."""
    links = [(list_id, face.face_id) for face, _ in faces
             for list_id in dict.fromkeys(face.list_ids)]
    list_ids = list(dict.fromkeys(list_id for list_id, _ in links))
    if list_ids:
        found = {row["list_id"] for row in await session.rows(
            LISTS_IN_ACCOUNT, {"ids": list_ids, "account_id": account_id})}
        missing = tuple(list_id for list_id in list_ids if list_id not in found)
        if missing:
            raise ListNotFound(*missing)
    values = [{"face_id": face.face_id, "account_id": account_id,
               "event_id": event_id if event_id is not None else face.event_id,
               "external_id": face.external_id, "user_data": face.user_data,
               "avatar_sample_id": face.avatar_sample_id, "descriptor": face.descriptor,
               "descriptor_version": face.descriptor_version} for face, event_id in faces]
    if dialect_name != "postgresql":
        for face in values:
            await session.rows(INSERT_FACE, {f"v_{name}": value for name, value in face.items()})
        for list_id, face_id in links:
            await session.rows(LINK, {"list_id": list_id, "face_id": face_id})
        return
    if values:
        await session.rows(FACE_ROWS, {"a_account_id": account_id} | {
            f"a_{name}": [face[name] for face in values] for name in WRITTEN
            if name != "account_id"})
    if links:
        await session.rows(LINK_ROWS, {"a_list_id": [link[0] for link in links],
                                       "a_face_id": [link[1] for link in links]})


class FaceStore(Store):
    """Reads and writes of faces and of their links to lists."""

    async def createFace(self, accountId: str, face: FaceWrite,
                         samples: Sequence[SampleWrite] = ()) -> str:
        """Store ``face`` with its links (and ``samples``, e.g. its avatar) in one
        transaction; its id. ``ListNotFound`` when a list is not in the account."""
        async with self.database.transaction() as session:
            await insert_samples(session, accountId, samples)
            await insert_faces(session, self.database.dialect_name, accountId, [(face, None)])
        return face.face_id

    async def _with_lists(self, session: Session, rows: Sequence[Row]) -> list[FaceRecord]:
        if not rows:
            return []
        lists: dict[str, list[str]] = {row["face_id"]: [] for row in rows}
        for link in await session.rows(LINKS_OF, {"ids": list(lists)}):
            lists[link["face_id"]].append(link["list_id"])
        return [_face(row, tuple(lists[row["face_id"]])) for row in rows]

    async def getFace(self, faceId: str, accountId: str | None = None) -> FaceRecord | None:
        """The face with its lists, or None when it does not exist (in this account)."""
        async with self.database.read() as session:
            rows = await session.rows(GET_FACE[accountId is not None], by_id(faceId, accountId))
            faces = await self._with_lists(session, rows)
        return faces[0] if faces else None

    async def getFaces(self, accountId: str | None, listId: str | None = None,
                       faceIds: Sequence[str] | None = None, page: int = 1,
                       pageSize: int = 10) -> list[FaceRecord]:
        """One page of faces (of a list, among ids), newest first, each with its lists."""
        shape, params = self._shape(accountId, listId, faceIds)
        params |= {"page_limit": pageSize, "page_offset": (page - 1) * pageSize}
        async with self.database.read() as session:
            return await self._with_lists(session, await session.rows(FACES_PAGE[shape], params))

    async def countFaces(self, accountId: str | None, listId: str | None = None,
                         faceIds: Sequence[str] | None = None) -> int:
        """How many faces :meth:`getFaces` would page through."""
        shape, params = self._shape(accountId, listId, faceIds)
        return int((await self._read(FACES_COUNT[shape], params))[0]["total"])

    @staticmethod
    def _shape(account_id: str | None, list_id: str | None, face_ids: Sequence[str] | None
               ) -> tuple[tuple[bool, bool, bool], dict[str, Any]]:
        params: dict[str, Any] = {}
        if list_id is not None:
            params["list_id"] = list_id
        if face_ids is not None:
            params["ids"] = list(face_ids)
        return ((account_id is not None, list_id is not None, face_ids is not None),
                _scope(params, account_id))

    async def deleteFace(self, faceId: str, accountId: str | None = None) -> bool:
        """Delete the face and its links; True if it existed (in this account)."""
        return await self.deleteFaces([faceId], accountId) == 1

    async def deleteFaces(self, faceIds: Sequence[str], accountId: str | None = None) -> int:
        """Delete the faces (of this account) and their links; how many were deleted."""
        async with self.database.transaction() as session:
            params = _scope({"ids": list(faceIds)}, accountId)
            found = await session.rows(FACES_IN_ACCOUNT[accountId is not None], params)
            if found:
                await session.rows(DELETE_FACES[accountId is not None], params)
        return len(found)

    async def attachFacesToList(self, listId: str, faceIds: Sequence[str],
                                accountId: str | None = None) -> None:
        """Put the faces in the list (those already in it stay): ``ListNotFound`` or
        ``FaceNotFound`` (naming every unknown face) changes nothing."""
        async with self.database.transaction() as session:
            await self._touch(session, listId, accountId)
            wanted = list(dict.fromkeys(faceIds))
            found = {row["face_id"] for row in await session.rows(
                FACES_IN_ACCOUNT[accountId is not None], _scope({"ids": wanted}, accountId))}
            missing = tuple(face_id for face_id in wanted if face_id not in found)
            if missing:
                raise FaceNotFound(*missing)
            for face_id in wanted:
                await session.rows(LINK, {"list_id": listId, "face_id": face_id})

    async def detachFacesFromList(self, listId: str, faceIds: Sequence[str],
                                  accountId: str | None = None) -> None:
        """Take the faces out of the list (faces not in it are ignored); ``ListNotFound``."""
        async with self.database.transaction() as session:
            await self._touch(session, listId, accountId)
            await session.rows(UNLINK, {"list_id": listId, "ids": list(faceIds)})

    @staticmethod
    async def _touch(session: Session, list_id: str, account_id: str | None) -> None:
        # Also locks the list's row: concurrent attaches to one list take turns.
        if not await session.rows(TOUCH_LIST[account_id is not None],
                                  by_id(list_id, account_id)):
            raise ListNotFound(list_id)
