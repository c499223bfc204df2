"""What a dialect registers: :class:`Dialect`, its static knowledge in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.pool.backend import Backend


@dataclass(frozen=True)
class Dialect:
    """One supported database kind.

    ``backend(db, failover)`` parses the configured DSN (``DsnError`` when malformed) and
    gives the pool's :class:`~luna_handlers.db.pool.backend.Backend`; ``explain_dsn(db)``
    is the parsed DSN without secrets (``luna-handlers db dsn``).
    """

    name: str  # SQLAlchemy's dialect name: postgresql, oracle
    db_type: str  # the value of LUNA_HANDLERS_DB.db_type: postgres, oracle
    backend: Callable[[DBSettings, FailoverSettings], Backend]
    explain_dsn: Callable[[DBSettings], dict[str, object]]
    offline_url: str  # the SQLAlchemy URL offline migrations render for
    engine_options: Mapping[str, Any]  # dialect arguments the schema depends on
    supports_changes: bool  # writers notify, and Backend.changes makes a feed
