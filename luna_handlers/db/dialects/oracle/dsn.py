"""Parser for the Oracle ``dsn`` of the ``LUNA_HANDLERS_DB`` section (``db_type`` oracle).

Pure string processing, no I/O and no DNS. Two forms, each with optional credentials::

    dsn        = [creds "@"] (easy | descriptor)
    creds      = [user] [(":" | "/") password]
    easy       = [("tcp" | "tcps") "://" | "//"] [item *("," item)] ["/" service] ["?" options]
    item       = (host | "[" IPv6 "]") [":" port]
    options    = key "=" value *("&" key "=" value)                  (see OPTIONS)
    descriptor = "(DESCRIPTION=" ... ")"                             (Oracle Net syntax)

Examples: ``luna/secret@ora1,ora2:1522/luna_svc?connect_timeout=5&retry_count=3`` and
``(DESCRIPTION=(ADDRESS_LIST=(FAILOVER=on)(ADDRESS=(PROTOCOL=TCP)(HOST=ora1)(PORT=1521))
(ADDRESS=(PROTOCOL=TCP)(HOST=ora2)(PORT=1521)))(CONNECT_DATA=(SERVICE_NAME=luna_svc)))``.

SID or service name: ``/service`` in Easy Connect or ``SERVICE_NAME`` in a descriptor names a
service (pluggable databases, RAC and Data Guard role-based services are reached that way);
``SID`` in a descriptor, and an Easy Connect dsn without ``/service`` (or no dsn at all), name
the instance whose SID is ``db_name``, as LUNA documents ``db_name``. Use a service name
unless the database is a single non-CDB instance.

Decisions worth knowing:

* Oracle's port rule: a port serves its host and the port-less hosts before it (``h1,h2:1522``
  is both on 1522); hosts after the last port get ``db_port``. Hosts are tried in order.
* Missing parts come from :class:`OracleDefaults` (the section's other keys); a descriptor is
  used as written, only the credentials can come from the defaults.
* Credentials end at the first ``@(`` when a descriptor follows, else at the last ``@``; they
  split at the first ``:`` or ``/``. Nothing is percent-decoded: this is not a URL. A
  password holding ``@(`` (or a user holding ``:`` or ``/``) belongs in ``db_password``.
* Unknown or repeated Easy Connect options are errors (python-oracledb ignores a typo). A
  descriptor may hold any Oracle Net parameter: the driver gets it unchanged, so only its
  shape, addresses and SERVICE_NAME/SID are checked.
* TCP or TCPS only (what python-oracledb's thin mode speaks), one protocol per dsn.
* Errors never show the password nor descriptor text; positions are 0-based offsets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from luna_handlers.config import DBSettings
from luna_handlers.config_schema import ORACLE_DEFAULT_PORT
from luna_handlers.db.dialects.oracle.descriptor import (
    NAME_RE,
    first_of,
    is_count,
    is_host,
    one_address,
    parse_descriptor,
    skip_ws,
)
from luna_handlers.db.hosts import DsnError, HostPort, split_host_port

_PROTOCOL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SECONDS_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


# option -> (check of the value, what it means and accepts); all are Oracle Net parameters.
OPTIONS: Mapping[str, tuple[Callable[[str], bool], str]] = MappingProxyType({
    "connect_timeout": (lambda v: bool(_SECONDS_RE.fullmatch(v)) and 0 < float(v) < math.inf,
                        "seconds for the TCP connect to each address, > 0"),
    "expire_time": (is_count, "minutes between keep-alive probes, 0 or more"),
    "failover": (lambda v: v in ("on", "off"), "try the next address on failure: on or off"),
    "load_balance": (lambda v: v in ("on", "off"), "try the addresses in random order: on/off"),
    "retry_count": (is_count, "more passes through the address list, 0 (default) or more"),
    "retry_delay": (is_count, "seconds between two passes, 0 or more"),
})


@dataclass(frozen=True)
class OracleDefaults:
    """What a dsn leaves out, from the other keys of the section."""

    host: str = "127.0.0.1"
    port: int = ORACLE_DEFAULT_PORT
    user: str = "luna"
    password: str = field(default="luna", repr=False)  # the documented product default
    sid: str = "luna_handlers"


@dataclass(frozen=True)
class OracleDsn:
    """A parsed Oracle dsn; exactly one of ``service_name`` and ``sid`` is set."""

    addresses: tuple[HostPort, ...]
    service_name: str | None
    sid: str | None
    user: str
    password: str = field(repr=False)
    options: tuple[tuple[str, str], ...] = ()  # sorted by key
    descriptor: str | None = None  # as given; handed to the driver unchanged
    protocol: str = "tcp"

    @property
    def option_map(self) -> dict[str, str]:
        return dict(self.options)

    def public_dict(self) -> dict[str, object]:
        """The dsn without secrets, for ``luna-handlers db dsn`` and logs."""
        target = ({"service_name": self.service_name} if self.service_name is not None
                  else {"sid": self.sid})
        return {
            "db_type": "oracle",
            "form": "easy_connect" if self.descriptor is None else "descriptor",
            "protocol": self.protocol,
            "hosts": [{"host": hp.host, "port": hp.port} for hp in self.addresses],
            "user": self.user,
            "password": "***" if self.password else None,
            **target,
            "options": self.option_map,
        }

    def to_oracledb_dsn(self) -> str:
        """The ``dsn`` for python-oracledb: the descriptor given, or one built from the parts.

        Built, not Easy Connect: Easy Connect cannot name a SID, and python-oracledb takes a
        bare host name for a tnsnames.ora alias.
        """
        if self.descriptor is not None:
            return self.descriptor
        params = "".join(_descriptor_param(key, value) for key, value in self.options)
        addresses = "".join(f"(ADDRESS=(PROTOCOL={self.protocol.upper()})(HOST={hp.host})"
                            f"(PORT={hp.port}))" for hp in self.addresses)
        target = (f"SERVICE_NAME={self.service_name}" if self.service_name is not None
                  else f"SID={self.sid}")
        return f"(DESCRIPTION={params}(ADDRESS_LIST={addresses})(CONNECT_DATA=({target})))"

    def for_address(self, address: HostPort) -> OracleDsn:
        """This dsn with ``address`` as its only address, everything else kept as written."""
        if address not in self.addresses:
            raise ValueError(f"{address} is not an address of this dsn")
        if self.descriptor is None:
            return replace(self, addresses=(address,))
        # Cut the other addresses out of the text: any other Oracle Net parameter (SECURITY,
        # CONNECT_DATA's SERVER...) stays as the user wrote it; reparsed, so it stays checked.
        return _from_descriptor(one_address(self.descriptor, address), 0, self.user,
                                self.password)


def _descriptor_param(key: str, value: str) -> str:
    if key != "connect_timeout":
        return f"({key.upper()}={value})"
    # Oracle Net's per-address TCP timeout (its CONNECT_TIMEOUT also covers the handshake);
    # whole seconds, else milliseconds with the "ms" unit python-oracledb reads.
    seconds = float(value)
    value = str(int(seconds)) if seconds.is_integer() else f"{round(seconds * 1000)}ms"
    return f"(TRANSPORT_CONNECT_TIMEOUT={value})"


def oracle_dsn_from_settings(db: DBSettings) -> OracleDsn:
    """The configured Oracle dsn: ``dsn`` filled from the other keys, or those keys alone."""
    defaults = OracleDefaults(host=db.db_host, port=db.db_port, user=db.db_user,
                              password=db.db_password, sid=db.db_name)
    return parse_oracle_dsn(db.dsn or "", defaults)


def explain_dsn(db: DBSettings) -> dict[str, object]:
    """``luna-handlers db dsn`` for Oracle: the parsed dsn and the driver's dsn, no secret."""
    dsn = oracle_dsn_from_settings(db)
    return {**dsn.public_dict(), "oracledb_dsn": dsn.to_oracledb_dsn()}


