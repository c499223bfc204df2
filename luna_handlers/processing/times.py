"""Time filters of match candidates: RFC 3339 instants or relative ``now-<N><unit>``.

Units (LUNA's): s, m (minutes), h, d, w, M (months, counted as 30 days), y (years, 365 days).
Every time is returned naive in UTC, as the database stores times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"now-([0-9]{1,9})([smhdwMy])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
                 "M": 30 * 86400, "y": 365 * 86400}


def rfc3339(moment: datetime) -> str:
    """A naive UTC time as the API writes times: ``2024-01-31T10:00:00.000000Z``."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def now_utc() -> datetime:
    """Now, naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` (aware) as a naive UTC datetime."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def resolve_time(value: str | None, now: datetime) -> datetime | None:
    """The instant of a validated time filter; ``now`` is naive UTC. Far past clamps to
    ``datetime.min`` (it filters identically)."""
    if value is None:
        return None
    relative = _RELATIVE.fullmatch(value)
    if relative is None:
        return naive_utc(datetime.fromisoformat(value.replace("z", "Z")))
    seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:
        return datetime.min
