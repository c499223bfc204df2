"""The registry of dialects: each hands in a :class:`~.dialect.Dialect` (and, through it, the
pool's :class:`~luna_handlers.db.pool.backend.Backend`).

A new dialect is a package here with a ``DIALECT`` and one line in :data:`DIALECTS`; no
other module chooses by dialect name. Dialects never import ``luna_handlers.app``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from luna_handlers.db.dialects import oracle, postgresql
from luna_handlers.db.dialects.dialect import Dialect

#: By ``db_type`` (the configuration's name).
DIALECTS: Mapping[str, Dialect] = MappingProxyType(
    {dialect.db_type: dialect for dialect in (postgresql.DIALECT, oracle.DIALECT)})
_BY_NAME = {dialect.name: dialect for dialect in DIALECTS.values()}


def dialect_for(db_type: str) -> Dialect:
    """The dialect of a configured ``db_type`` (``postgres`` or ``oracle``)."""
    return DIALECTS[db_type]


def named(name: str) -> Dialect:
    """The dialect of an SQLAlchemy dialect name (``postgresql`` or ``oracle``)."""
    return _BY_NAME[name]


__all__ = ["DIALECTS", "Dialect", "dialect_for", "named"]
