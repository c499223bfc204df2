"""The service through real Patroni faults, on each target, next to a psycopg reference.

Each scenario runs once with every writer going (see :mod:`tests.ha.scenarios`); the tests
check, per target, what the issue requires: no acknowledged write lost, no HTTP 500, no
request over switch_wait + 5 s, nothing acknowledged while no member was primary. Times to
the first acknowledged write are reported at the end of the run, not asserted (beyond
sanity).
"""

from __future__ import annotations

import pytest

from tests.ha.conftest import SERVICE_TARGETS, SLOW_AFTER_S, HaSession
from tests.ha.scenarios import FAULTS, RECOVERY_TIMEOUT_S

pytestmark = pytest.mark.slow

# (scenario, target) -> why it fails today, measured; each one strict, so a fix shows up.
KNOWN: dict[tuple[str, str], str] = {}


def _cases() -> list[object]:
    cases: list[object] = []
    for scenario in FAULTS:
        for target in SERVICE_TARGETS:
            reason = KNOWN.get((scenario, target))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(scenario, target, marks=marks, id=f"{scenario}-{target}"))
    return cases


@pytest.mark.parametrize(("scenario", "target"), _cases())
async def test_service_follows_the_cluster(ha: HaSession, scenario: str, target: str) -> None:
    run = await ha.run(scenario)
    stats = run.stats(f"service/{target}", SLOW_AFTER_S)
    assert stats.acked > 0
    assert stats.lost == [], f"acknowledged but not on the leader: {stats.lost[:5]}"
    assert stats.http_500 == 0, stats.failures
    assert stats.slow == 0, f"slowest {stats.slowest_s:.1f} s; {stats.failures}"
    assert stats.while_no_primary == 0
    assert stats.first_ack_s is not None and stats.first_ack_s < RECOVERY_TIMEOUT_S
    assert ha.services[target].daemon.running()
