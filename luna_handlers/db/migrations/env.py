"""Alembic environment: online on a connection handed in by luna_handlers.db.migrate, or
offline (``--sql``) for the dialect named in the config attributes."""

from __future__ import annotations

from alembic import context

from luna_handlers.db.handlers_db_tools.models.handlers_models import Base
from luna_handlers.db.migrate import OFFLINE_URLS, dialect_options

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    db_type = config.attributes["db_type"]
    context.configure(
        url=OFFLINE_URLS[db_type],
        dialect_opts=dialect_options(db_type),
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
