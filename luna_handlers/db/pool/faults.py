"""What a driver error means for the pool (:class:`ErrorKind`), in words every dialect shares.

Each dialect classifies its own driver's errors into these kinds (its Backend's ``classify``);
the pool acts on the kind alone.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from enum import Enum

from sqlalchemy.exc import SQLAlchemyError


class ErrorKind(Enum):
    """What a driver error means for the pool; only CONNECTIVITY and READ_ONLY move it."""

    CONNECTIVITY = "connectivity"  # the host or the session is gone: count towards a switch
    READ_ONLY = "read_only"  # a read-write pool landed on a read-only host: switch at once
    AUTH = "auth"  # credentials or database name wrong: report loudly, never hop hosts
    CANCELED = "canceled"  # the statement ran out of its statement timeout: the host is fine
    OTHER = "other"  # the statement itself failed: the host is fine
    LOCAL = "local_resource"  # this process ran out of fds or memory: no host is to blame


# errno values that mean "this process or machine is out of something": a socket that could
# not even be created says nothing about the host (issue 11: EMFILE moved the pool).
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


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


def local_resource(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) is a local resource error (:data:`LOCAL_ERRNOS`)."""
    return any(isinstance(item, OSError) and item.errno in LOCAL_ERRNOS
               for item in error_chain(exc))


# What can come out of a session whatever the dialect: SQLAlchemy's wrappers (Oracle,
# migrations) and raw socket errors from connect; a Backend adds its driver's own errors.
COMMON_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError,
                                                  EOFError)
