"""Dialect-specific SQL expressions shared by the models and the queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TIMESTAMP


class utc_now(FunctionElement[Any]):  # noqa: N801  (reads as a SQL function)
    """The current time in UTC as a naive timestamp, computed by the database server.

    The server clock, not the service's, so that several service instances agree.
    """

    type = TIMESTAMP()
    inherit_cache = True


@compiles(utc_now, "postgresql")
def _utc_now_pg(_element: utc_now, _compiler: Any, **_kw: Any) -> str:
    # statement_timestamp, not now(): a long transaction must not stamp the past.
    return "(statement_timestamp() AT TIME ZONE 'UTC')"


@compiles(utc_now, "oracle")
def _utc_now_oracle(_element: utc_now, _compiler: Any, **_kw: Any) -> str:
    return "SYS_EXTRACT_UTC(SYSTIMESTAMP)"


@compiles(utc_now)
def _utc_now_default(_element: utc_now, _compiler: Any, **_kw: Any) -> str:
    return "CURRENT_TIMESTAMP"