def parse_oracle_dsn(text: str, defaults: OracleDefaults | None = None) -> OracleDsn:
    """Parse ``text`` (see the module docstring), filling missing parts from ``defaults``."""
    defaults = defaults or OracleDefaults()
    at = text.find("@(")
    at = text.rfind("@") if at == -1 else at
    user, password = defaults.user, defaults.password
    if at != -1:
        creds = text[:at]
        split = min((i for i in (creds.find(":"), creds.find("/")) if i != -1), default=at)
        user = creds[:split] or defaults.user
        password = creds[split + 1:] if split < at else defaults.password
    start = skip_ws(text, at + 1)
    if text.startswith("(", start):
        return _from_descriptor(text, start, user, password)
    return _from_easy_connect(text, at + 1, defaults, user, password)


# -- Easy Connect ----------------------------------------------------------------------------

def _from_easy_connect(text: str, start: int, defaults: OracleDefaults, user: str,
                       password: str) -> OracleDsn:
    protocol, pos = "tcp", start
    match = _PROTOCOL_RE.match(text, start)
    if match is not None:
        protocol, pos = match.group(1).lower(), match.end()
        if protocol not in ("tcp", "tcps"):
            raise DsnError("unsupported protocol, use tcp:// or tcps://", start)
    elif text.startswith("//", start):
        pos = start + 2
    end = first_of(text, "/?", pos)
    hosts = _parse_hosts(text, pos, end, defaults.port)
    if not hosts:
        hosts = (HostPort(_checked(defaults.host, is_host, "db_host"), defaults.port),)
    service, query = None, end
    if text.startswith("/", end):
        query = first_of(text, "?", end + 1)
        service = _service_name(text, end + 1, query)
    sid = None if service else _checked(defaults.sid, NAME_RE.fullmatch, "db_name")
    return OracleDsn(hosts, service, sid, user, password, _parse_options(text, query + 1),
                     protocol=protocol)


