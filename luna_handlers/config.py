"""Service configuration: a JSON file with LUNA-style sections, environment, command line.

Precedence, lowest first: built-in defaults, the JSON file, environment variables, flags.
Every key is declared once in :data:`luna_handlers.config_schema.SCHEMA`; the README's
reference table is written from it.
Environment variables are named ``<SECTION>__<KEY>`` in upper case, for example
``LUNA_HANDLERS_DB__DB_HOST=pg01`` or ``LUNA_HANDLERS_SERVER__PORT=5090``.

A bad value raises :class:`ConfigError` whose one-line message names the key and the problem
and never repeats the value of a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from luna_handlers.config_schema import (
    DB_SECTION,
    ENGINE_SECTION,
    ORACLE_DEFAULT_PORT,
    SCHEMA,
    Key,
)

CONFIG_ENV = "LUNA_HANDLERS_CONFIG"


class ConfigError(ValueError):
    """A configuration problem, described in one line that names the key."""


@dataclass(frozen=True)
class DBSettings:
    """Section ``LUNA_HANDLERS_DB``."""

    db_type: Literal["postgres", "oracle"]
    db_host: str
    db_port: int
    db_user: str
    db_password: str = field(repr=False)
    db_name: str
    connection_pool_size: int
    dsn: str | None = field(repr=False)
    prepared_statements: bool = True


@dataclass(frozen=True)
class FailoverSettings:
    """Section ``DB_FAILOVER``: timeouts and thresholds of the one-host pool."""

    connect_timeout: float
    query_timeout: float
    failure_threshold: int
    health_check_interval: float
    switch_wait: float
    # The scan share (lists, counts, searches); defaults as in SCHEMA.
    scan_pool_size: int = 4
    scan_statement_timeout: float = 5.0
    scan_wait: float = 1.0
    health_check_timeout: float = SCHEMA["DB_FAILOVER"]["health_check_timeout"].default


def default_failover() -> FailoverSettings:
    """``DB_FAILOVER`` with every key at its default (benches and tests compare with it)."""
    return FailoverSettings(**{name: key.default for name, key in SCHEMA["DB_FAILOVER"].items()})


@dataclass(frozen=True)
class ServerSettings:
    """Section ``LUNA_HANDLERS_SERVER``."""

    host: str
    port: int
    workers: int
    header_timeout: float
    body_timeout: float
    max_connections: int
    max_header_size: int
    max_url_length: int
    shutdown_timeout: int


@dataclass(frozen=True)
class EmbeddedSettings:
    """Section ``EMBEDDED_POSTGRES``: used only when no database is configured."""

    data_dir: str | None
    port: int


@dataclass(frozen=True)
class APISettings:
    """Section ``API``."""

    token: str | None = field(repr=False)
    max_body_size: int
    max_json_members: int
    cache_size: int


@dataclass(frozen=True)
class EngineSettings:
    """Section ``FACE_ENGINE``: the built-in face engine (``luna_handlers.engine``)."""

    models_dir: str | None
    workers: int
    queue_size: int
    opencv_threads: int
    max_image_bytes: int
    max_image_pixels: int
    detect_long_side: int
    detection_threshold: float
    max_request_bytes: int
    matching_cache_descriptors: int = 1_000_000


@dataclass(frozen=True)
class Settings:
    """The whole configuration. ``db_configured`` is False when the embedded DB is to be used."""

    db: DBSettings
    failover: FailoverSettings
    server: ServerSettings
    embedded: EmbeddedSettings
    api: APISettings
    log_level: str
    db_configured: bool
    engine: EngineSettings


def _describe(section: str, key: str) -> str:
    return f"{section}.{key}"


def _from_json(section: str, key: str, spec: Key, value: Any) -> Any:
    if value is None and spec.default is None:
        return None
    ok = isinstance(value, spec.kind) and not (spec.kind is not bool and isinstance(value, bool))
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        shown = "" if spec.secret else f", got {json.dumps(value)[:60]}"
        raise ConfigError(f"{_describe(section, key)}: must be {spec.kind.__name__}{shown}")
    return value


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}


def _from_env(name: str, spec: Key, text: str) -> Any:
    if spec.kind is bool:
        if text.lower() not in _BOOLEANS:
            raise ConfigError(f"{name}: must be true or false, got {text[:60]!r}")
        return _BOOLEANS[text.lower()]
    try:
        if spec.kind is int:
            return int(text)
        if spec.kind is float:
            return float(text)
    except ValueError:
        shown = "" if spec.secret else f", got {text[:60]!r}"
        raise ConfigError(f"{name}: must be {spec.kind.__name__}{shown}") from None
    return text


def read_file(path: Path) -> dict[str, Any]:
    """Read and shape-check a JSON config file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must hold a JSON object of sections")
    return data


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, the file, the environment and ``overrides`` ("SECTION.key": value)."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
    raw = read_file(path) if path is not None else {}
    values = {section: {k: spec.default for k, spec in keys.items()}
              for section, keys in SCHEMA.items()}
    db_configured = DB_SECTION in raw
    for section, content in raw.items():
        if section not in SCHEMA:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(SCHEMA)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{section}: must be a JSON object")
        for key, value in content.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"{_describe(section, key)}: unknown key")
            values[section][key] = _from_json(section, key, SCHEMA[section][key], value)
    for name, text in environ.items():
        section, sep, key = name.partition("__")
        if not sep or section not in SCHEMA:
            continue
        spec = SCHEMA[section].get(key.lower())
        if spec is None:
            raise ConfigError(f"{name}: unknown key {key.lower()!r} of section {section}")
        values[section][key.lower()] = _from_env(name, spec, text)
        db_configured = db_configured or section == DB_SECTION
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        values[section][key] = value
    return _build(values, db_configured)


def _build(values: dict[str, dict[str, Any]], db_configured: bool) -> Settings:
    for section, keys in SCHEMA.items():
        for key, spec in keys.items():
            value = values[section][key]
            problem = spec.check(value) if value is not None else None
            if problem:
                shown = "" if spec.secret else f", got {value!r}"
                raise ConfigError(f"{_describe(section, key)}: {problem}{shown}")
    db = dict(values[DB_SECTION])
    if db["db_port"] is None:
        db["db_port"] = ORACLE_DEFAULT_PORT if db["db_type"] == "oracle" else 5432
    return Settings(
        db=DBSettings(**db),
        failover=FailoverSettings(**values["DB_FAILOVER"]),
        server=ServerSettings(**values["LUNA_HANDLERS_SERVER"]),
        embedded=EmbeddedSettings(**values["EMBEDDED_POSTGRES"]),
        api=APISettings(**values["API"]),
        log_level=values["LOGGING"]["level"],
        db_configured=db_configured,
        engine=EngineSettings(**values[ENGINE_SECTION]),
    )
