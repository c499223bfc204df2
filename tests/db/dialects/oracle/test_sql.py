"""Oracle at SQL level, with no Oracle server: the offline DDL script, the models' DDL, and every
statement of the DB context compiled by the dialect the service itself builds for Oracle.

The DB-context statements are the real ones: each method runs on a real PostgreSQL database,
whose engine hands every executed Core statement to ``before_execute``; that statement is then
compiled for Oracle. The pool is presented under the dialect name ``oracle`` so that the DB
context takes its Oracle code path (no NOTIFY wrapper); nothing is faked, PostgreSQL runs all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

import oracledb
import pytest
from sqlalchemy.dialects import oracle as oracle_dialects
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.compiler import SQLCompiler

from luna_handlers.app.params import MAX_IDS
from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db import RenderedPolicies
from luna_handlers.db.context import HANDLER, VERIFIER, DBContext, ListFilters
from luna_handlers.db.database import Session
from luna_handlers.db.dialects import dialect_for
from luna_handlers.db.dialects.oracle.connect import oracle_connect_args, oracle_engine
from luna_handlers.db.dialects.oracle.dsn import oracle_dsn_from_settings
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.prepared import Prepared, Row, Statement
from luna_handlers.db.schema import store_models  # noqa: F401  (the stores' tables)
from luna_handlers.db.schema.models import Base
from luna_handlers.db.schema.offline import offline_sql
from luna_handlers.db.schema.sqlplus import sqlplus_script

DB = DBSettings(db_type="oracle", db_host="ora1", db_port=1521, db_user="luna",
                db_password="pw", db_name="ORCL", connection_pool_size=2, dsn=None)
FAILOVER = FailoverSettings(connect_timeout=3.0, query_timeout=7.5, failure_threshold=3,
                            health_check_interval=1.0, switch_wait=2.0)
# Never connects: only its dialect is used.
ENGINE = oracle_engine(oracle_dsn_from_settings(DB), DB.connection_pool_size, FAILOVER)
ORACLE = ENGINE.sync_engine.dialect

# -- offline DDL -----------------------------------------------------------------------------

HANDLER_DDL = """CREATE TABLE handler (
    handler_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    last_update_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    description VARCHAR2(128 CHAR),
    policies CLOB,
    is_dynamic SMALLINT DEFAULT 0 NOT NULL,
    CONSTRAINT pk_handler PRIMARY KEY (handler_id),
    CONSTRAINT ck_handler_is_dynamic_bool CHECK (is_dynamic IN (0, 1))
)"""
VERIFIER_DDL = """CREATE TABLE verifier (
    verifier_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    last_update_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    description VARCHAR2(128 CHAR),
    policies CLOB,
    version INTEGER DEFAULT 1 NOT NULL,
    CONSTRAINT pk_verifier PRIMARY KEY (verifier_id)
)"""
STORE_DDL = {
    "list": """CREATE TABLE list (
    list_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    description VARCHAR2(128 CHAR),
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    last_update_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    CONSTRAINT pk_list PRIMARY KEY (list_id)
)""",
    "face": """CREATE TABLE face (
    face_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    event_id VARCHAR2(36 CHAR),
    external_id VARCHAR2(128 CHAR),
    user_data VARCHAR2(128 CHAR),
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    avatar_sample_id VARCHAR2(36 CHAR),
    descriptor BLOB,
    descriptor_version INTEGER,
    CONSTRAINT pk_face PRIMARY KEY (face_id)
)""",
    "list_face": """CREATE TABLE list_face (
    list_id VARCHAR2(36 CHAR) NOT NULL,
    face_id VARCHAR2(36 CHAR) NOT NULL,
    link_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    CONSTRAINT pk_list_face PRIMARY KEY (list_id, face_id),
    CONSTRAINT fk_list_face_list FOREIGN KEY(list_id) REFERENCES list (list_id) ON DELETE CASCADE,
    CONSTRAINT fk_list_face_face FOREIGN KEY(face_id) REFERENCES face (face_id) ON DELETE CASCADE
)""",
    "event": """CREATE TABLE event (
    event_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    handler_id VARCHAR2(36 CHAR) NOT NULL,
    source VARCHAR2(128 CHAR),
    tags VARCHAR2(2000 CHAR),
    track_id VARCHAR2(128 CHAR),
    external_id VARCHAR2(128 CHAR),
    user_data VARCHAR2(128 CHAR),
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    end_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    face_id VARCHAR2(36 CHAR),
    detections CLOB,
    matches CLOB,
    top_match CLOB,
    descriptor BLOB,
    descriptor_version INTEGER,
    CONSTRAINT pk_event PRIMARY KEY (event_id)
)""",
    "sample": """CREATE TABLE sample (
    sample_id VARCHAR2(36 CHAR) NOT NULL,
    account_id VARCHAR2(36 CHAR) NOT NULL,
    kind VARCHAR2(16 CHAR) NOT NULL,
    image BLOB NOT NULL,
    create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL,
    CONSTRAINT pk_sample PRIMARY KEY (sample_id)
)""",
}
INDEXES = {
    "handler": ["CREATE INDEX ix_handler_account_time ON handler "
                "(account_id, create_time DESC, handler_id)",
                "CREATE INDEX ix_handler_description ON handler (description)",
                "CREATE INDEX ix_handler_time ON handler (create_time DESC, handler_id)"],
    "verifier": ["CREATE INDEX ix_verifier_account_time ON verifier "
                 "(account_id, create_time DESC, verifier_id)",
                 "CREATE INDEX ix_verifier_description ON verifier (description)",
                 "CREATE INDEX ix_verifier_time ON verifier (create_time DESC, verifier_id)"],
    "list": ["CREATE INDEX ix_list_account_id_create_time ON list (account_id, create_time)"],
    "face": ["CREATE INDEX ix_face_account_id_create_time ON face (account_id, create_time)"],
    "list_face": ["CREATE INDEX ix_list_face_face_id ON list_face (face_id)"],
    "event": ["CREATE INDEX ix_event_account_id_create_time ON event (account_id, create_time)",
              "CREATE INDEX ix_event_account_id_handler_id_create_time ON event "
              "(account_id, handler_id, create_time)",
              "CREATE INDEX ix_event_face_id ON event (face_id)"],
    "sample": [],
}
TO_0003 = "UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002'"
STORE_TABLES = ("list", "face", "list_face", "event", "sample")
STORE_SECTION = "".join(f"{STORE_DDL[name]};\n\n" for name in STORE_TABLES) + "".join(
    f"{index};\n\n" for name in STORE_TABLES for index in INDEXES[name])
EXPECTED_SCRIPT = f"""\
-- luna-handlers database schema for Oracle Database 19c or newer, up to revision 0007.
-- Made by 'luna-handlers db sql --db-type oracle'. Run it as is, as the schema owner, in
-- SQL*Plus or SQLcl: sqlplus user/password@//host:1521/service @luna_handlers.sql
-- Every SQL statement ends with ';' (a PL/SQL block would end with '/' on its own line).
-- Oracle commits each DDL statement by itself: the script stops at the first error, and
-- alembic_version then names the last revision completed; drop what the failed revision
-- created, then run the rest from its "-- Running upgrade" line.
WHENEVER SQLERROR EXIT FAILURE ROLLBACK

