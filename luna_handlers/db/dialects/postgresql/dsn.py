"""Parser for the multi-host PostgreSQL DSN of the ``LUNA_HANDLERS_DB`` config section.

Pure string processing, no I/O and no DNS. Grammar (``[...]`` is optional)::

    dsn      = [scheme] [userinfo "@"] [hostlist] ["/" [dbname]] ["?" query]
    scheme   = "postgresql://" | "postgres://"          (case-insensitive)
    userinfo = user [":" password]
    hostlist = host [":" port] *("," host [":" port])
    host     = 1*(ALPHA | DIGIT | "-" | "." | "_") | "[" IPv6 "]"
    port     = 1*DIGIT                                   (1..65535)
    query    = key "=" value *("&" key "=" value)

Example: ``luna:luna@pg01:5432,pg02:5432/luna_handlers?connect_timeout=5``.

Decisions worth knowing:

* Every missing part comes from :class:`DsnDefaults`; the empty string is a valid DSN
  meaning "all defaults" (one host ``defaults.host:defaults.port``). Whitespace is not
  stripped: it is an error like any other stray character.
* The host list ends at the first ``/`` or ``?``; the userinfo is split from it at the
  *last* ``@`` and into user and password at the *first* ``:``, so raw ``@`` and ``:``
  work inside a password. ``/`` and ``?`` inside a password must be written ``%2F`` and
  ``%3F``, and any ``@`` after the host list (in dbname or options) as ``%40``: an ``@``
  there is an error, because it means a password leaked out of the userinfo.
* User, password, dbname and option values are percent-decoded strictly (a ``%`` not
  followed by two hex digits is an error); ``+`` stays ``+``.
* An empty user means ``defaults.user``; ``user@host`` (no ``:``) means
  ``defaults.password``, while ``user:@host`` is an explicitly empty password.
* ``/`` followed by nothing (or by ``?``) means ``defaults.dbname``.
* Options are stored sorted by key, so DSNs differing only in option order compare equal.
  Unknown and duplicated keys are errors: a typo must never be silently ignored.
* No error message ever contains the password; positions are 0-based offsets into the input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote, unquote_to_bytes

from luna_handlers.config import DBSettings
from luna_handlers.db.hosts import DsnError, HostPort, TargetSessionAttrs, split_host_port

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SCHEMES = ("postgresql", "postgres")
_MAX_APPLICATION_NAME = 63  # PostgreSQL's NAMEDATALEN - 1; longer names get truncated

ACCEPTED_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "application_name": "name shown in pg_stat_activity (at most 63 characters)",
        "connect_timeout": "seconds to wait for each host, a positive number",
        "sslmode": "TLS mode: " + ", ".join(_SSLMODES),
        "target_session_attrs": "which server to accept: " + ", ".join(TargetSessionAttrs),
    }
)


@dataclass(frozen=True)
class DsnDefaults:
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "luna"
    password: str = "luna"  # noqa: S105 -- the documented product default, not a secret
    dbname: str = "luna_handlers"


@dataclass(frozen=True)
class PgDsn:
    hosts: tuple[HostPort, ...]
    user: str
    password: str = field(repr=False)
    dbname: str
    options: tuple[tuple[str, str], ...] = ()  # sorted by key

    @property
    def option_map(self) -> dict[str, str]:
        return dict(self.options)

    @property
    def target_session_attrs(self) -> TargetSessionAttrs:
        # read-write by default: this service writes, so it must land on the primary
        value = self.option_map.get("target_session_attrs", TargetSessionAttrs.READ_WRITE)
        return TargetSessionAttrs(value)

    @property
    def connect_timeout(self) -> float | None:
        value = self.option_map.get("connect_timeout")
        return None if value is None else float(value)

    def public_dict(self) -> dict[str, object]:
        return {
            "db_type": "postgres",
            "hosts": [{"host": hp.host, "port": hp.port} for hp in self.hosts],
            "user": self.user,
            "password": "***" if self.password else None,
            "dbname": self.dbname,
            "options": self.option_map,
        }

    def redacted(self) -> str:
        # an empty password is shown as such: it hides nothing and tells "empty" from "set"
        password = "***" if self.password else ""
        hosts = ",".join(str(hp) for hp in self.hosts)
        text = f"postgresql://{quote(self.user, safe='')}:{password}@{hosts}"
        text += "/" + quote(self.dbname, safe="")
        if self.options:
            text += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in self.options)
        return text

    def __str__(self) -> str:
        return self.redacted()


_DEFAULTS = DsnDefaults()
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_AUTHORITY_END_RE = re.compile(r"[/?]")
_HEX2_RE = re.compile(r"[0-9A-Fa-f]{2}")
_TIMEOUT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_pg_dsn(text: str, defaults: DsnDefaults = _DEFAULTS) -> PgDsn:
    """Parse ``text`` (see the module docstring), filling missing parts from ``defaults``."""
    start = _parse_scheme(text)
    authority_end = _AUTHORITY_END_RE.search(text, start)
    end = len(text) if authority_end is None else authority_end.start()
    stray_at = text.find("@", end)
    if stray_at != -1:
        raise DsnError(
            "'@' after the host list: write it as %40 in dbname and options, "
            "and write '/' and '?' inside a password as %2F and %3F",
            stray_at,
        )
    user, password, hosts_start = _parse_userinfo(text, start, end, defaults)
    hosts = _parse_hostlist(text, hosts_start, end, defaults.port)
    dbname, query_start = _parse_dbname(text, end, defaults.dbname)
    hosts = hosts or (HostPort(defaults.host, defaults.port),)
    return PgDsn(hosts, user, password, dbname, _parse_query(text, query_start))


def _parse_scheme(text: str) -> int:
    """Return where the text after an optional ``postgresql://`` starts."""
    match = _SCHEME_RE.match(text)
    if match is None:
        return 0
    scheme = match.group(1)
    if scheme.lower() not in _SCHEMES:
        raise DsnError(f"unsupported scheme {scheme!r}, use postgresql:// or postgres://", 0)
    return match.end()


