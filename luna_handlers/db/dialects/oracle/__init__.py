"""The Oracle dialect: Easy Connect and descriptor dsn, python-oracledb (thin) through
SQLAlchemy's pool, no change feed.

Modules: ``dsn`` and ``descriptor`` (the dsn parser), ``classify`` (ORA/DPY codes to
ErrorKind), ``connect`` (connect arguments and the engine), ``backend`` (probe and Backend).
"""

from __future__ import annotations

from luna_handlers.db.dialects.dialect import Dialect
from luna_handlers.db.dialects.oracle.backend import oracle_backend_from_settings
from luna_handlers.db.dialects.oracle.connect import ENGINE_OPTIONS
from luna_handlers.db.dialects.oracle.dsn import explain_dsn

DIALECT = Dialect(
    name="oracle", db_type="oracle", backend=oracle_backend_from_settings,
    explain_dsn=explain_dsn, offline_url="oracle+oracledb://", engine_options=ENGINE_OPTIONS,
    supports_changes=False,
)
