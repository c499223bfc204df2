"""Stored renderings made anew (``db upgrade`` after migrating), on real PostgreSQL."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from luna_handlers.app.policies import (
    HANDLER_RENDERING,
    VERIFIER_RENDERING,
    normalise_handler_policies,
    normalise_verifier_policies,
    render_stored_handler,
)
from luna_handlers.db.context import HANDLER, DBContext
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.db.stores.rendering import Rerendered, rerender
from luna_handlers.pgserver.cluster import PgCluster
from luna_handlers.service import rerender_policies
from tests.conftest import host_pool, new_database

ACCOUNT = "6d7e4e3a-0b8e-4a4c-9e7a-6c1f0a1b2c3d"


async def test_rows_stored_before_0006_are_rendered_as_a_read_renders_them(
        pg_cluster: PgCluster) -> None:
    """Every row of a database from before 0006 gets the rendering a read makes; rows that
    do not render (corrupted) and dynamic handlers keep NULL; a second pass has nothing to
    do."""
    pool = host_pool(pg_cluster, new_database(pg_cluster))
    policies = {"detect_policy": {"detect_face": 1}, "match_policy": [
        {"candidates": {"origin": "faces"}, "threshold": -0.0}]}
    stored = {f"{number:08d}-0000-4000-8000-000000000000": text for number, text in enumerate(
        [orjson.dumps(policies).decode(), None, "{not json", '{"detect_policy": {"bad": 1}}',
         *[orjson.dumps({"detect_policy": {"detect_face": n % 2}}).decode()
           for n in range(2500)]])}  # over two batches
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn, "0004")
            await conn.execute(sa.text(
                "INSERT INTO handler (handler_id, account_id, policies, is_dynamic) "
                "VALUES (:id, :account, CAST(:policies AS TEXT), CAST(:policies AS TEXT) IS NULL)"),
                [{"id": key, "account": ACCOUNT, "policies": text}
                 for key, text in stored.items()])
            await conn.execute(sa.text(
                "INSERT INTO verifier (verifier_id, account_id, policies) VALUES (:id, :a, :p)"),
                {"id": ACCOUNT, "a": ACCOUNT, "p": '{"verification_threshold": 0.5}'})
            await conn.commit()
            await upgrade(conn)
        assert await rerender_policies(pool) == {"handler": Rerendered(2501, 2),
                                                 "verifier": Rerendered(1, 0)}
        async with pool.engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT handler_id, rendered_policies, rendered_with FROM handler"))).all()
            verifier = (await conn.execute(sa.text(
                "SELECT rendered_policies, rendered_with FROM verifier"))).one()
        rendered = {key: (text, made_with) for key, text, made_with in rows}
        for key, text in stored.items():
            if text is None or key.startswith(("00000002", "00000003")):
                assert rendered[key] == (None, None), key
            else:
                expected = orjson.dumps(normalise_handler_policies(orjson.loads(text)))
                assert rendered[key] == (expected.decode(), HANDLER_RENDERING), key
        assert tuple(verifier) == (orjson.dumps(normalise_verifier_policies(
            {"verification_threshold": 0.5})).decode(), VERIFIER_RENDERING)
        # Only the corrupted rows are read again, and still do not render.
        assert await rerender_policies(pool) == {"handler": Rerendered(0, 2),
                                                 "verifier": Rerendered(0, 0)}
    finally:
        await pool.close()


async def test_a_row_written_meanwhile_keeps_its_own_rendering(pg_cluster: PgCluster) -> None:
    """A handler replaced between the read of its batch and the write back keeps what its
    writer stored; the others of the batch, left alone, are rendered by another version
    (here: another ``made_with``)."""
    dbname = new_database(pg_cluster)
    pool = host_pool(pg_cluster, dbname)
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
        context = DBContext(pool)
        ids = [await context.createHandler({"detect_policy": {"detect_face": 1}}, ACCOUNT)
               for _ in range(3)]
        replaced = ids[1]

        def render_and_meanwhile_replace(text: str) -> str | None:
            # Another writer, on its own connection, between this pass's read and write.
            pg_cluster.psql("UPDATE handler SET policies = '{}', rendered_policies = 'theirs',"
                            " rendered_with = 'theirs', last_update_time = now()"
                            f" WHERE handler_id = '{replaced}'",
                            dbname=dbname)
            return render_stored_handler(text)

        done = await rerender(pool, HANDLER, render_and_meanwhile_replace, "another version")
        assert done == Rerendered(2, 0)
        async with pool.engine.connect() as conn:
            rows: dict[str, str] = dict((await conn.execute(sa.text(
                "SELECT handler_id, rendered_with FROM handler"))).all())
            theirs = (await conn.execute(sa.text(
                "SELECT rendered_policies FROM handler WHERE handler_id = :id"),
                {"id": replaced})).scalar_one()
        assert (theirs, rows[replaced]) == ("theirs", "theirs")
        assert {rows[key] for key in ids if key != replaced} == {"another version"}
    finally:
        await pool.close()
