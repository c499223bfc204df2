"""Statements built once in SQLAlchemy Core and run with as little machinery as possible.

The hot statements of the DB context (one row by id, insert, replace, delete) have a fixed
shape: only their parameter values change. A :class:`Prepared` builds such a statement once
per dialect, with named bind parameters, and compiles it once. On PostgreSQL the compiled SQL
then goes straight to asyncpg (which keeps it as a server-side prepared statement): SQLAlchemy
still writes every query, but its per-call cost (statement objects, cache keys, cursor
adaptation, greenlet hops) stays out of the request path. Other dialects execute the same
statement through SQLAlchemy as usual.

Running them is the session's job (:mod:`luna_handlers.db.pool.connections`): compiled SQL and
:meth:`Prepared.bind` on asyncpg, :meth:`Prepared.statement` through SQLAlchemy on Oracle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import Compiled

Row = Mapping[Any, Any]  # asyncpg's Record or SQLAlchemy's RowMapping
Statement = sa.Select[*tuple[Any, ...]] | sa.Insert | sa.Update | sa.Delete | sa.TextClause
Binds = tuple[tuple[str, Callable[[Any], Any] | None], ...]


class Prepared:
    """A statement of fixed shape: ``build(dialect_name)`` makes it, once per dialect."""

    def __init__(self, build: Callable[[str], Statement]) -> None:
        self._build = build
        self._statements: dict[str, Statement] = {}
        self._compiled: dict[str, tuple[str, Binds, dict[str, Any]]] = {}

    def statement(self, dialect_name: str) -> Statement:
        """The statement for a dialect (built on first use)."""
        statement = self._statements.get(dialect_name)
        if statement is None:
            statement = self._statements[dialect_name] = self._build(dialect_name)
        return statement

    def compiled(self, dialect: Dialect) -> tuple[str, Binds, dict[str, Any]]:
        """SQL text, the parameters in positional order (with the dialect's conversion of
        each), and the values of those the statement fixes itself (a channel name)."""
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled: Compiled = self.statement(dialect.name).compile(dialect=dialect)
            names = tuple(compiled.positiontup or ())  # type: ignore[attr-defined]
            fixed = {name: bind.effective_value
                     for name, bind in compiled.binds.items()  # type: ignore[attr-defined]
                     if not bind.required}
            # The dialect's own value conversions (e.g. strict booleans), as SQLAlchemy
            # would apply them.
            processors = compiled._bind_processors  # type: ignore[attr-defined]
            found = self._compiled[dialect.name] = (
                compiled.string, tuple((name, processors.get(name)) for name in names), fixed)
        return found

    def bind(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The compiled SQL and its positional values for ``params``, converted by the
        dialect as SQLAlchemy would (for running it on the driver directly)."""
        sql, binds, fixed = self.compiled(dialect)
        values = []
        for name, process in binds:
            value = params[name] if name in params else fixed[name]
            values.append(value if process is None else process(value))
        return sql, values