def _checked(value: str, check: Callable[[str], object], key: str) -> str:
    # These keys are written into a generated descriptor, where '(' or '=' would change it.
    if not check(value):
        raise DsnError(f"{key} is not a valid Oracle {'SID' if key == 'db_name' else 'host'}", 0)
    return value


def _parse_hosts(text: str, start: int, end: int, default_port: int) -> tuple[HostPort, ...]:
    if start == end:
        return ()
    items: list[tuple[str, int | None]] = []
    pos = start
    for item in text[start:end].split(","):
        items.append(_parse_host(text, pos, pos + len(item)))
        pos += len(item) + 1
    hosts: list[HostPort] = []
    port = default_port
    for host, own_port in reversed(items):  # a port also serves the port-less hosts before it
        port = port if own_port is None else own_port
        hosts.append(HostPort(host, port))
    return tuple(reversed(hosts))


def _parse_host(text: str, start: int, end: int) -> tuple[str, int | None]:
    try:
        return split_host_port(text, start, end)
    except DsnError as exc:
        if text[exc.position:exc.position + 1] == ";":
            raise DsnError(f"{exc.message}: several address lists need a descriptor",
                           exc.position) from None
        raise


def _service_name(text: str, start: int, end: int) -> str:
    if start == end:
        raise DsnError("empty service name after '/'", start)
    bad = re.search(r"[^A-Za-z0-9._$#-]", text[start:end])
    if bad is not None:
        extra = " (no server type or instance name)" if bad.group() in ":/" else ""
        raise DsnError(f"invalid character in service name{extra}", start + bad.start())
    return text[start:end]


def _parse_options(text: str, start: int) -> tuple[tuple[str, str], ...]:
    if start > len(text):
        return ()
    options: dict[str, str] = {}
    pos = start
    for pair in text[start:].split("&"):
        key, eq, value = pair.partition("=")
        if key not in OPTIONS:
            what = f"unknown option {key!r}" if pair else "empty option (stray '&' or '?')"
            raise DsnError(f"{what}, accepted options: {', '.join(sorted(OPTIONS))}", pos)
        if key in options:
            raise DsnError(f"duplicate option {key!r}", pos)
        check, expected = OPTIONS[key]
        if not eq or not check(value):
            raise DsnError(f"bad value for {key}: {expected}", pos + len(key) + len(eq))
        options[key] = value
        pos += len(pair) + 1
    return tuple(sorted(options.items()))


def _from_descriptor(text: str, start: int, user: str, password: str) -> OracleDsn:
    parts = parse_descriptor(text, start)
    return OracleDsn(parts.addresses, parts.service_name, parts.sid, user, password,
                     parts.options, parts.text, parts.protocol)
