"""The list filters as bind values: pure, table-driven."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from luna_handlers.db.context import HANDLER, VERIFIER
from luna_handlers.db.listing import COUNT, PAGE, filter_params
from luna_handlers.db.records import ListFilters

T = datetime(2025, 1, 1)


@pytest.mark.parametrize(("filters", "handler", "verifier"), [
    (ListFilters(), {}, {}),
    # Empty means "any" (Oracle stores '' as NULL); % _ and / match themselves.
    (ListFilters(description=""), {}, {}),
    (ListFilters(description="50%_off/x"), {"description": "%50/%/_off//x%"},
     {"description": "%50/%/_off//x%"}),
    # Under 3 characters (no trigram): a filter of its own name, so a statement of its own.
    (ListFilters(description="a%"), {"description_short": "%a/%%"},
     {"description_short": "%a/%%"}),
    (ListFilters(description="abc"), {"description": "%abc%"}, {"description": "%abc%"}),
    (ListFilters(account_id="a", ids=("i1", "i2")), {"account_id": "a", "ids": ["i1", "i2"]},
     {"account_id": "a", "ids": ["i1", "i2"]}),
    (ListFilters(ids=[]), {"ids": []}, {"ids": []}),  # no ids at all: nothing matches
    (ListFilters(create_time__gte=T, create_time__lt=T),
     {"create_time__gte": T, "create_time__lt": T}, {"create_time__gte": T, "create_time__lt": T}),
    # is_dynamic filters handlers only; False is a value, not "any".
    (ListFilters(is_dynamic=False), {"is_dynamic": False}, {}),
])
def test_filter_params(filters: ListFilters, handler: dict[str, Any],
                       verifier: dict[str, Any]) -> None:
    assert filter_params(HANDLER, filters) == handler
    assert filter_params(VERIFIER, filters) == verifier


def test_one_statement_per_table_and_shape() -> None:
    shape = ("account_id", "ids")
    assert PAGE(HANDLER, shape) is PAGE(HANDLER, shape)
    assert PAGE(HANDLER, shape) is not PAGE(VERIFIER, shape)
    assert PAGE(HANDLER, shape) is not PAGE(HANDLER, ("account_id",))
    assert COUNT(HANDLER, shape) is not PAGE(HANDLER, shape)
