"""Parser for Oracle Net connect descriptors, ``(DESCRIPTION=...)``, inside an Oracle dsn.

Only the shape, the addresses and SERVICE_NAME/SID are checked: the driver gets the text
unchanged, so any other Oracle Net parameter may appear. Errors never show descriptor text
(it may hold secrets); positions are 0-based offsets. The Easy Connect form and the dsn's
credentials are :mod:`luna_handlers.db.dialects.oracle.dsn`'s.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from luna_handlers.config_schema import ORACLE_DEFAULT_PORT
from luna_handlers.db.hosts import DsnError, HostPort

NAME_RE = re.compile(r"[A-Za-z0-9._$#-]+")  # service names and SIDs
_HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
_KEYWORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_COUNT_RE = re.compile(r"[0-9]{1,6}")
_MAX_DEPTH = 16  # real descriptors nest 4 deep; the bound keeps RecursionError away


def is_count(value: str) -> bool:
    """A count Oracle Net accepts: 0 to 999999."""
    return bool(_COUNT_RE.fullmatch(value))


def first_of(text: str, chars: str, start: int) -> int:
    """The offset of the first of ``chars`` in ``text`` from ``start``, else ``len(text)``."""
    return min((i for i in (text.find(c, start) for c in chars) if i != -1), default=len(text))


def is_host(host: str) -> bool:
    """A host name or IPv6 literal that is safe to write into a descriptor."""
    if _HOST_RE.fullmatch(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Descriptor:
    """What a connect descriptor names; exactly one of ``service_name`` and ``sid`` is set."""

    addresses: tuple[HostPort, ...]
    service_name: str | None
    sid: str | None
    options: tuple[tuple[str, str], ...]  # the lists' and DESCRIPTION's simple parameters
    text: str  # as given
    protocol: str


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


def skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _parse_node(text: str, start: int, depth: int = 0) -> tuple[_Node, int]:
    if depth > _MAX_DEPTH:
        raise DsnError("connect descriptor nested too deeply", start)
    keyword = _KEYWORD_RE.match(text, skip_ws(text, start + 1))
    if keyword is None:
        raise DsnError("expected a keyword after '('", skip_ws(text, start + 1))
    pos = skip_ws(text, keyword.end())
    if not text.startswith("=", pos):
        raise DsnError("expected '=' after the keyword", pos)
    pos = skip_ws(text, pos + 1)
    children: list[_Node] = []
    value = None
    while text.startswith("(", pos):
        child, pos = _parse_node(text, start=pos, depth=depth + 1)
        children.append(child)
        pos = skip_ws(text, pos)
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
        return text[pos + 1:close], skip_ws(text, close + 1)
    end = first_of(text, "()=", pos)
    if end < len(text) and text[end] != ")":
        raise DsnError(f"unexpected {text[end]!r} in a value", end)
    if not text[pos:end].strip():
        raise DsnError("empty value", pos)
    return text[pos:end].strip(), end


def parse_descriptor(text: str, start: int) -> Descriptor:
    """The parts of the connect descriptor at ``text[start:]`` (it must run to the end)."""
    root, end = _parse_node(text, start)
    if skip_ws(text, end) != len(text):
        raise DsnError("unexpected text after the connect descriptor", skip_ws(text, end))
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
    if not NAME_RE.fullmatch(service or sid or ""):
        raise DsnError("invalid character in SERVICE_NAME or SID", data[0].position)
    options = {c.key.lower(): c.value for node in lists for c in node.children if c.value}
    return Descriptor(tuple(_address(node) for node in nodes), service, sid,
                      tuple(sorted(options.items())), text[start:end], protocols.pop())


def _address(node: _Node) -> HostPort:
    host, port = node.leaf("HOST"), node.leaf("PORT")
    if host is None or not is_host(host):
        raise DsnError("ADDRESS needs a valid HOST", node.position)
    if port is not None and not (is_count(port) and 1 <= int(port) <= 65535):
        raise DsnError("PORT must be a number between 1 and 65535", node.position)
    # Oracle Net's own default, not db_port: the descriptor goes to the driver as written.
    return HostPort(host, ORACLE_DEFAULT_PORT if port is None else int(port))


def one_address(text: str, address: HostPort) -> str:
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
