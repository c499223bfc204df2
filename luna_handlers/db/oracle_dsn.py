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

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from luna_handlers.config import ORACLE_DEFAULT_PORT, DBSettings
from luna_handlers.db.dsn import DsnError, HostPort, split_host_port

_NAME_RE = re.compile(r"[A-Za-z0-9._$#-]+")  # service names and SIDs
_HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
_PROTOCOL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_KEYWORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_COUNT_RE = re.compile(r"[0-9]{1,6}")
_SECONDS_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MAX_DEPTH = 16  # real descriptors nest 4 deep; the bound keeps RecursionError away


def _is_count(value: str) -> bool:
    return bool(_COUNT_RE.fullmatch(value))


# option -> (check of the value, what it means and accepts); all are Oracle Net parameters.
OPTIONS: Mapping[str, tuple[Callable[[str], bool], str]] = MappingProxyType({
    "connect_timeout": (lambda v: bool(_SECONDS_RE.fullmatch(v)) and 0 < float(v) < math.inf,
                        "seconds for the TCP connect to each address, > 0"),
    "expire_time": (_is_count, "minutes between keep-alive probes, 0 or more"),
    "failover": (lambda v: v in ("on", "off"), "try the next address on failure: on or off"),
    "load_balance": (lambda v: v in ("on", "off"), "try the addresses in random order: on/off"),
    "retry_count": (_is_count, "more passes through the address list, 0 (default) or more"),
    "retry_delay": (_is_count, "seconds between two passes, 0 or more"),
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
        return _from_descriptor(_one_address(self.descriptor, address), 0, self.user,
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
    start = _skip_ws(text, at + 1)
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
    end = _first_of(text, "/?", pos)
    hosts = _parse_hosts(text, pos, end, defaults.port)
    if not hosts:
        hosts = (HostPort(_checked(defaults.host, _is_host, "db_host"), defaults.port),)
    service, query = None, end
    if text.startswith("/", end):
        query = _first_of(text, "?", end + 1)
        service = _service_name(text, end + 1, query)
    sid = None if service else _checked(defaults.sid, _NAME_RE.fullmatch, "db_name")
    return OracleDsn(hosts, service, sid, user, password, _parse_options(text, query + 1),
                     protocol=protocol)


def _first_of(text: str, chars: str, start: int) -> int:
    return min((i for i in (text.find(c, start) for c in chars) if i != -1), default=len(text))


def _is_host(host: str) -> bool:
    if _HOST_RE.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


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


# -- connect descriptor ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Node:
    """``(KEY=value)`` or ``(KEY=(...)(...))``; ``position`` is the offset of its ``(``."""

    key: str  # upper case: Oracle Net keywords are case-insensitive
    value: str | None
    children: tuple[_Node, ...]
    position: int
    end: int  # the offset just past its ")"

    def leaf(self, key: str) -> str | None:
        found = [child for child in self.children if child.key == key]
        if len(found) > 1:
            raise DsnError(f"{key} given twice", found[1].position)
        if found and found[0].value is None:
            raise DsnError(f"{key} needs a value, not a list", found[0].position)
        return found[0].value if found else None


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _parse_node(text: str, start: int, depth: int = 0) -> tuple[_Node, int]:
    if depth > _MAX_DEPTH:
        raise DsnError("connect descriptor nested too deeply", start)
    keyword = _KEYWORD_RE.match(text, _skip_ws(text, start + 1))
    if keyword is None:
        raise DsnError("expected a keyword after '('", _skip_ws(text, start + 1))
    pos = _skip_ws(text, keyword.end())
    if not text.startswith("=", pos):
        raise DsnError("expected '=' after the keyword", pos)
    pos = _skip_ws(text, pos + 1)
    children: list[_Node] = []
    value = None
    while text.startswith("(", pos):
        child, pos = _parse_node(text, start=pos, depth=depth + 1)
        children.append(child)
        pos = _skip_ws(text, pos)
    if not children and pos < len(text):
        value, pos = _parse_value(text, pos)
    if pos >= len(text):
        raise DsnError("unbalanced parentheses: this '(' is never closed", start)
    if text[pos] != ")":
        raise DsnError("expected ')' or '('", pos)
    return _Node(keyword.group().upper(), value, tuple(children), start, pos + 1), pos + 1


def _parse_value(text: str, pos: int) -> tuple[str, int]:
    if text.startswith('"', pos):  # Oracle Net quotes values that hold special characters
        close = text.find('"', pos + 1)
        if close == -1:
            raise DsnError("unclosed '\"'", pos)
        return text[pos + 1:close], _skip_ws(text, close + 1)
    end = _first_of(text, "()=", pos)
    if end < len(text) and text[end] != ")":
        raise DsnError(f"unexpected {text[end]!r} in a value", end)
    if not text[pos:end].strip():
        raise DsnError("empty value", pos)
    return text[pos:end].strip(), end


def _from_descriptor(text: str, start: int, user: str, password: str) -> OracleDsn:
    root, end = _parse_node(text, start)
    if _skip_ws(text, end) != len(text):
        raise DsnError("unexpected text after the connect descriptor", _skip_ws(text, end))
    if root.key != "DESCRIPTION":
        raise DsnError("a connect descriptor must be one (DESCRIPTION=...)", start)
    lists = [root, *(c for c in root.children if c.key == "ADDRESS_LIST")]
    nodes = [c for node in lists for c in node.children if c.key == "ADDRESS"]
    if not nodes:
        raise DsnError("no (ADDRESS=...) in the connect descriptor", start)
    protocols = {(node.leaf("PROTOCOL") or "tcp").lower() for node in nodes}
    if len(protocols) > 1 or not protocols <= {"tcp", "tcps"}:
        raise DsnError("PROTOCOL must be TCP or TCPS, the same for every address", start)
    data = [c for c in root.children if c.key == "CONNECT_DATA"]
    if len(data) != 1:
        raise DsnError("the connect descriptor needs one (CONNECT_DATA=...)", start)
    service, sid = data[0].leaf("SERVICE_NAME"), data[0].leaf("SID")
    if (service is None) == (sid is None):
        raise DsnError("CONNECT_DATA needs exactly one of SERVICE_NAME and SID", data[0].position)
    if not _NAME_RE.fullmatch(service or sid or ""):
        raise DsnError("invalid character in SERVICE_NAME or SID", data[0].position)
    options = {c.key.lower(): c.value for node in lists for c in node.children if c.value}
    return OracleDsn(tuple(_address(node) for node in nodes), service, sid, user, password,
                     tuple(sorted(options.items())), text[start:end], protocols.pop())


def _address(node: _Node) -> HostPort:
    host, port = node.leaf("HOST"), node.leaf("PORT")
    if host is None or not _is_host(host):
        raise DsnError("ADDRESS needs a valid HOST", node.position)
    if port is not None and not (_is_count(port) and 1 <= int(port) <= 65535):
        raise DsnError("PORT must be a number between 1 and 65535", node.position)
    # Oracle Net's own default, not db_port: the descriptor goes to the driver as written.
    return HostPort(host, ORACLE_DEFAULT_PORT if port is None else int(port))


def _one_address(text: str, address: HostPort) -> str:
    """The descriptor ``text`` without every ADDRESS but the first one of ``address``."""
    root, _end = _parse_node(text, 0)
    lists = [root, *(c for c in root.children if c.key == "ADDRESS_LIST")]
    home, keep = next((node, c) for node in lists for c in node.children
                      if c.key == "ADDRESS" and _address(c) == address)
    # Other lists go whole (an emptied ADDRESS_LIST is no list); the kept one keeps its own
    # parameters (FAILOVER, LOAD_BALANCE...), harmless with one address.
    cut = [c for node in dict.fromkeys((root, home)) for c in node.children
           if c.key == "ADDRESS" and c is not keep]
    cut += [node for node in lists[1:] if node is not home]
    for node in sorted(cut, key=lambda n: n.position, reverse=True):
        text = text[:node.position] + text[node.end:]
    return text