def _parse_userinfo(text: str, start: int, end: int, defaults: DsnDefaults) -> tuple[str, str, int]:
    """Return (user, password, start of the host list)."""
    at = text.rfind("@", start, end)
    if at == -1:
        return defaults.user, defaults.password, start
    colon = text.find(":", start, at)
    user_end = at if colon == -1 else colon
    user = _decode(text, start, user_end, "user") or defaults.user
    password = defaults.password if colon == -1 else _decode(text, colon + 1, at, "password")
    return user, password, at + 1


def _parse_hostlist(text: str, start: int, end: int, default_port: int) -> tuple[HostPort, ...]:
    if start == end:
        return ()
    hosts: list[HostPort] = []
    pos = start
    for item in text[start:end].split(","):
        hosts.append(_parse_host(text, pos, pos + len(item), default_port))
        pos += len(item) + 1
    return tuple(hosts)


def _parse_host(text: str, start: int, end: int, default_port: int) -> HostPort:
    host, port = split_host_port(text, start, end)
    return HostPort(host, default_port if port is None else port)


def _parse_dbname(text: str, end: int, default: str) -> tuple[str, int]:
    """Return (dbname, start of the query text or len(text) when there is none)."""
    if end == len(text):
        return default, end
    if text[end] == "?":
        return default, end + 1
    query = text.find("?", end + 1)
    stop = len(text) if query == -1 else query
    slash = text.find("/", end + 1, stop)
    if slash != -1:
        raise DsnError("'/' in dbname must be written as %2F", slash)
    dbname = _decode(text, end + 1, stop, "dbname") or default
    return dbname, stop if query == -1 else query + 1


def _parse_query(text: str, start: int) -> tuple[tuple[str, str], ...]:
    if start >= len(text):
        return ()
    options: dict[str, str] = {}
    pos = start
    for pair in text[start:].split("&"):
        key, value = _parse_option(text, pos, pos + len(pair), options)
        options[key] = value
        pos += len(pair) + 1
    return tuple(sorted(options.items()))


def _parse_option(text: str, start: int, end: int, seen: Mapping[str, str]) -> tuple[str, str]:
    if start == end:
        raise DsnError("empty option (stray '&')", start)
    eq = text.find("=", start, end)
    key = text[start : end if eq == -1 else eq]
    if key not in ACCEPTED_OPTIONS:
        accepted = ", ".join(sorted(ACCEPTED_OPTIONS))
        raise DsnError(f"unknown option {key!r}, accepted options: {accepted}", start)
    if key in seen:
        raise DsnError(f"duplicate option {key!r}", start)
    if eq == -1:
        raise DsnError(f"option {key!r} has no '=value'", end)
    value = _decode(text, eq + 1, end, f"value of {key}")
    check, expected = _OPTION_CHECKS[key]
    if not check(value):
        raise DsnError(f"bad value for {key}: expected {expected}", eq + 1)
    return key, value


def _is_timeout(value: str) -> bool:
    return bool(_TIMEOUT_RE.fullmatch(value)) and 0 < float(value) < math.inf


_TSA_VALUES = tuple(TargetSessionAttrs)
# option name -> (is the decoded value acceptable, what is accepted, for the error message)
_OPTION_CHECKS: Mapping[str, tuple[Callable[[str], bool], str]] = {
    "application_name": (lambda v: len(v) <= _MAX_APPLICATION_NAME, "at most 63 characters"),
    "connect_timeout": (_is_timeout, "a positive number of seconds, such as 5 or 2.5"),
    "sslmode": (lambda v: v in _SSLMODES, "one of " + ", ".join(_SSLMODES)),
    "target_session_attrs": (lambda v: v in _TSA_VALUES, "one of " + ", ".join(_TSA_VALUES)),
}


def _decode(text: str, start: int, end: int, what: str) -> str:
    """Strictly percent-decode ``text[start:end]``; ``what`` names the part, never its text."""
    raw = text[start:end]
    for i, char in enumerate(raw):
        if char == "%" and not _HEX2_RE.fullmatch(raw, i + 1, i + 3):
            raise DsnError(f"bad percent-escape in {what}", start + i)
    try:
        decoded = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise DsnError(f"percent-escapes in {what} are not valid UTF-8", start) from None
    if "\x00" in decoded:
        raise DsnError(f"NUL character in {what}", start)
    return decoded


def pg_dsn(db: DBSettings) -> PgDsn:
    """The configured PostgreSQL DSN: ``dsn`` filled from the other keys, or those keys alone."""
    defaults = DsnDefaults(host=db.db_host, port=db.db_port, user=db.db_user,
                           password=db.db_password, dbname=db.db_name)
    return parse_pg_dsn(db.dsn or "", defaults)
