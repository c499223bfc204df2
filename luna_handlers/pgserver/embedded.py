"""The embedded default database: a local PostgreSQL that ``serve`` runs when none is configured.

Data lives in :func:`default_data_dir` (or ``EMBEDDED_POSTGRES.data_dir``) and survives
restarts. The superuser password is random, generated once and kept in a file only the
invoking user can read; the service itself logs in as ``db_user`` like on any other server.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from luna_handlers.config import DBSettings, EmbeddedSettings
from luna_handlers.pgserver.cluster import SHARED_ROOT, PgCluster

logger = logging.getLogger("luna_handlers.pgserver")


class EmbeddedError(RuntimeError):
    """The embedded database could not be prepared; the message says why and what to do."""


def default_data_dir() -> Path:
    """Where the embedded database lives unless configured.

    Root: ``/var/lib/luna-handlers/embedded`` (the server runs as another user, who must
    not be given access to root's home). Others: ``$XDG_DATA_HOME/luna-handlers/embedded``,
    by default ``~/.local/share/luna-handlers/embedded``.
    """
    if os.geteuid() == 0:
        return SHARED_ROOT / "embedded"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "luna-handlers" / "embedded"


def _superuser_password(base: Path) -> str:
    secret_file = base / "superuser.secret"
    if secret_file.exists():
        return secret_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    secret_file.touch(mode=0o600)
    secret_file.write_text(password)
    return password


def start_embedded(settings: EmbeddedSettings, db: DBSettings) -> tuple[PgCluster, DBSettings]:
    """Start (initialising on first use) the embedded server; return it and the DB settings
    that point at it. The database and the ``db_user`` role are created when missing."""
    base = Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
        # The server user must be able to reach its data directory below this one.
        base.chmod(0o711)
        cluster = PgCluster(datadir=base / "data", port=settings.port,
                            superuser_password=_superuser_password(base))
        if not (cluster.datadir / "PG_VERSION").exists():
            logger.info("initialising the embedded PostgreSQL in %s", cluster.datadir)
            cluster.initdb()
        if not cluster.is_running():
            cluster.start()
        cluster.ensure_database(db.db_user, db.db_password, db.db_name)
    except (OSError, RuntimeError) as exc:
        raise EmbeddedError(
            f"cannot start the embedded PostgreSQL in {base} on port {settings.port}: {exc} "
            f"(set EMBEDDED_POSTGRES.data_dir / EMBEDDED_POSTGRES.port, or configure "
            f"LUNA_HANDLERS_DB)") from exc
    logger.info("embedded PostgreSQL is running on 127.0.0.1:%d, data in %s",
                settings.port, cluster.datadir)
    return cluster, replace(db, db_type="postgres", db_host="127.0.0.1",
                            db_port=settings.port, dsn=None)