CREATE TABLE alembic_version (
    version_num VARCHAR2(32 CHAR) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001

{HANDLER_DDL};

CREATE INDEX ix_handler_account_id_create_time ON handler (account_id, create_time);

{INDEXES["handler"][1]};

INSERT INTO alembic_version (version_num) VALUES ('0001');

COMMIT;

-- Running upgrade 0001 -> 0002

{VERIFIER_DDL};

CREATE INDEX ix_verifier_account_id_create_time ON verifier (account_id, create_time);

{INDEXES["verifier"][1]};

UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001';

COMMIT;

-- Running upgrade 0002 -> 0003

{STORE_SECTION}{TO_0003};

COMMIT;

-- Running upgrade 0003 -> 0004

DROP INDEX ix_handler_account_id_create_time;

{INDEXES["handler"][0]};

{INDEXES["handler"][2]};

DROP INDEX ix_verifier_account_id_create_time;

{INDEXES["verifier"][0]};

{INDEXES["verifier"][2]};

UPDATE alembic_version SET version_num='0004' WHERE alembic_version.version_num = '0003';

COMMIT;

-- Running upgrade 0004 -> 0005

UPDATE alembic_version SET version_num='0005' WHERE alembic_version.version_num = '0004';

COMMIT;

-- Running upgrade 0005 -> 0006

ALTER TABLE handler ADD rendered_policies CLOB;

ALTER TABLE handler ADD rendered_with VARCHAR2(32 CHAR);

ALTER TABLE verifier ADD rendered_policies CLOB;

ALTER TABLE verifier ADD rendered_with VARCHAR2(32 CHAR);

UPDATE alembic_version SET version_num='0006' WHERE alembic_version.version_num = '0005';

COMMIT;

-- Running upgrade 0006 -> 0007

UPDATE alembic_version SET version_num='0007' WHERE alembic_version.version_num = '0006';

COMMIT;
"""


def rstripped(text: str) -> str:
    # SQLAlchemy ends column lines with "NOT NULL, " - trailing blanks mean nothing to Oracle.
    return "\n".join(line.rstrip() for line in text.split("\n"))


def sqlplus_read(script: str) -> list[str]:
    """Split a script the way SQL*Plus (default settings) reads it; fail where it would not."""
    statements: list[str] = []
    buffer: list[str] = []
    for number, line in enumerate(script.split("\n"), 1):
        if not buffer and (not line.strip() or line.startswith("--")
                           or line.startswith("WHENEVER SQLERROR ")):
            continue  # blank line, comment or SQL*Plus command between statements
        if line == "/":
            assert buffer and re.match(r"(DECLARE|BEGIN)\b", buffer[0]), f"stray '/' {number}"
            statements.append("\n".join(buffer))
            buffer = []
            continue
        assert line.strip(), f"blank line {number} inside a statement ends it unrun"
        buffer.append(line)
        if line.endswith(";") and not re.match(r"(DECLARE|BEGIN)\b", buffer[0]):
            statements.append("\n".join(buffer)[:-1])
            buffer = []
    assert not buffer, "the script ends inside a statement"
    return statements


def test_offline_script_is_the_reviewed_one() -> None:
    assert rstripped(offline_sql("oracle")) == EXPECTED_SCRIPT


def test_offline_script_runs_as_is_in_sqlplus() -> None:
    statements = sqlplus_read(offline_sql("oracle"))
    assert len(statements) == 42  # 28 DDL, 7 version-table changes, 7 COMMIT
    for index, statement in enumerate(statements):
        without_literals = re.sub(r"'(?:[^']|'')*'", "''", statement)
        assert not re.search(r":\w", without_literals), f"bind variable in {statement!r}"
        assert not statement.rstrip().endswith((";", "/"))  # terminated once, not twice
        if re.match(r"(INSERT INTO|UPDATE) alembic_version", statement):
            assert statements[index + 1] == "COMMIT"


def test_sqlplus_conventions_for_what_later_revisions_may_hold() -> None:
    alembic_out = ("-- Running upgrade 0002 -> 0003\n\nALTER TABLE handler ADD x INTEGER\n\n/\n\n"
                   "BEGIN\n    EXECUTE IMMEDIATE 'DROP INDEX ix_y';\nEND;\n\n/\n\n")
    script = sqlplus_script(alembic_out)
    assert script.endswith("-- Running upgrade 0002 -> 0003\n\nALTER TABLE handler ADD x INTEGER;"
                           "\n\nBEGIN\n    EXECUTE IMMEDIATE 'DROP INDEX ix_y';\nEND;\n/\n")
    assert sqlplus_read(script) == ["ALTER TABLE handler ADD x INTEGER",
                                    "BEGIN\n    EXECUTE IMMEDIATE 'DROP INDEX ix_y';\nEND;"]
    with pytest.raises(ValueError, match="bind variable"):
        sqlplus_script("UPDATE handler SET description = :d\n\n/\n\n")
    with pytest.raises(ValueError, match="blank line"):
        sqlplus_script("CREATE TABLE t (\n    x INTEGER\n\n)\n\n/\n\n")
    assert sqlplus_script("UPDATE handler SET description = 'a:b'\n\n/\n").endswith(
        "UPDATE handler SET description = 'a:b';\n")  # a colon in a literal is no bind


def test_postgres_offline_sql_keeps_its_own_form() -> None:
    ddl = offline_sql("postgres")
    assert ddl.startswith("BEGIN;") and ddl.count("COMMIT;") == 7  # one per revision
    assert "WHENEVER" not in ddl and "\n/\n" not in ddl


def with_rendering(ddl: str) -> str:
    """A 0001/0002 CREATE TABLE with the columns 0006 adds, where the models have them."""
    head, constraints = ddl.split("\n    CONSTRAINT", 1)
    return (f"{head}\n    rendered_policies CLOB,\n    rendered_with VARCHAR2(32 CHAR),"
            f"\n    CONSTRAINT{constraints}")


def test_models_compile_to_the_migrated_ddl() -> None:
    offline_dialect = oracle_dialects.dialect(**dialect_for("oracle").engine_options)  # type: ignore[no-untyped-call]
    for dialect in (ORACLE, offline_dialect):
        stores = [(Base.metadata.tables[name], STORE_DDL[name]) for name in STORE_TABLES]
        for table, ddl in ((HANDLER, with_rendering(HANDLER_DDL)),
                           (VERIFIER, with_rendering(VERIFIER_DDL)), *stores):
            create = str(CreateTable(table).compile(dialect=dialect)).strip()
            assert rstripped(create.replace("\t", "    ")) == ddl  # Alembic's tab expansion
            assert sorted(str(CreateIndex(index).compile(dialect=dialect))
                          for index in table.indexes) == INDEXES[table.name]


def test_identifiers_fit_oracle() -> None:
    script = offline_sql("oracle")
    names = set(re.findall(r"(?:CREATE TABLE|CONSTRAINT|CREATE INDEX) (\w+)", script))
    names |= set(re.findall(r"(?m)^    (?!CONSTRAINT )(\w+) ", script))  # columns
    assert {"handler", "verifier", "is_dynamic", "ck_handler_is_dynamic_bool"} <= names
    assert max(map(len, names)) <= 128  # Oracle 12.2+ with COMPATIBLE >= 12.2, so 19c
    # Longer than the 30 of Oracle < 12.2: fine on 19c, reviewed here so none adds up unseen.
    assert {n for n in names if len(n) > 30} == {
        "ix_handler_account_id_create_time", "ix_verifier_account_id_create_time",
        "ix_event_account_id_create_time", "ix_event_account_id_handler_id_create_time"}
    # Neither reserved nor mixed case: stored in upper case, usable unquoted from SQL*Plus.
    preparer = ORACLE.identifier_preparer
    assert not [n for n in names if preparer._requires_quotes(n)]


# -- the DB context's statements -------------------------------------------------------------

class RecordingSession:
    """A session that records the Oracle form of each statement it runs, with its values."""

    def __init__(self, session: Session, executed: list[tuple[Statement, dict[str, Any]]]
                 ) -> None:
        self.session = session
        self.executed = executed

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        self.executed.append((prepared.statement("oracle"), dict(params)))
        return await self.session.rows(prepared, params)

    async def begin(self) -> None:
        await self.session.begin()

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()

    async def release(self) -> None:
        await self.session.release()

    async def discard(self) -> None:
        await self.session.discard()


class OracleCodePath:
    """A real PostgreSQL pool under the dialect name ``oracle``, recording what it runs."""

    def __init__(self, pool: HostPool) -> None:
        self.pool = pool
        self.executed: list[tuple[Statement, dict[str, Any]]] = []

    @property
    def dialect_name(self) -> str:
        return "oracle"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        async with self.pool.read() as session:
            yield RecordingSession(session, self.executed)

    @asynccontextmanager
    async def scan(self) -> AsyncIterator[Session]:
        async with self.pool.scan() as session:
            yield RecordingSession(session, self.executed)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Session]:
        async with self.pool.write() as session:
            yield RecordingSession(session, self.executed)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self.pool.transaction() as session:
            yield RecordingSession(session, self.executed)

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.pool.connection()

    def status(self) -> dict[str, Any]:
        return self.pool.status()

    def active_host(self) -> tuple[HostPort, int]:
        return self.pool.active_host()

    def changes(self, on_change: Callable[[str], None], on_reset: Callable[[], None],
                name: str | None = None) -> None:
        return None  # Oracle sends no change notifications

    async def close(self) -> None:
        pass


ACC = "acc-1"
T1, T2 = datetime(2024, 1, 1), datetime(2025, 1, 1)
FILTERS = ListFilters(account_id=ACC, description="50%_off/x", ids=["i1", "i2"],
                      create_time__gte=T1, create_time__lt=T2, is_dynamic=True)
# The filters in use name their binds; the ids are one expanding IN list (at most MAX_IDS).
FILTER_PARAMS = {"account_id": ACC, "description": "%50/%/_off//x%", "create_time__gte": T1,
                 "create_time__lt": T2, "ids_1": "i1", "ids_2": "i2"}
H_SELECT = ("SELECT handler.handler_id, handler.account_id, handler.create_time, "
            "handler.last_update_time, handler.description, handler.policies, "
            "handler.is_dynamic, handler.rendered_policies, handler.rendered_with FROM handler")
V_SELECT = ("SELECT verifier.verifier_id, verifier.account_id, verifier.create_time, "
            "verifier.last_update_time, verifier.description, verifier.policies, "
            "verifier.version, verifier.rendered_policies, verifier.rendered_with FROM verifier")
# LIKE is escaped with '/' (the pattern is made in Python); booleans are the numbers 0 and 1.
H_FILTERS = ("WHERE handler.account_id = :account_id AND handler.description LIKE :description "
             "ESCAPE '/' AND handler.handler_id IN (:ids_1, :ids_2) AND handler.create_time >= "
             ":create_time__gte AND handler.create_time < :create_time__lt AND "
             "handler.is_dynamic = :is_dynamic")
V_FILTERS = ("WHERE verifier.account_id = :account_id AND verifier.description LIKE :description "
             "ESCAPE '/' AND verifier.verifier_id IN (:ids_1, :ids_2) AND verifier.create_time >= "
             ":create_time__gte AND verifier.create_time < :create_time__lt")
# Fixed-shape statements (luna_handlers.db.prepared) name their binds: object_id, account_id,
# v_<column> for the values; changes return the changed id, Oracle's RETURNING ... INTO.
H_BY_ID = "WHERE handler.handler_id = :object_id AND handler.account_id = :account_id"
V_BY_ID = "WHERE verifier.verifier_id = :object_id AND verifier.account_id = :account_id"
H_IDS: dict[str, object] = {"object_id": "<handler>", "account_id": ACC}
V_IDS: dict[str, object] = {"object_id": "<verifier>", "account_id": ACC}
# Paging is OFFSET/FETCH (Oracle 12c+, so 19c) with bound numbers: one statement per filter
# set, whatever the page.
PAGE = "OFFSET :page_offset ROWS FETCH FIRST :page_limit ROWS ONLY"


def near_page_of(table: str, select: str, where: str) -> str:
    """A page near the start as sent: straight from the list index."""
    return f"{select} {where} ORDER BY {table}.create_time DESC, {table}.{table}_id {PAGE}"


def page_of(table: str, select: str, where: str) -> str:
    """A deep page as sent: the page's ids in a subquery (a deferred join), then the rows."""
    order = f"ORDER BY {table}.create_time DESC, {table}.{table}_id"
    return (f"{select} JOIN (SELECT {table}.{table}_id AS page_id FROM {table} {where} "
            f"{order} {PAGE}) page ON {table}.{table}_id = page.page_id {order}")


# The policies rendering stored with the policies (CLOB): NULL when none is given.
RENDERED = RenderedPolicies('{"a":1,"more":0}', "made-with")
RENDERED_VALUES = {"v_rendered_policies": RENDERED.json, "v_rendered_with": RENDERED.made_with}
NO_RENDERING = {"v_rendered_policies": None, "v_rendered_with": None}
H_INSERT = ("INSERT INTO handler (handler_id, account_id, description, policies, is_dynamic, "
            "rendered_policies, rendered_with) VALUES (:v_handler_id, :v_account_id, "
            ":v_description, :v_policies, :v_is_dynamic, :v_rendered_policies, "
            ":v_rendered_with)")
H_UPDATE = ("UPDATE handler SET last_update_time=SYS_EXTRACT_UTC(SYSTIMESTAMP), "
            "description=:v_description, policies=:v_policies, is_dynamic=:v_is_dynamic, "
            f"rendered_policies=:v_rendered_policies, rendered_with=:v_rendered_with {H_BY_ID} "
            "RETURNING handler.handler_id INTO :ret_0")

Call = Callable[[DBContext, dict[str, str]], Awaitable[object]]
CASES: dict[str, tuple[Call, str, dict[str, object]]] = {
    "createHandler": (
        lambda c, _i: c.createHandler({"a": 1}, ACC, "d", rendered=RENDERED),
        H_INSERT,
        {"v_handler_id": "<new>", "v_account_id": ACC, "v_description": "d",
         "v_policies": '{"a":1}', "v_is_dynamic": False, **RENDERED_VALUES}),
    "createHandler-dynamic": (
        lambda c, _i: c.createHandler({"a": 1}, ACC, isDynamic=True, rendered=RENDERED),
        H_INSERT,
        {"v_handler_id": "<new>", "v_account_id": ACC, "v_description": "", "v_policies": None,
         "v_is_dynamic": True, **NO_RENDERING}),
    "getHandler": (lambda c, i: c.getHandler(i["handler"], ACC), f"{H_SELECT} {H_BY_ID}", H_IDS),
    "getHandler-root": (
        lambda c, i: c.getHandler(i["handler"]),
        f"{H_SELECT} WHERE handler.handler_id = :object_id", {"object_id": "<handler>"}),
    "getHandlers": (
        lambda c, _i: c.getHandlers(FILTERS, page=31, pageSize=10),
        page_of("handler", H_SELECT, H_FILTERS),
        {**FILTER_PARAMS, "is_dynamic": 1, "page_offset": 300, "page_limit": 10}),
    "getHandlers-search": (  # a description search keeps the deferred join on every page
        lambda c, _i: c.getHandlers(FILTERS, page=3, pageSize=10),
        page_of("handler", H_SELECT, H_FILTERS),
        {**FILTER_PARAMS, "is_dynamic": 1, "page_offset": 20, "page_limit": 10}),
    "getHandlers-static": (
        lambda c, _i: c.getHandlers(ListFilters(is_dynamic=False)),
        near_page_of("handler", H_SELECT, "WHERE handler.is_dynamic = :is_dynamic"),
        {"is_dynamic": 0, "page_offset": 0, "page_limit": 10}),
    "getHandlersCount": (
        lambda c, _i: c.getHandlersCount(FILTERS),
        f"SELECT count(*) AS total FROM handler {H_FILTERS}", {**FILTER_PARAMS, "is_dynamic": 1}),
    "doesHandlerExist": (
        lambda c, i: c.doesHandlerExist(i["handler"], ACC),
        f"SELECT handler.handler_id FROM handler {H_BY_ID}", H_IDS),
    "putHandler": (
        lambda c, i: c.putHandler(i["handler"], {"b": 2}, "e", ACC, rendered=RENDERED),
        H_UPDATE,
        {"v_description": "e", "v_policies": '{"b":2}', "v_is_dynamic": False,
         **RENDERED_VALUES, **H_IDS, "ret_0": None}),
    "putHandler-dynamic": (
        lambda c, i: c.putHandler(i["handler"], None, "e", ACC, isDynamic=True),
        H_UPDATE,
        {"v_description": "e", "v_policies": None, "v_is_dynamic": True, **NO_RENDERING,
         **H_IDS, "ret_0": None}),
    "deleteHandler": (
        lambda c, i: c.deleteHandler(i["missing"], ACC),
        f"DELETE FROM handler {H_BY_ID} RETURNING handler.handler_id INTO :ret_0",
        {**H_IDS, "object_id": "<missing>", "ret_0": None}),
    "createVerifier": (
        lambda c, _i: c.createVerifier({"a": 1}, ACC, "d", rendered=RENDERED),
        "INSERT INTO verifier (verifier_id, account_id, description, policies, version, "
        "rendered_policies, rendered_with) VALUES (:v_verifier_id, :v_account_id, "
        ":v_description, :v_policies, :v_version, :v_rendered_policies, :v_rendered_with)",
        {"v_verifier_id": "<new>", "v_account_id": ACC, "v_description": "d",
         "v_policies": '{"a":1}', "v_version": 1, **RENDERED_VALUES}),
    "getVerifier": (
        lambda c, i: c.getVerifier(i["verifier"], ACC), f"{V_SELECT} {V_BY_ID}", V_IDS),
    "getVerifiers": (
        lambda c, _i: c.getVerifiers(FILTERS, page=2, pageSize=5),  # is_dynamic: handlers only
        page_of("verifier", V_SELECT, V_FILTERS),
        {**FILTER_PARAMS, "page_offset": 5, "page_limit": 5}),
    "getVerifiers-near": (
        lambda c, _i: c.getVerifiers(ListFilters(account_id=ACC), page=2, pageSize=5),
        near_page_of("verifier", V_SELECT, "WHERE verifier.account_id = :account_id"),
        {"account_id": ACC, "page_offset": 5, "page_limit": 5}),
    "getVerifierCount": (
        lambda c, _i: c.getVerifierCount(ListFilters()), "SELECT count(*) AS total FROM verifier",
        {}),
    "checkVerifier": (
        lambda c, i: c.checkVerifier(i["verifier"]),
        "SELECT verifier.verifier_id FROM verifier WHERE verifier.verifier_id = :object_id",
        {"object_id": "<verifier>"}),
    "putVerifier": (
        lambda c, i: c.putVerifier(i["verifier"], {"x": 1}, "dd", ACC),
        # One statement: the row lock serialises concurrent replaces; the new version comes
        # back through an OUT bind, Oracle's form of RETURNING.
        "UPDATE verifier SET last_update_time=SYS_EXTRACT_UTC(SYSTIMESTAMP), "
        "description=:v_description, policies=:v_policies, "
        f"version=(verifier.version + :version_1), rendered_policies=:v_rendered_policies, "
        f"rendered_with=:v_rendered_with {V_BY_ID} RETURNING verifier.version INTO :ret_0",
        {"v_description": "dd", "v_policies": '{"x":1}', "version_1": 1, **NO_RENDERING,
         **V_IDS, "ret_0": None}),
    "deleteVerifier": (
        lambda c, i: c.deleteVerifier(i["missing"], ACC),
        f"DELETE FROM verifier {V_BY_ID} RETURNING verifier.verifier_id INTO :ret_0",
        {**V_IDS, "object_id": "<missing>", "ret_0": None}),
}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
async def oracle_path(migrated_pool: HostPool) -> OracleCodePath:
    return OracleCodePath(migrated_pool)


@pytest.fixture(scope="module")
async def ids(oracle_path: OracleCodePath) -> dict[str, str]:
    ctx = DBContext(oracle_path)
    return {"handler": await ctx.createHandler({"a": 1}, ACC),
            "verifier": await ctx.createVerifier({"a": 1}, ACC),
            "missing": str(uuid.uuid4())}


async def run_one(path: OracleCodePath, call: Call, ids: dict[str, str]
                  ) -> tuple[SQLCompiler, str, dict[str, Any]]:
    """Run one DB-context call; compile the one statement it executed for Oracle: the
    compiled form, and its SQL and parameters as sent for the values it was given (with an
    IN list expanded, as SQLAlchemy does at execution)."""
    path.executed.clear()
    await call(DBContext(path), ids)
    assert len(path.executed) == 1
    statement, given = path.executed[0]
    compiled = statement.compile(dialect=ORACLE)
    assert isinstance(compiled, SQLCompiler)
    state = compiled.construct_expanded_state(given)
    return compiled, state.statement, dict(state.parameters)


def placeholders(params: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    names = {value: f"<{key}>" for key, value in ids.items()}
    return {key: names.get(value, "<new>" if UUID_RE.fullmatch(value) else value)
            if isinstance(value, str) else value for key, value in params.items()}


@pytest.mark.parametrize("case", CASES)
async def test_context_statement_on_oracle(oracle_path: OracleCodePath, ids: dict[str, str],
                                           case: str) -> None:
    call, sql, params = CASES[case]
    compiled, sql_sent, bound = await run_one(oracle_path, call, ids)
    text = " ".join(sql_sent.split())
    assert text == sql
    assert placeholders(bound, ids) == params
    # A CLOB can be neither compared nor sorted (ORA-00932): policies only ever SET or SELECTed.
    assert not re.search(r"(WHERE|ORDER BY).*policies", text)
    assert max(map(len, compiled.bind_names.values()), default=0) <= 30  # every version


NVARCHAR = oracledb.DB_TYPE_NVARCHAR


def input_sizes(compiled: SQLCompiler) -> dict[str, Any]:
    """What the oracledb dialect passes to ``cursor.setinputsizes()``, by bind name."""
    lookup = compiled._get_set_input_sizes_lookup()  # type: ignore[no-untyped-call]
    return {compiled.bind_names[bind]: dbtype
            for bind, dbtype in lookup.items() if dbtype is not None}


@pytest.mark.parametrize(("case", "expected"), [
    ("createHandler", {"v_policies": NVARCHAR, "v_rendered_policies": NVARCHAR}),
    ("putHandler", {"v_policies": NVARCHAR, "v_rendered_policies": NVARCHAR}),
    ("createVerifier", {"v_policies": NVARCHAR, "v_rendered_policies": NVARCHAR,
                        "v_version": int}),
    ("putVerifier", {"v_policies": NVARCHAR, "v_rendered_policies": NVARCHAR,
                     "version_1": int, "ret_0": int}),
    ("getHandlers", {"create_time__gte": oracledb.DB_TYPE_TIMESTAMP,
                     "create_time__lt": oracledb.DB_TYPE_TIMESTAMP}),
])
async def test_bind_types(oracle_path: OracleCodePath, ids: dict[str, str], case: str,
                          expected: dict[str, Any]) -> None:
    """policies (and its rendering) go as a string bind, never a temporary CLOB: SQLAlchemy 2
    binds Text as DB_TYPE_NVARCHAR (sqlalchemy#7494, agreed with python-oracledb, whose thin
    mode sends a value over 32 KiB as a LONG-style bind, which Oracle takes for a CLOB column
    in INSERT VALUES and UPDATE SET, nowhere else: hence no comparison of policies). Times go as
    TIMESTAMP, not DATE, so the create_time index stays usable."""
    compiled, _, _ = await run_one(oracle_path, CASES[case][0], ids)
    assert input_sizes(compiled) == expected
    assert not {oracledb.DB_TYPE_CLOB, oracledb.DB_TYPE_NCLOB} & set(
        input_sizes(compiled).values())


def test_booleans_are_0_and_1() -> None:
    column_type = HANDLER.c.is_dynamic.type
    bind = column_type.bind_processor(ORACLE)
    result = column_type.result_processor(ORACLE, None)
    assert bind is not None and (bind(True), bind(False)) == (1, 0)
    assert result is not None and (result(1), result(0)) == (True, False)
    assert ORACLE.supports_native_boolean is False  # the 19c form, pinned for 23 too


async def test_id_filter_stays_within_oracles_in_list_limit(oracle_path: OracleCodePath,
                                                            ids: dict[str, str]) -> None:
    # ORA-01795: at most 1000 expressions in a list; the API caps the ids filter to match.
    many = ListFilters(ids=[str(uuid.uuid4()) for _ in range(MAX_IDS)])
    _, _, bound = await run_one(oracle_path, lambda c, _i: c.getHandlers(many), ids)
    assert MAX_IDS <= 1000 and len([name for name in bound if name.startswith("ids_")]) == MAX_IDS


def test_engine_hands_the_whole_target_to_oracledb() -> None:
    # The URL names only the driver, so the connect arguments are the driver's only input.
    assert ORACLE.create_connect_args(ENGINE.sync_engine.url) == ([], {})
    assert (ORACLE.driver, ORACLE.is_async) == ("oracledb", True)
    assert oracle_connect_args(oracle_dsn_from_settings(DB), FAILOVER) == {
        "dsn": "(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCP)(HOST=ora1)(PORT=1521)))"
               "(CONNECT_DATA=(SID=ORCL)))",
        "user": "luna", "password": "pw", "tcp_connect_timeout": 3.0}
    # Our connect hook must run after the dialect's first-connect initialize(), which would
    # switch Oracle 23 to native BOOLEAN: listeners run in the order they were added.
    listeners = [fn.__qualname__ for fn in ENGINE.sync_engine.pool.dispatch.connect]
    assert listeners[-1] == "oracle_engine.<locals>.on_connect"
    assert any(name.startswith("only_once") for name in listeners[:-1])


# -- the stores' statements ----------------------------------------------------------------

async def test_store_statements_compile_for_oracle(oracle_path: OracleCodePath) -> None:
    """Every statement of the stores, made by a run of each method on the Oracle code path,
    compiles for Oracle with short bind names; LOB columns (CLOB JSON, BLOB descriptors and
    images) are only ever inserted or selected, never compared or sorted (ORA-00932)."""
    from luna_handlers.db import (
        EventFilters,
        EventMatchFilters,
        EventWrite,
        FaceMatchFilters,
        FaceWrite,
        SampleWrite,
    )

    ctx = DBContext(oracle_path)
    oracle_path.executed.clear()
    list_id = await ctx.createList(ACC, "d")
    sample = SampleWrite("face_warp", b"jpeg")
    face = FaceWrite(b"\0" * 512, 1, list_ids=(list_id,), avatar_sample_id=sample.sample_id)
    await ctx.saveEvents(ACC, [EventWrite(handler_id="h", tags=("t",), face=face,
                                          samples=(sample,), descriptor=b"\0" * 512,
                                          descriptor_version=1)])
    await ctx.getList(list_id, ACC)
    await ctx.getLists(ListFilters(account_id=ACC, ids=[list_id]))
    await ctx.getFace(face.face_id, ACC)
    await ctx.getFaces(ACC, list_id, [face.face_id])
    await ctx.countFaces(ACC, list_id)
    await ctx.attachFacesToList(list_id, [face.face_id], ACC)
    await ctx.detachFacesFromList(list_id, [face.face_id], ACC)
    await ctx.getEvents(EventFilters(account_id=ACC, handler_id="h", source="s", tags=["t"],
                                     face_id=face.face_id, create_time__gte=T1,
                                     create_time__lt=T2))
    await ctx.matchFaces(ACC, b"\0" * 512, FaceMatchFilters(list_id=list_id, face_ids=["f"],
                                                            create_time__gte=T1), 5, 1)
    await ctx.matchEvents(ACC, b"\0" * 512, EventMatchFilters(handler_ids=["h"],
                                                              create_time__lt=T2), 5, 1)
    await ctx.getFaceDescriptors(ACC, [face.face_id])
    await ctx.getSample(sample.sample_id, ACC)
    await ctx.deleteFaces([face.face_id], ACC)
    await ctx.deleteList(list_id, ACC)
    texts = []
    for statement, given in oracle_path.executed:
        compiled = statement.compile(dialect=ORACLE)
        assert isinstance(compiled, SQLCompiler)
        text = " ".join(compiled.construct_expanded_state(given).statement.split())
        texts.append(text)
        assert max(map(len, compiled.bind_names.values()), default=0) <= 30
        for clause in re.findall(r"(?:WHERE|ORDER BY) (.*)", text):
            assert not re.search(r"\.(detections|matches|top_match|descriptor|image)\b",
                                 clause), text
        assert " LIMIT " not in text
    link = next(text for text in texts if text.startswith("INSERT INTO list_face"))
    # No MERGE or ON CONFLICT on Oracle: a link already there is skipped by NOT EXISTS (a
    # named bind may appear twice in one SQL statement).
    assert link == ("INSERT INTO list_face (list_id, face_id) SELECT :list_id AS anon_1, "
                    ":face_id AS anon_2 FROM dual WHERE NOT (EXISTS (SELECT * FROM list_face "
                    "WHERE list_face.list_id = :list_id AND list_face.face_id = :face_id))")
    page = next(text for text in texts if text.startswith("SELECT event.event_id"))
    assert page.endswith("ORDER BY event.create_time DESC, event.event_id "
                         "OFFSET :page_offset ROWS FETCH FIRST :page_limit ROWS ONLY")
    assert "event.tags LIKE :tag_0 ESCAPE '/'" in page
