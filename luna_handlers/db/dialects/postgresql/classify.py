"""Classification of PostgreSQL errors by SQLSTATE, for asyncpg under SQLAlchemy."""

from __future__ import annotations

import asyncio

import asyncpg

from luna_handlers.db.pool.faults import ErrorKind, error_chain, local_resource

# The driver's own error roots, for statements run on asyncpg directly.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError, asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a session whose protocol state is broken
)

# SQLSTATE classes and codes that mean "this host or this session is unusable".
CONNECTIVITY_CLASSES = (
    "08",  # connection exception: 08000, 08003, 08006, 08001, 08004, 08P01 ...
)
CONNECTIVITY_CODES = frozenset({
    "57P01",  # admin_shutdown: the server is shutting down (fast/immediate stop)
    "57P02",  # crash_shutdown: another backend crashed, the server restarts
    "57P03",  # cannot_connect_now: starting up, or in recovery without hot standby
    "57P05",  # idle_session_timeout: the server closed an idle session
    "53300",  # too_many_connections: this host cannot take us now (pgJDBC #3218 aside:
              # counted, not switched on at once; it takes failure_threshold in a row)
    "58030",  # io_error on the server
})
READ_ONLY_CODES = frozenset({
    "25006",  # read_only_sql_transaction: the host was demoted or is a standby
})
AUTH_CODES = frozenset({
    "28000",  # invalid_authorization_specification (pg_hba rejects us)
    "28P01",  # invalid_password
    "3D000",  # invalid_catalog_name: the database does not exist
    "42501",  # insufficient_privilege
})
CANCELED_CODES = frozenset({
    "57014",  # query_canceled: statement_timeout (the scan connections set one)
})

_BY_CODE = {code: kind for codes, kind in ((READ_ONLY_CODES, ErrorKind.READ_ONLY),
                                           (AUTH_CODES, ErrorKind.AUTH),
                                           (CANCELED_CODES, ErrorKind.CANCELED))
            for code in codes}

# Exception class names of asyncpg that mean the session died, without a SQLSTATE.
_DEAD_SESSION_NAMES = frozenset({
    "ConnectionDoesNotExistError", "ConnectionFailureError", "InterfaceError",
    "InternalClientError", "ProtocolError",
})


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code if isinstance(code, str) else None


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of ``exc`` or of what it wraps, None when it has none (a socket error)."""
    return next((code for item in error_chain(exc) if (code := _sqlstate(item))), None)


def classify(exc: BaseException) -> ErrorKind:
    """Tell whether ``exc`` should count towards a failover (see :class:`ErrorKind`)."""
    if local_resource(exc):  # before the OSError rule below: EMFILE is ours, not the host's
        return ErrorKind.LOCAL
    by_code = _by_sqlstate(exc)
    if by_code is not None:
        return by_code
    for item in error_chain(exc):
        if isinstance(item, OSError | asyncio.TimeoutError | TimeoutError | EOFError):
            return ErrorKind.CONNECTIVITY
        name = type(item).__name__
        if name in _DEAD_SESSION_NAMES and type(item).__module__.startswith("asyncpg"):
            return ErrorKind.CONNECTIVITY
    return ErrorKind.OTHER


def _by_sqlstate(exc: BaseException) -> ErrorKind | None:
    for item in error_chain(exc):
        code = _sqlstate(item)
        if code in _BY_CODE:
            return _BY_CODE[code]
        if code is not None and (code in CONNECTIVITY_CODES
                                 or code.startswith(CONNECTIVITY_CLASSES)):
            return ErrorKind.CONNECTIVITY
    return None


TOO_MANY_CONNECTIONS = "53300"


def probe_classify(exc: BaseException) -> ErrorKind:
    """:func:`classify`, except that a full server is alive (OTHER), not gone.

    53300 counts towards a switch when pooled sessions meet it, but a health check that
    cannot get one extra connection has still heard the server answer: no reason to move.
    """
    for item in (exc, exc.__cause__, exc.__context__):
        if getattr(item, "sqlstate", None) == TOO_MANY_CONNECTIONS:
            return ErrorKind.OTHER
    return classify(exc)
