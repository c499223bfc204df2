"""Wiring: settings → database → migrations → HTTP application.

``create_service_app`` is the factory uvicorn imports in every worker process; the CLI
prepares the database (embedded server, migrations, schema check) once before that.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette

from luna_handlers.config import Settings, load_settings
from luna_handlers.db import Database, open_database
from luna_handlers.db.schema.migrate import check_at_head, upgrade
from luna_handlers.db.stores.rendering import Rerendered, rerender

logger = logging.getLogger("luna_handlers")


def database_factory(settings: Settings) -> Callable[[], AbstractAsyncContextManager[Database]]:
    """A factory for the app's lifespan: open the database, check its schema, close it."""

    @asynccontextmanager
    async def lifespan_database() -> AsyncIterator[Database]:
        database = await open_database(settings)
        try:
            async with database.connection() as conn:
                await check_at_head(conn)
            yield database
        finally:
            await database.close()

    return lifespan_database


async def migrate(settings: Settings) -> dict[str, Rerendered]:
    """Upgrade the configured database to the newest schema, then render anew the stored
    policies rendered by another version (:func:`rerender_policies`)."""
    database = await open_database(settings)
    try:
        async with database.connection() as conn:
            await upgrade(conn)
        return await rerender_policies(database)
    finally:
        await database.close()


async def rerender_policies(database: Database) -> dict[str, Rerendered]:
    """Render the stored policies of every handler and verifier whose rendering is not this
    version's, so that reads splice it instead of rendering each item; by table name."""
    from luna_handlers.app.policies import (
        HANDLER_RENDERING,
        VERIFIER_RENDERING,
        render_stored_handler,
        render_stored_verifier,
    )
    from luna_handlers.db.context import HANDLER, VERIFIER

    done: dict[str, Rerendered] = {}
    for table, render, made_with in ((HANDLER, render_stored_handler, HANDLER_RENDERING),
                                     (VERIFIER, render_stored_verifier, VERIFIER_RENDERING)):
        done[table.name] = result = await rerender(database, table, render, made_with)
        if result.rendered or result.corrupted:
            logger.info("stored policies rendered anew: %d %ss (%d do not render: corrupted)",
                        result.rendered, table.name, result.corrupted)
    return done


async def check_schema(settings: Settings) -> None:
    """Raise ``SchemaMismatch`` unless the database is at the code's schema."""
    async with database_factory(settings)():
        pass


def create_service_app() -> Starlette:
    """The ASGI application of one worker, configured from the file and the environment."""
    from luna_handlers.app.application import create_app
    from luna_handlers.app.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, database_factory(settings))
