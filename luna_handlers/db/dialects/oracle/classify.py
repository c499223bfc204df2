"""Classification of Oracle errors by ORA/DPY code, for python-oracledb (thin) under SQLAlchemy.

The connectivity list follows SQLAlchemy's ``oracle.cx_oracle.is_disconnect`` and Oracle's
documentation of network errors; one comment per code.
"""

from __future__ import annotations

import asyncio
import re

import oracledb

from luna_handlers.db.pool.faults import ErrorKind, error_chain, local_resource

# The driver's own error root (statements always go through SQLAlchemy on Oracle today).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (oracledb.Error,)

CONNECTIVITY_CODES = frozenset({
    "ORA-00028",  # your session has been killed
    "ORA-01012",  # not logged on
    "ORA-01033",  # ORACLE initialization or shutdown in progress
    "ORA-01034",  # ORACLE not available
    "ORA-01089",  # immediate shutdown or close in progress
    "ORA-01092",  # ORACLE instance terminated, disconnection forced
    "ORA-03113",  # end-of-file on communication channel
    "ORA-03114",  # not connected to ORACLE
    "ORA-03135",  # connection lost contact
    "ORA-12153",  # TNS: not connected
    "ORA-12170",  # TNS: connect timeout occurred
    "ORA-12514",  # TNS: listener does not currently know of the service
    "ORA-12516",  # TNS: listener could not find available handler
    "ORA-12520",  # TNS: listener could not find available handler for requested server type
    "ORA-12521",  # TNS: listener does not currently know of the instance
    "ORA-12528",  # TNS: listener: all appropriate instances are blocking new connections
    "ORA-12537",  # TNS: connection closed
    "ORA-12541",  # TNS: no listener
    "ORA-12543",  # TNS: destination host unreachable
    "ORA-12547",  # TNS: lost contact
    "ORA-25408",  # can not safely replay call
    "DPY-1001",  # not connected to database
    "DPY-4011",  # the database or network closed the connection
    "DPY-6005",  # cannot connect to database
    "DPY-6000",  # listener refused connection
    "DPY-6001",  # service name not registered with the listener
    "DPY-6002",  # connection closed during connect
})
READ_ONLY_CODES = frozenset({
    "ORA-16000",  # database or pluggable database open for read-only access (standby)
})
AUTH_CODES = frozenset({
    "ORA-01017",  # invalid username/password; logon denied
    "ORA-28000",  # the account is locked
    "ORA-01045",  # user lacks CREATE SESSION privilege
    "ORA-12505",  # TNS: listener does not currently know of SID (configuration, not a host)
})

_CODE = re.compile(r"\b(ORA|DPY)-(\d{4,5})\b")


def error_codes(exc: BaseException) -> list[str]:
    """All ``ORA-nnnnn`` / ``DPY-nnnn`` codes found along the exception chain."""
    codes: list[str] = []
    for item in error_chain(exc):
        full = getattr(item, "full_code", None)  # oracledb's _Error objects carry it
        if isinstance(full, str):
            codes.append(full)
        for arg in getattr(item, "args", ()):
            codes.extend(f"{m.group(1)}-{m.group(2)}" for m in _CODE.finditer(str(arg)))
            full = getattr(arg, "full_code", None)
            if isinstance(full, str):
                codes.append(full)
    return codes


def classify(exc: BaseException) -> ErrorKind:
    """Tell whether ``exc`` should count towards a failover (see :class:`ErrorKind`)."""
    if local_resource(exc):  # EMFILE, ENOMEM: this process's trouble, not the host's
        return ErrorKind.LOCAL
    codes = error_codes(exc)
    for kind, table in ((ErrorKind.READ_ONLY, READ_ONLY_CODES), (ErrorKind.AUTH, AUTH_CODES),
                        (ErrorKind.CONNECTIVITY, CONNECTIVITY_CODES)):
        if any(code in table for code in codes):
            return kind
    if any(isinstance(item, OSError | asyncio.TimeoutError | TimeoutError)
           for item in error_chain(exc)):
        return ErrorKind.CONNECTIVITY
    return ErrorKind.OTHER
