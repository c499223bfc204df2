"""The field types every policy model is built from, and the strict base model.

The rules they carry are listed in :mod:`luna_handlers.app.policy_models`; the numeric limits are
this project's choices where LUNA PLATFORM 5 does not publish them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

#: Cap of every list inside policies (match_policy, conditional_tags_policy, id lists, ...).
#: LUNA caps these with an unpublished ``MAX_POLICY_LIST_LENGTH``; 100 is our choice.
MAX_POLICY_LIST_LENGTH = 100
#: Max length of descriptions, labels, tags and ``user_data`` filters (LUNA ``Str128``).
MAX_STR_LENGTH = 128
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: ISO 8601 date-time with a zone (``2024-01-31T10:00:00Z``, ``...+03:00``, optional fraction)
#: or a relative time ``now-<N><unit>``, unit one of s m h d w M y (LUNA candidate filters).
TIME_PATTERN = (
    r"^(now-[0-9]{1,9}[smhdwMy]"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2}))$"
)


def _integral(value: object) -> object:
    """Accept an integral float (``1.0``) as an int, as JSON Schema's ``integer`` does."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# the range constraints must come BEFORE the validator so that they land in the JSON Schema
_INTEGRAL = BeforeValidator(_integral)
Flag = Annotated[int, Field(ge=0, le=1), _INTEGRAL]
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
Angle = Annotated[int, Field(ge=0, le=180), _INTEGRAL]
Limit = Annotated[int, Field(ge=1, le=1000), _INTEGRAL]
Ttl = Annotated[int, Field(ge=1, le=31_536_000), _INTEGRAL]
Age = Annotated[int, Field(ge=0, le=200), _INTEGRAL]
MultifacePolicy = Annotated[int, Field(ge=0, le=2), _INTEGRAL]
#: liveness state: 0 spoof, 1 real, 2 unknown; mask state: 0 missing, 1 medical mask, 2 occluded.
State = Annotated[int, Field(ge=0, le=2), _INTEGRAL]
UuidStr = Annotated[
    str,
    StringConstraints(pattern=UUID_PATTERN, max_length=36),
    Field(json_schema_extra={"format": "uuid"}),
]
Str128 = Annotated[str, StringConstraints(max_length=MAX_STR_LENGTH)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_STR_LENGTH)]
TimeFilter = Annotated[str, StringConstraints(pattern=TIME_PATTERN)]
Origin = Literal["faces", "events", "attributes"]
#: Fields a match result may carry (our choice; LUNA documents ``targets`` as a list of str).
MatchTarget = Literal[
    "similarity", "face_id", "event_id", "attribute_id", "user_data", "create_time",
    "external_id", "lists", "account_id", "handler_id", "source", "tags", "avatar",
]
#: The cap of every list field (see MAX_POLICY_LIST_LENGTH).
CAPPED = Field(max_length=MAX_POLICY_LIST_LENGTH)


class StrictModel(BaseModel):
    """Base of every model: no unknown keys, no coercion, finite numbers, immutable.

    Being frozen makes a model without list values hashable, so pydantic can reuse a shared
    default instance (``filters: EventFilters = EventFilters()``) instead of copying it or
    calling a factory on every validation -- about 3x faster for sparse bodies. Models with a
    list default (``FacePolicy`` and those containing it) keep ``default_factory``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
