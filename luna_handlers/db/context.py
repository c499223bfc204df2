"""The DB context: every SQL statement of the service, in SQLAlchemy Core, for both dialects.

Method names follow the LUNA DB-context API (``createHandler``, ``putVerifier``, ...). Every
method takes an optional ``accountId``: with it, an object of another account does not exist;
without it, there is no account restriction (root access).

Each kind of object is a store (:mod:`luna_handlers.db.stores`); the context is all of them
over one database. A new store is a module in ``stores/`` and one more base class here.
"""

from __future__ import annotations

import sqlalchemy as sa

from luna_handlers.config_schema import ENGINE_SECTION, SCHEMA
from luna_handlers.db.database import Database
from luna_handlers.db.match_index import MatchIndex
from luna_handlers.db.prepared import Prepared
from luna_handlers.db.records import HandlerRecord, ListFilters, VerifierRecord
from luna_handlers.db.stores.events import EventStore
from luna_handlers.db.stores.faces import FaceStore
from luna_handlers.db.stores.handlers import HANDLER, HandlerStore
from luna_handlers.db.stores.lists import ListStore
from luna_handlers.db.stores.matching import MatchStore
from luna_handlers.db.stores.samples import SampleStore
from luna_handlers.db.stores.verifiers import VERIFIER, VerifierStore

# The records and filters are part of the DB-context API: importable from here too.
__all__ = ["HANDLER", "VERIFIER", "DBContext", "HandlerRecord", "ListFilters", "VerifierRecord"]

MATCH_CACHE: int = SCHEMA[ENGINE_SECTION]["matching_cache_descriptors"].default
PING = Prepared(lambda _dialect: sa.select(sa.literal_column("1")))


class DBContext(HandlerStore, VerifierStore, ListStore, FaceStore, EventStore, SampleStore,
                MatchStore):
    """All reads and writes of the service's objects."""

    def __init__(self, database: Database, match_cache: int = MATCH_CACHE) -> None:
        """``match_cache``: the matching index's bound (0: matching by list takes
        the SQL path; the index still prunes the log). PostgreSQL only."""
        self.database = database
        self.matchIndex = (MatchIndex(database, match_cache)
                           if database.dialect_name == "postgresql" else None)

    async def ping(self) -> None:
        """One cheap round trip to the database (health checks)."""
        await self._read(PING, {})
