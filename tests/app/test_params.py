"""Query parameter parsing, table-driven: values, defaults, errors and the filters built."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from luna_handlers.app.params import (
    HANDLER_COUNT_PARAMS,
    HANDLER_LIST_PARAMS,
    VERIFIER_LIST_PARAMS,
    canonical_uuid,
    list_filters,
    parse_query,
)
from luna_handlers.db.context import ListFilters
from luna_handlers.errors import BadQueryParams

A = "6d8f8f9e-6a9b-4c1e-9f57-0c7e2b1d2a3f"
B = "0b8e5a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c"

GOOD: list[tuple[str, str, Any]] = [
    ("page", "1", 1),
    ("page", "007", 7),
    ("page", "2147483647", 2_147_483_647),
    ("page_size", "1000", 1000),
    ("description", "", ""),
    ("description", "gate %_", "gate %_"),
    ("is_dynamic", "0", False),
    ("is_dynamic", "1", True),
    ("account_id", A.upper(), A),
    ("handler_ids", f"{A},{B.upper()}", [A, B]),
    ("create_time__gte", "2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10)),
    ("create_time__gte", "2024-01-31t10:00:00.5+03:00", datetime(2024, 1, 31, 7, 0, 0, 500000)),
    ("create_time__lt", "2024-01-31T10:00:00.1234567-01:30",
     datetime(2024, 1, 31, 11, 30, 0, 123456)),
    # beyond the datetime range in UTC: clamped, which filters identically
    ("create_time__gte", "0001-01-01T00:00:00+01:00", datetime.min),
    ("create_time__lt", "9999-12-31T23:59:59-01:00", datetime.max),
]

BAD: list[tuple[str, str]] = [
    ("page", "0"), ("page", "-1"), ("page", "+1"), ("page", "1.0"), ("page", " 1"),
    ("page", "\u0661"),  # an Arabic-Indic digit one: int() would take it
    ("page", "2147483648"), ("page", "9" * 40),
    ("page_size", "0"), ("page_size", "1001"), ("page_size", ""),
    ("description", "x" * 129), ("description", "a\x00"),
    ("is_dynamic", "true"), ("is_dynamic", "2"), ("is_dynamic", ""),
    ("account_id", "x"), ("account_id", A + " "), ("account_id", A.replace("-", "")),
    ("account_id", "{" + A + "}"),
    ("handler_ids", ""), ("handler_ids", f"{A},"), ("handler_ids", f"{A},,{B}"),
    ("create_time__gte", "2024-01-31"), ("create_time__gte", "2024-01-31T10:00:00"),
    ("create_time__gte", "2024-01-31 10:00:00Z"), ("create_time__gte", "2024-02-30T10:00:00Z"),
    ("create_time__gte", "2024-01-31T24:00:00Z"), ("create_time__gte", "2024-01-31T10:00:60Z"),
    ("create_time__gte", "2024-01-31T10:00:00+25:00"), ("create_time__lt", "now-1h"),
]


@pytest.mark.parametrize(("name", "text", "expected"), GOOD)
def test_good_values(name: str, text: str, expected: Any) -> None:
    assert parse_query([(name, text)], HANDLER_LIST_PARAMS)[name] == expected


@pytest.mark.parametrize(("name", "text"), BAD)
def test_bad_values_name_the_parameter(name: str, text: str) -> None:
    with pytest.raises(BadQueryParams) as error:
        parse_query([(name, text)], HANDLER_LIST_PARAMS)
    assert f"'{name}'" in error.value.detail


def test_defaults() -> None:
    values = parse_query([], HANDLER_LIST_PARAMS)
    assert (values["page"], values["page_size"]) == (1, 10)
    assert all(values[name] is None for name in HANDLER_COUNT_PARAMS)


def test_at_most_a_thousand_ids() -> None:
    assert len(parse_query([("verifier_ids", ",".join([A] * 1000))],
                           VERIFIER_LIST_PARAMS)["verifier_ids"]) == 1000
    with pytest.raises(BadQueryParams):
        parse_query([("verifier_ids", ",".join([A] * 1001))], VERIFIER_LIST_PARAMS)


@pytest.mark.parametrize(("items", "table"), [
    ([("page", "1")], HANDLER_COUNT_PARAMS),
    ([("is_dynamic", "1")], VERIFIER_LIST_PARAMS),
    ([("page", "1"), ("page", "1")], HANDLER_LIST_PARAMS),
    ([("PAGE", "1")], HANDLER_LIST_PARAMS),
])
def test_unknown_or_repeated_parameters(items: list[tuple[str, str]],
                                        table: dict[str, Any]) -> None:
    with pytest.raises(BadQueryParams):
        parse_query(items, table)


@pytest.mark.parametrize(("header", "query", "expected"), [
    (None, None, None),
    (A, None, A),
    (None, B, B),
    (A, A, A),
])
def test_account_scoping(header: str | None, query: str | None, expected: str | None) -> None:
    values = parse_query([("account_id", query)] if query else [], HANDLER_COUNT_PARAMS)
    filters = list_filters(values, header, "handler_ids")
    assert filters == ListFilters(account_id=expected)


def test_a_query_account_other_than_the_header_selects_nothing() -> None:
    values = parse_query([("account_id", B)], HANDLER_COUNT_PARAMS)
    assert list_filters(values, A, "handler_ids") is None


@pytest.mark.parametrize(("text", "expected"), [
    (A, A), (A.upper(), A), ("nope", None), (A[:-1], None), (A + "0", None), (A + "\n", None),
])
def test_canonical_uuid(text: str, expected: str | None) -> None:
    assert canonical_uuid(text) == expected
