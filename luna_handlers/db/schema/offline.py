"""The full DDL from an empty database to head, for a DBA to run by hand, per dialect.

Alembic renders it (``--sql``) for the dialect's offline URL; a dialect whose tool needs
another layout gets its formatter here (Oracle: :mod:`luna_handlers.db.schema.sqlplus`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

from alembic import command

from luna_handlers.db.schema.migrate import alembic_config
from luna_handlers.db.schema.sqlplus import sqlplus_script

#: db_type -> how Alembic's offline output is turned into the script we print.
FORMATTERS: Mapping[str, Callable[[str], str]] = {"oracle": sqlplus_script}


def offline_sql(db_type: str) -> str:
    """The full DDL from an empty database to head, for a DBA to run by hand."""
    out = io.StringIO()
    command.upgrade(alembic_config(out, db_type=db_type), "head", sql=True)
    formatter = FORMATTERS.get(db_type)
    return out.getvalue() if formatter is None else formatter(out.getvalue())


