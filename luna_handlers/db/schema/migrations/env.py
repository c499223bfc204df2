"""Alembic environment: online on a connection handed in by luna_handlers.db.schema.migrate,
or offline (``--sql``) for the dialect named in the config attributes."""

from __future__ import annotations

from alembic import context

from luna_handlers.db.dialects import dialect_for
from luna_handlers.db.schema import store_models  # noqa: F401  (its tables join Base.metadata)
from luna_handlers.db.schema.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    dialect = dialect_for(config.attributes["db_type"])
    context.configure(
        url=dialect.offline_url,
        dialect_opts=dict(dialect.engine_options),
        target_metadata=Base.metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    # One transaction per revision: on Oracle, whose DDL commits by itself, a failure then
    # leaves the version table at the last revision that completed.
    context.configure(connection=connection, target_metadata=Base.metadata,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
