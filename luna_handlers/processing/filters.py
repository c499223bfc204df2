"""The ``filters`` of storage, match and conditional-tag policies, applied to one event.

Only the ``match`` filters can be evaluated here (age, gender and liveness are refused by
:mod:`.checks` before anything runs). ``match: [{label, similarity__gte?, similarity__lt?}]``
passes when, for EVERY item, the match group of that label has at least one candidate with
similarity in ``[gte, lt)``; a label without candidates (or unknown) fails its item. An empty
or null filter passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: label -> similarities of that label's candidates (best first).
Similarities = Mapping[str, Sequence[float]]


def _in_range(similarity: float, low: float | None, high: float | None) -> bool:
    return (low is None or similarity >= low) and (high is None or similarity < high)


def passes(filters: Mapping[str, Any] | None, similarities: Similarities) -> bool:
    """Whether an event whose matches gave ``similarities`` passes ``filters``."""
    if not filters:
        return True
    for item in filters.get("match") or ():
        found = similarities.get(item["label"], ())
        low, high = item.get("similarity__gte"), item.get("similarity__lt")
        if not any(_in_range(value, low, high) for value in found):
            return False
    return True
