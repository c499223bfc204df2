"""Configuration loading: precedence, defaults and every bad-config case (table-driven)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from luna_handlers.config import ConfigError, FailoverSettings, load_settings

SECRET = "Sup3r-S3cret"


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_defaults_without_anything() -> None:
    settings = load_settings(environ={})
    db = settings.db
    assert (db.db_type, db.db_host, db.db_port, db.db_user, db.db_password, db.db_name,
            db.connection_pool_size, db.dsn) == (
        "postgres", "127.0.0.1", 5432, "luna", "luna", "luna_handlers", 10, None)
    assert not settings.db_configured
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 5090)
    assert settings.failover.failure_threshold == 3
    assert settings.failover == FailoverSettings(
        connect_timeout=2.0, query_timeout=30.0, failure_threshold=3, health_check_interval=0.5,
        switch_wait=5.0, health_check_timeout=1.0)


def test_oracle_default_port(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, {"LUNA_HANDLERS_DB": {"db_type": "oracle"}}), {})
    assert settings.db.db_port == 1521 and settings.db_configured


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    path = write(tmp_path, {"LUNA_HANDLERS_DB": {"db_host": "file", "db_port": 1111},
                            "LUNA_HANDLERS_SERVER": {"port": 1000, "host": "0.0.0.0"}})
    settings = load_settings(
        path, {"LUNA_HANDLERS_DB__DB_PORT": "2222", "LUNA_HANDLERS_SERVER__PORT": "2000"},
        {"LUNA_HANDLERS_SERVER.port": 3000})
    assert settings.db.db_host == "file"
    assert settings.db.db_port == 2222
    assert settings.server.port == 3000
    assert settings.server.host == "0.0.0.0"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, {"LUNA_HANDLERS_DB": {"dsn": "pg01,pg02/luna_handlers"}})
    settings = load_settings(environ={"LUNA_HANDLERS_CONFIG": str(path)})
    assert settings.db.dsn == "pg01,pg02/luna_handlers" and settings.db_configured


def test_env_alone_configures_the_database() -> None:
    assert load_settings(environ={"LUNA_HANDLERS_DB__DB_HOST": "pg01"}).db_configured


def test_engine_defaults_and_overrides(tmp_path: Path) -> None:
    engine = load_settings(environ={}).engine
    assert (engine.models_dir, engine.workers, engine.queue_size, engine.opencv_threads,
            engine.max_image_bytes, engine.max_image_pixels, engine.detect_long_side,
            engine.detection_threshold) == (None, 2, 8, 1, 10 * 1024 * 1024, 40_000_000, 1280, 0.5)
    path = write(tmp_path, {"FACE_ENGINE": {"models_dir": "/opt/models", "workers": 1}})
    engine = load_settings(path, {"FACE_ENGINE__QUEUE_SIZE": "3",
                                  "FACE_ENGINE__DETECTION_THRESHOLD": "0.7"}).engine
    assert (engine.models_dir, engine.workers, engine.queue_size,
            engine.detection_threshold) == ("/opt/models", 1, 3, 0.7)


@pytest.mark.parametrize(("content", "environ", "expected"), [
    ({}, {}, True),
    ({"LUNA_HANDLERS_DB": {"prepared_statements": False}}, {}, False),
    ({"LUNA_HANDLERS_DB": {"prepared_statements": True}}, {}, True),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "false"}, False),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "FALSE"}, False),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "0"}, False),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "off"}, False),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "no"}, False),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "True"}, True),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "1"}, True),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "on"}, True),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "yes"}, True),
    ({"LUNA_HANDLERS_DB": {"prepared_statements": True}},
     {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "false"}, False),
], ids=["default", "file-false", "file-true", "env-false", "env-FALSE", "env-0", "env-off",
        "env-no", "env-True", "env-1", "env-on", "env-yes", "env-over-file"])
def test_prepared_statements_key(tmp_path: Path, content: dict[str, Any],
                                 environ: dict[str, str], expected: bool) -> None:
    assert load_settings(write(tmp_path, content), environ).db.prepared_statements is expected


def test_float_keys_accept_integers(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, {"DB_FAILOVER": {"switch_wait": 2}}), {})
    assert settings.failover.switch_wait == 2.0


@pytest.mark.parametrize(("content", "environ", "expected"), [
    ({"LUNA_HANDLERS_DB": {"db_prot": 5432}}, {}, "LUNA_HANDLERS_DB.db_prot: unknown key"),
    ({"LUNA_HANDLER_DB": {}}, {}, "LUNA_HANDLER_DB: unknown section"),
    ({"LUNA_HANDLERS_DB": []}, {}, "LUNA_HANDLERS_DB: must be a JSON object"),
    ({"LUNA_HANDLERS_DB": {"db_port": "5432"}}, {}, "LUNA_HANDLERS_DB.db_port: must be int"),
    ({"LUNA_HANDLERS_DB": {"db_port": True}}, {}, "LUNA_HANDLERS_DB.db_port: must be int"),
    ({"LUNA_HANDLERS_DB": {"db_port": 70000}}, {},
     "LUNA_HANDLERS_DB.db_port: must be a port number in 1..65535, got 70000"),
    ({"LUNA_HANDLERS_DB": {"db_port": 0}}, {}, "LUNA_HANDLERS_DB.db_port: must be a port"),
    ({"LUNA_HANDLERS_DB": {"db_type": "mysql"}}, {},
     "LUNA_HANDLERS_DB.db_type: must be one of postgres, oracle, got 'mysql'"),
    ({"LUNA_HANDLERS_DB": {"connection_pool_size": 0}}, {},
     "LUNA_HANDLERS_DB.connection_pool_size: must be in 1..1000"),
    ({"DB_FAILOVER": {"connect_timeout": -1}}, {},
     "DB_FAILOVER.connect_timeout: must be greater than 0"),
    ({"LOGGING": {"level": "LOUD"}}, {}, "LOGGING.level: must be one of"),
    ({"FACE_ENGINE": {"workers": 0}}, {}, "FACE_ENGINE.workers: must be in 1..64, got 0"),
    ({"FACE_ENGINE": {"queue_size": 0}}, {}, "FACE_ENGINE.queue_size: must be in 1..10000"),
    ({"FACE_ENGINE": {"max_image_pixels": 200_000_000}}, {},
     "FACE_ENGINE.max_image_pixels: must be in 1..178956970"),
    ({"FACE_ENGINE": {"detection_threshold": 1.5}}, {},
     "FACE_ENGINE.detection_threshold: must be in 0.0..1.0, got 1.5"),
    ({"FACE_ENGINE": {"models_dir": 5}}, {}, "FACE_ENGINE.models_dir: must be str"),
    ([1, 2], {}, "must hold a JSON object of sections"),
    ("{not json", {}, "not valid JSON"),
    ({}, {"LUNA_HANDLERS_DB__DB_PORT": "abc"}, "LUNA_HANDLERS_DB__DB_PORT: must be int"),
    ({}, {"LUNA_HANDLERS_DB__DB_PORTT": "1"},
     "LUNA_HANDLERS_DB__DB_PORTT: unknown key 'db_portt' of section LUNA_HANDLERS_DB"),
    ({}, {"LUNA_HANDLERS_SERVER__PORT": "99999"}, "LUNA_HANDLERS_SERVER.port: must be a port"),
    ({"API": {"token": ""}}, {}, "API.token: must not be empty or blank"),
    ({}, {"API__TOKEN": "  \t"}, "API.token: must not be empty or blank"),
    ({"LUNA_HANDLERS_SERVER": {"header_timeout": 0}}, {},
     "LUNA_HANDLERS_SERVER.header_timeout: must be greater than 0"),
    ({"LUNA_HANDLERS_SERVER": {"max_connections": 0}}, {},
     "LUNA_HANDLERS_SERVER.max_connections: must be in 1..1000000"),
    ({"LUNA_HANDLERS_DB": {"prepared_statements": "false"}}, {},
     "LUNA_HANDLERS_DB.prepared_statements: must be bool, got \"false\""),
    ({"LUNA_HANDLERS_DB": {"prepared_statements": 0}}, {},
     "LUNA_HANDLERS_DB.prepared_statements: must be bool, got 0"),
    ({}, {"LUNA_HANDLERS_DB__PREPARED_STATEMENTS": "nope"},
     "LUNA_HANDLERS_DB__PREPARED_STATEMENTS: must be true or false, got 'nope'"),
], ids=["unknown-key", "unknown-section", "section-not-object", "port-string", "port-bool",
        "port-too-big", "port-zero", "unknown-db-type", "pool-zero", "negative-timeout",
        "bad-log-level", "engine-workers-zero", "engine-queue-zero", "engine-pixels-over-pillow",
        "engine-threshold-over-1", "engine-models-dir-not-str", "not-an-object", "not-json",
        "env-not-int", "env-unknown-key", "env-port-range", "token-empty", "token-blank",
        "header-timeout-zero", "max-connections-zero", "prepared-string", "prepared-int",
        "env-prepared-not-bool"])
def test_bad_config_names_the_key(tmp_path: Path, content: Any, environ: dict[str, str],
                                  expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, content), environ)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*missing\.json: cannot read"):
        load_settings(tmp_path / "missing.json", {})


@pytest.mark.parametrize("content", [
    {"LUNA_HANDLERS_DB": {"db_password": 12345}},
    {"API": {"token": ["x"]}},
], ids=["password-wrong-type", "token-wrong-type"])
def test_secret_values_are_never_echoed(tmp_path: Path, content: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, content), {})
    assert "12345" not in str(caught.value) and "['x']" not in str(caught.value)


def test_repr_hides_secrets() -> None:
    settings = load_settings(environ={"LUNA_HANDLERS_DB__DB_PASSWORD": SECRET,
                                      "LUNA_HANDLERS_DB__DSN": f"u:{SECRET}@h/db",
                                      "API__TOKEN": SECRET})
    assert settings.db.db_password == SECRET
    assert SECRET not in repr(settings)


def test_readme_documents_every_key() -> None:
    from luna_handlers.config_schema import SCHEMA

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys
               if f"`{section}.{key}`" not in readme]
    assert missing == []
