"""The PostgreSQL dialect: multi-host DSN, asyncpg pool, LISTEN/NOTIFY change feed.

Modules: ``dsn`` (the DSN parser), ``classify`` (SQLSTATE to ErrorKind), ``connections``
(the asyncpg request pool of one host), ``connect`` (connect arguments and the SQLAlchemy
engine), ``backend`` (probe and Backend), ``feed`` (the change feed), ``pooler`` (named or
unnamed statements, for poolers in transaction mode).
"""

from __future__ import annotations

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.dialects.dialect import Dialect
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import pg_dsn
from luna_handlers.db.pool.backend import Backend


def _backend(db: DBSettings, failover: FailoverSettings) -> Backend:
    return pg_backend(pg_dsn(db), db.connection_pool_size, failover,
                      prepared_statements=db.prepared_statements)


DIALECT = Dialect(
    name="postgresql", db_type="postgres", backend=_backend,
    explain_dsn=lambda db: pg_dsn(db).public_dict(), offline_url="postgresql://",
    engine_options={}, supports_changes=True,
)
