"""Query parameters of the list and count routes, declared once in tables.

Each :class:`QueryParam` carries its parser AND its JSON Schema, so the parser and the
OpenAPI document cannot drift apart. A parser raises ``ValueError(problem)``;
:func:`parse_query` turns that into ``BadQueryParams`` (12012) naming the parameter. Unknown and
repeated parameters are errors too: a typo must not silently widen a filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from luna_handlers.app.policy_types import MAX_STR_LENGTH, UUID_PATTERN
from luna_handlers.db import ListFilters
from luna_handlers.errors import BadQueryParams

MAX_PAGE_SIZE = 1000
MAX_IDS = 1000
# Bounded so that OFFSET = (page - 1) * page_size always fits a 64-bit integer.
MAX_PAGE = 2**31 - 1

_UUID = re.compile(UUID_PATTERN)
_INTEGER = re.compile(r"[0-9]{1,12}")
# RFC 3339 date-time; a zone is required so that the instant is unambiguous.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")
#: PostgreSQL text cannot hold NUL, so such a value could never match (and would fail the query).
NO_NUL_PATTERN = "^[^\\x00]*$"

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}


def canonical_uuid(text: str) -> str | None:
    """``text`` as a lower-case hyphenated UUID, or None when it is not one."""
    return text.lower() if _UUID.fullmatch(text) else None


def _uuid(text: str) -> str:
    value = canonical_uuid(text)
    if value is None:
        raise ValueError("must be a UUID")
    return value


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text) if _INTEGER.fullmatch(text) else None
        if value is None or not low <= value <= high:
            raise ValueError(f"must be an integer in {low}..{high}")
        return value

    return parse


def _flag(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError("must be 0 or 1")
    return text == "1"


def _text(text: str) -> str:
    if len(text) > MAX_STR_LENGTH or "\x00" in text:
        raise ValueError(f"must be at most {MAX_STR_LENGTH} characters, without NUL")
    return text


def _uuid_list(text: str) -> list[str]:
    items = text.split(",")
    if len(items) > MAX_IDS:
        raise ValueError(f"must list at most {MAX_IDS} ids")
    try:
        return [_uuid(item) for item in items]
    except ValueError:
        raise ValueError("must be a comma-separated list of UUIDs") from None


def _date_time(text: str) -> datetime:
    """RFC 3339 with a zone -> naive UTC, as the database stores times."""
    try:
        if not _DATE_TIME.fullmatch(text):
            raise ValueError
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError("must be an RFC 3339 date-time with a time zone") from None
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        # Beyond year 1..9999 in UTC: the nearest representable instant filters identically.
        return datetime.min if moment.year == 1 else datetime.max


@dataclass(frozen=True)
class QueryParam:
    """One query parameter: parser, default, and its OpenAPI description."""

    name: str
    parse: Callable[[str], Any]
    schema: dict[str, Any]
    description: str
    default: Any = None
    # OpenAPI serialisation: arrays are sent comma-separated (style=form, explode=false).
    openapi_extra: dict[str, Any] = field(default_factory=dict)


PAGE = QueryParam("page", _int_in(1, MAX_PAGE),
                  {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
                  "Page number, from 1. A page past the end is empty.", default=1)
PAGE_SIZE = QueryParam("page_size", _int_in(1, MAX_PAGE_SIZE),
                       {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 10},
                       "Objects per page.", default=10)
DESCRIPTION = QueryParam(
    "description", _text,
    {"type": "string", "maxLength": MAX_STR_LENGTH, "pattern": NO_NUL_PATTERN},
    "Keep objects whose description contains this text (case-sensitive substring).")
IS_DYNAMIC = QueryParam("is_dynamic", _flag, {"type": "integer", "enum": [0, 1]},
                        "1: only dynamic handlers, 0: only static handlers.")
CREATE_TIME_GTE = QueryParam("create_time__gte", _date_time,
                             {"type": "string", "format": "date-time"},
                             "Created at or after this RFC 3339 date-time (zone required).")
CREATE_TIME_LT = QueryParam("create_time__lt", _date_time,
                            {"type": "string", "format": "date-time"},
                            "Created before this RFC 3339 date-time (zone required).")
ACCOUNT_ID = QueryParam(
    "account_id", _uuid, UUID_SCHEMA,
    "Only objects of this account. With a Luna-Account-Id header that differs, the result "
    "is empty: the header always scopes the request.")


def _ids(name: str, what: str) -> QueryParam:
    return QueryParam(
        name, _uuid_list,
        {"type": "array", "items": UUID_SCHEMA, "minItems": 1, "maxItems": MAX_IDS},
        f"Only these {what} ids, comma-separated (at most {MAX_IDS}).",
        openapi_extra={"style": "form", "explode": False})


HANDLER_IDS = _ids("handler_ids", "handler")
VERIFIER_IDS = _ids("verifier_ids", "verifier")


def _table(*params: QueryParam) -> dict[str, QueryParam]:
    return {param.name: param for param in params}


HANDLER_COUNT_PARAMS = _table(DESCRIPTION, HANDLER_IDS, IS_DYNAMIC, CREATE_TIME_GTE,
                              CREATE_TIME_LT, ACCOUNT_ID)
HANDLER_LIST_PARAMS = _table(PAGE, PAGE_SIZE, *HANDLER_COUNT_PARAMS.values())
VERIFIER_COUNT_PARAMS = _table(DESCRIPTION, VERIFIER_IDS, CREATE_TIME_GTE, CREATE_TIME_LT,
                               ACCOUNT_ID)
VERIFIER_LIST_PARAMS = _table(PAGE, PAGE_SIZE, *VERIFIER_COUNT_PARAMS.values())


def parse_query(items: Iterable[tuple[str, str]],
                params: Mapping[str, QueryParam]) -> dict[str, Any]:
    """Parse query ``items`` against ``params``: every declared name, default when absent."""
    values = {name: param.default for name, param in params.items()}
    seen: set[str] = set()
    for name, text in items:
        param = params.get(name)
        if param is None:
            raise BadQueryParams(name, "unknown parameter")
        if name in seen:
            raise BadQueryParams(name, "given more than once")
        seen.add(name)
        try:
            values[name] = param.parse(text)
        except ValueError as exc:
            raise BadQueryParams(name, str(exc)) from None
    return values


def list_filters(values: Mapping[str, Any], header_account: str | None,
                 ids_param: str) -> ListFilters | None:
    """The DB filters of parsed ``values``; None when nothing can match.

    The ``Luna-Account-Id`` header scopes the request: an ``account_id`` query value naming
    another account selects nothing (an empty page, a count of 0), never a foreign object.
    """
    query_account = values.get("account_id")
    if header_account is not None and query_account not in (None, header_account):
        return None
    return ListFilters(
        account_id=header_account or query_account,
        description=values.get("description"),
        ids=values.get(ids_param),
        create_time__gte=values.get("create_time__gte"),
        create_time__lt=values.get("create_time__lt"),
        is_dynamic=values.get("is_dynamic"),
    )
