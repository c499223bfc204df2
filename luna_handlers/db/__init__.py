"""The database layer. Its face, what the application imports: :func:`open_database`, the
:class:`Database` it returns, the DB context and its records.

Inside: ``pool/`` (the failover machinery, dialect-free), ``dialects/`` (a registry; each
dialect hands in a Backend), ``schema/`` (models, migrations, offline DDL), ``stores/`` (the
DB context's statements per kind of object). See ARCHITECTURE.md.
"""

from __future__ import annotations

from luna_handlers.config import Settings
from luna_handlers.db.changes import ChangeFeed
from luna_handlers.db.context import DBContext
from luna_handlers.db.database import Database, Session
from luna_handlers.db.dialects import dialect_for
from luna_handlers.db.pool.failover import start_failover_database
from luna_handlers.db.records import (
    HandlerRecord,
    ListFilters,
    RenderedPolicies,
    VerifierRecord,
)
from luna_handlers.db.store_records import (
    DescriptorLookup,
    EventFilters,
    EventMatch,
    EventMatchFilters,
    EventRecord,
    EventWrite,
    FaceMatch,
    FaceMatchFilters,
    FaceRecord,
    FaceWrite,
    ListRecord,
    SampleKind,
    SampleWrite,
    StoredDescriptor,
)


async def open_database(settings: Settings) -> Database:
    """Connect to the configured database: the failover pool over its hosts, on either
    dialect (``DatabaseUnavailable`` when no host qualifies, ``DsnError`` for a bad DSN)."""
    db = settings.db
    backend = dialect_for(db.db_type).backend(db, settings.failover)
    return await start_failover_database(backend, db.connection_pool_size, settings.failover)


__all__ = ["ChangeFeed", "DBContext", "Database", "DescriptorLookup", "EventFilters",
           "EventMatch", "EventMatchFilters", "EventRecord", "EventWrite", "FaceMatch",
           "FaceMatchFilters", "FaceRecord", "FaceWrite", "HandlerRecord", "ListFilters",
           "ListRecord", "RenderedPolicies", "SampleKind", "SampleWrite", "Session",
           "StoredDescriptor", "VerifierRecord", "open_database"]
