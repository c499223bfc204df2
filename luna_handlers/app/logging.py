"""Log setup: every line carries the ``Luna-Request-Id`` of the request that emitted it.

The request id lives in a contextvar set by the request middleware; a ``logging.Filter`` on the
handler copies it onto each record, so lines from any logger (the DB layer included) get it
without passing it around. Outside a request the id is ``-``.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TextIO

#: The ``Luna-Request-Id`` of the request being served in this task ("-" outside requests).
request_id_var: ContextVar[str] = ContextVar("luna_request_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the current request context; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record with the current request id."""
        record.request_id = request_id_var.get()
        return True


class _LunaHandler(logging.StreamHandler[TextIO]):
    """Marks the handler installed by :func:`configure_logging` so a second call replaces it."""


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` with the request id on every line (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _LunaHandler):
            root.removeHandler(handler)
    handler = _LunaHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
