"""What both dialects' DSNs share: host addresses, the DSN error, the target session kinds.

``host[:port]`` and ``[ipv6][:port]`` are parsed here once, for the PostgreSQL host list and
Oracle's Easy Connect alike; positions in errors are 0-based offsets into the input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum


class TargetSessionAttrs(StrEnum):
    """Which server may carry the pool (libpq's ``target_session_attrs``, PG14+)."""

    ANY = "any"
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"
    PRIMARY = "primary"
    STANDBY = "standby"
    PREFER_STANDBY = "prefer-standby"


class DsnError(ValueError):
    """A malformed DSN; ``position`` is the 0-based offset of the problem in the input."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"invalid DSN at position {position}: {message}")
        self.message = message
        self.position = position

    def __reduce__(self) -> tuple[type[DsnError], tuple[str, int]]:
        # the default reduce would call __init__ with the formatted text only
        return type(self), (self.message, self.position)


@dataclass(frozen=True)
class HostPort:
    """One server address."""

    host: str  # an IPv6 literal is stored without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_BAD_HOST_CHAR_RE = re.compile(r"[^A-Za-z0-9._-]")
_DIGITS_RE = re.compile(r"[0-9]+")


def split_host_port(text: str, start: int, end: int) -> tuple[str, int | None]:
    """Parse ``host[:port]`` or ``[ipv6][:port]`` in ``text[start:end]``; the port is None
    when absent."""
    if start == end:
        raise DsnError("empty host name", start)
    if text[start] == "[":
        host, after = _parse_ipv6(text, start, end)
    else:
        colon = text.find(":", start, end)
        after = end if colon == -1 else colon
        host = text[start:after]
        if not host:
            raise DsnError("empty host name", start)
        bad = _BAD_HOST_CHAR_RE.search(text, start, after)
        if bad is not None:
            raise DsnError(f"invalid character {bad.group()!r} in host name", bad.start())
    if after == end:
        return host, None
    return host, _parse_port(text, after + 1, end)


def _parse_ipv6(text: str, start: int, end: int) -> tuple[str, int]:
    """Parse ``[addr]`` at ``start``; return the address and the offset after ``]``."""
    close = text.find("]", start, end)
    if close == -1:
        raise DsnError("unclosed '[' in host list", start)
    host = text[start + 1 : close]
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise DsnError("invalid IPv6 address", start + 1) from None
    after = close + 1
    if after != end and text[after] != ":":
        raise DsnError("expected ':port', ',' or end of host list after ']'", after)
    return host, after


def _parse_port(text: str, start: int, end: int) -> int:
    raw = text[start:end]
    if not raw:
        raise DsnError("empty port after ':'", start)
    if not _DIGITS_RE.fullmatch(raw):
        raise DsnError("port must be decimal digits", start)
    port = int(raw)
    if not 1 <= port <= 65535:
        raise DsnError("port must be between 1 and 65535", start)
    return port
