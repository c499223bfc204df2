"""Per-dialect knowledge: how driver errors are classified, and the dialect's quirks."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum


class ErrorKind(Enum):
    """What a driver error means for the pool; only CONNECTIVITY and READ_ONLY move it."""

    CONNECTIVITY = "connectivity"  # the host or the session is gone: count towards a switch
    READ_ONLY = "read_only"  # a read-write pool landed on a read-only host: switch at once
    AUTH = "auth"  # credentials or database name wrong: report loudly, never hop hosts
    OTHER = "other"  # the statement itself failed: the host is fine


def error_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``.orig``) and its causes, once each."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        orig = getattr(item, "orig", None)
        todo.extend([item.__cause__, item.__context__,
                     orig if isinstance(orig, BaseException) else None])
