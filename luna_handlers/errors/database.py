"""Errors of the database layer: what a request may retry, and what may have been applied."""

from __future__ import annotations

from luna_handlers.errors.base import LunaError


class DatabaseError(LunaError):
    """Grouping class of the errors of the database layer.

    ``cause`` is the driver's account (scrubbed of secrets) for the operator: the one-line
    exit message of ``serve`` names it; the clients' error body never shows it.
    """

    def __init__(self, detail: str | None = None, *, cause: str | None = None) -> None:
        super().__init__(detail)
        self.cause = cause


class DatabaseUnavailable(
    DatabaseError, code=34010, status=503, desc="Database unavailable",
):
    """No usable database connection: the statement was NOT sent, so a retry is safe."""


class DatabaseSwitched(DatabaseUnavailable):
    """The pool moved to another host while the request waited for one of the old pool's
    connections: nothing was sent. The failover layer retries such a request once, on the
    new pool; a client sees it only if the pool moves again meanwhile."""


class DatabaseOutcomeUnknown(
    DatabaseError, code=34011, status=503, desc="Database outcome unknown",
):
    """The connection broke after the statement may have been sent: it may have been applied."""


class DatabaseFailure(DatabaseError, code=34012, status=500, desc="Database error"):
    """The database rejected the statement for a reason that is not connectivity."""


class ScansBusy(DatabaseError, code=34014, status=503, desc="Too many list requests"):
    """Every connection of the share for lists, counts and searches stayed busy for
    ``scan_wait``: nothing was sent, a retry is safe. Reads by id and writes have their own
    connections and are not affected."""


class ScanTimedOut(DatabaseError, code=34015, status=503, desc="List request timed out"):
    """A list, count or search ran past ``scan_statement_timeout`` and the database
    cancelled it (a narrower filter is cheaper); the host is fine."""



class StoppedOutcomeUnknown(DatabaseOutcomeUnknown):
    """The service stopped (its graceful-shutdown period ended) while the request ran: what it
    sent to the database may or may not have been applied."""

    def __init__(self) -> None:
        super().__init__("The service stopped before the request finished; "
                         "it may or may not have been applied")
