"""The ``luna-handlers`` command: ``serve`` and the ``db`` tools.

Every failure the user can fix (bad config, bad DSN, database not reachable or not migrated)
ends with exit status 2 or 1 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from luna_handlers import __version__
from luna_handlers.config import CONFIG_ENV, ConfigError, Settings, load_settings
from luna_handlers.db.hosts import DsnError
from luna_handlers.errors import LunaError

logger = logging.getLogger("luna_handlers")
EXIT_USAGE = 2
EXIT_FAILURE = 1


class Terminated(Exception):
    """SIGTERM arrived; uvicorn re-raises it after its graceful shutdown."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Terminated


class CliError(Exception):
    """A failure reported as one line, with its exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="luna-handlers", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--config", type=Path, help="JSON config file")
    serve.add_argument("--host", help="listen address (LUNA_HANDLERS_SERVER.host)")
    serve.add_argument("--port", type=int, help="listen port (LUNA_HANDLERS_SERVER.port)")
    serve.add_argument("--workers", type=int, help="worker processes")

    db = commands.add_parser("db", help="database tools").add_subparsers(
        dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate the configured database to the newest schema")
    up.add_argument("--config", type=Path)
    sql = db.add_parser("sql", help="print the full schema DDL offline, for a DBA")
    sql.add_argument("--db-type", choices=["postgres", "oracle"], required=True)
    dsn = db.add_parser("dsn", help="explain a DSN (or the configured one) as JSON")
    dsn.add_argument("--config", type=Path)
    dsn.add_argument("dsn", nargs="?", help="DSN to explain instead of the configured one")
    return parser


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return load_settings(args.config, overrides=given)
    except ConfigError as exc:
        raise CliError(f"config error: {exc}", EXIT_USAGE) from None


def _explain_dsn(args: argparse.Namespace) -> None:
    from luna_handlers.db.dialects import dialect_for

    settings = _settings(args)
    db = settings.db
    if args.dsn is not None:
        db = replace(db, dsn=args.dsn)
    try:
        explained = dialect_for(db.db_type).explain_dsn(db)
    except DsnError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    print(json.dumps(explained))


def _db_upgrade(args: argparse.Namespace) -> None:
    from luna_handlers.service import migrate

    settings = _settings(args)
    rendered = asyncio.run(migrate(settings))
    print("database migrated to the newest schema; stored policies rendered anew: "
          + ", ".join(f"{done.rendered} {table}s" for table, done in rendered.items()))


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from luna_handlers.app.logging import configure_logging
    from luna_handlers.app.metrics import shared_by_workers
    from luna_handlers.db.schema.migrate import SchemaMismatch
    from luna_handlers.http.limits import http_limits
    from luna_handlers.http.protocol import LunaHttpProtocol
    from luna_handlers.pgserver.embedded import EmbeddedError, start_embedded
    from luna_handlers.service import check_schema, migrate

    flags = {"LUNA_HANDLERS_SERVER.host": args.host, "LUNA_HANDLERS_SERVER.port": args.port,
             "LUNA_HANDLERS_SERVER.workers": args.workers}
    settings = _settings(args, **flags)
    configure_logging(settings.log_level)
    embedded = None
    if not settings.db_configured:
        try:
            embedded, db = start_embedded(settings.embedded, settings.db)
        except EmbeddedError as exc:
            raise CliError(str(exc)) from None
        # Workers read their settings from the environment: point them at the embedded server.
        os.environ["LUNA_HANDLERS_DB__DB_TYPE"] = db.db_type
        os.environ["LUNA_HANDLERS_DB__DB_HOST"] = db.db_host
        os.environ["LUNA_HANDLERS_DB__DB_PORT"] = str(db.db_port)
        settings = _settings(args, **flags)
        asyncio.run(migrate(settings))
    else:
        try:
            asyncio.run(check_schema(settings))
        except SchemaMismatch as exc:
            raise CliError(str(exc)) from None
    if args.config is not None:
        os.environ[CONFIG_ENV] = str(args.config.resolve())
    for key in ("host", "port", "workers"):
        os.environ[f"LUNA_HANDLERS_SERVER__{key.upper()}"] = str(getattr(settings.server, key))
    server = settings.server
    logger.info("serving on http://%s:%d with %d worker(s)", server.host, server.port,
                server.workers)
    # uvicorn drains requests and runs the lifespan shutdown on SIGTERM, then re-raises the
    # signal with the handler it found: ours turns it into an exception, so the embedded
    # database below is stopped too and the exit status says "stopped as asked".
    signal.signal(signal.SIGTERM, _raise_terminated)
    # A partial rather than a class: it carries the limits to spawned workers (pickled).
    protocol = functools.partial(LunaHttpProtocol, limits=http_limits(settings))
    try:
        with shared_by_workers(server.workers):
            uvicorn.run("luna_handlers.service:create_service_app", factory=True,
                        host=server.host, port=server.port, workers=server.workers,
                        loop="uvloop", http=protocol,  # type: ignore[arg-type]
                        ws="none", log_config=None, access_log=False,
                        timeout_graceful_shutdown=server.shutdown_timeout, server_header=False,
                        # No client address or scheme is used: skip the X-Forwarded-* pass.
                        proxy_headers=False)
    finally:
        if embedded is not None:
            logger.info("stopping the embedded PostgreSQL")
            embedded.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``luna-handlers`` command."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
        elif args.db_command == "sql":
            from luna_handlers.db.schema.offline import offline_sql

            print(offline_sql(args.db_type), end="")
        elif args.db_command == "dsn":
            _explain_dsn(args)
        else:
            _db_upgrade(args)
    except CliError as exc:
        print(f"luna-handlers: {exc}", file=sys.stderr)
        return exc.status
    except LunaError as exc:
        cause = getattr(exc, "cause", None)
        print(f"luna-handlers: {exc.desc}: {exc.detail}" + (f": {cause}" if cause else ""),
              file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
