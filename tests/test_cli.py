"""The ``luna-handlers`` command: db sql, db dsn and config errors (in-process, table-driven)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from luna_handlers.cli import main
from luna_handlers.config import load_settings
from luna_handlers.pgserver.cluster import PgCluster
from luna_handlers.service import check_schema
from tests.conftest import TEST_PASSWORD, TEST_USER, new_database

SECRET = "S3cr3t!x"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("db_type", "marker"), [
    ("postgres", "is_dynamic BOOLEAN DEFAULT false NOT NULL"),
    ("oracle", "policies CLOB"),
])
def test_db_sql(capsys: pytest.CaptureFixture[str], db_type: str, marker: str) -> None:
    status, out, err = run(capsys, "db", "sql", "--db-type", db_type)
    assert status == 0 and err == ""
    assert marker in out and "CREATE TABLE verifier" in out


def test_db_dsn_explains_the_documented_form(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "db", "dsn",
                         f"luna:{SECRET}@pg01:5432,pg02:6432/luna_handlers?connect_timeout=5")
    assert status == 0
    assert json.loads(out) == {
        "db_type": "postgres",
        "hosts": [{"host": "pg01", "port": 5432}, {"host": "pg02", "port": 6432}],
        "user": "luna", "password": "***", "dbname": "luna_handlers",
        "options": {"connect_timeout": "5"}}
    assert SECRET not in out


def test_db_dsn_fills_from_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {
        "db_user": "svc", "db_password": "", "db_port": 6543, "dsn": "pg01,pg02:7000/h"}}))
    status, out, _ = run(capsys, "db", "dsn", "--config", str(config))
    assert status == 0
    assert json.loads(out) == {
        "db_type": "postgres",
        "hosts": [{"host": "pg01", "port": 6543}, {"host": "pg02", "port": 7000}],
        "user": "svc", "password": None, "dbname": "h", "options": {}}


@pytest.mark.parametrize("dsn", [
    f"luna:{SECRET}@pg01:0/db", f"luna:{SECRET}@pg01,,pg02/db", f"luna:{SECRET}@[::1/db",
    f"luna:{SECRET}@pg01/db?conect_timeout=5", f"luna:{SECRET}%zz@pg01/db",
], ids=["port-0", "empty-host", "unclosed-bracket", "unknown-option", "bad-escape"])
def test_db_dsn_rejects_bad_dsn_in_one_line(capsys: pytest.CaptureFixture[str],
                                            dsn: str) -> None:
    status, out, err = run(capsys, "db", "dsn", dsn)
    assert status == 2 and out == ""
    assert err.startswith("luna-handlers: invalid DSN at position ")
    assert err.count("\n") == 1 and SECRET not in err


def test_unknown_option_lists_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "db", "dsn", "pg01/db?conect_timeout=5")
    assert "connect_timeout" in err and "target_session_attrs" in err


@pytest.mark.parametrize("command", [["db", "dsn"], ["db", "upgrade"], ["serve"]])
def test_bad_config_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          command: list[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {"db_port": 99999,
                                                       "db_password": SECRET}}))
    status, out, err = run(capsys, *command, "--config", str(config))
    assert status == 2 and out == ""
    assert err == ("luna-handlers: config error: LUNA_HANDLERS_DB.db_port: must be a port "
                   "number in 1..65535, got 99999\n")


def test_blank_api_token_is_a_config_error(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"API": {"token": " "}}))
    status, out, err = run(capsys, "serve", "--config", str(config))
    assert status == 2 and out == ""
    assert err == ("luna-handlers: config error: API.token: must not be empty or blank "
                   "(leave it out to turn auth off)\n")


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "db", "upgrade", "--config", str(tmp_path / "nope.json"))
    assert status == 2 and "cannot read" in err and err.count("\n") == 1


def test_db_dsn_explains_oracle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {
        "db_type": "oracle", "db_password": SECRET, "dsn": "ora1,ora2:1522/lunapdb"}}))
    status, out, _ = run(capsys, "db", "dsn", "--config", str(config))
    assert status == 0 and SECRET not in out
    explained = json.loads(out)
    assert explained["db_type"] == "oracle"
    assert explained["hosts"] == [{"host": "ora1", "port": 1522}, {"host": "ora2", "port": 1522}]
    assert explained["service_name"] == "lunapdb" and explained["password"] == "***"


def test_db_upgrade_migrates_the_configured_database(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_cluster: PgCluster) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {
        "db_host": pg_cluster.host, "db_port": pg_cluster.port, "db_user": TEST_USER,
        "db_password": TEST_PASSWORD, "db_name": new_database(pg_cluster)}}))
    status, out, err = run(capsys, "db", "upgrade", "--config", str(config))
    assert (status, out) == (0, "database migrated to the newest schema; stored policies"
                                " rendered anew: 0 handlers, 0 verifiers\n")
    assert TEST_PASSWORD not in out + err
    settings = load_settings(config, {})
    asyncio.run(check_schema(settings))  # what serve checks before it starts
    # Running it again is harmless.
    assert run(capsys, "db", "upgrade", "--config", str(config))[0] == 0


def test_db_upgrade_refused_by_the_database_is_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_cluster: PgCluster) -> None:
    # A login that may connect but not create tables: the first CREATE of the migration fails.
    dbname = new_database(pg_cluster)
    pg_cluster.psql("DROP ROLE IF EXISTS reader; CREATE ROLE reader LOGIN PASSWORD 'reader-pw'")
    pg_cluster.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", dbname)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {
        "db_host": pg_cluster.host, "db_port": pg_cluster.port, "db_user": "reader",
        "db_password": "reader-pw", "db_name": dbname}}))
    status, out, err = run(capsys, "db", "upgrade", "--config", str(config))
    assert status == 1 and out == ""
    assert err.startswith("luna-handlers: Database ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "reader-pw" not in err
    assert "SQLSTATE 42501" in err  # the cause, in the driver's words
