"""The failover bench's printed report: one table per scenario, ratios, targets."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.failover.clients import DEFAULT_FAILOVER, DEFAULTS, OURS, TARGETS
from luna_handlers.config import FailoverSettings

if TYPE_CHECKING:
    from bench.failover.run import Round

SCENARIOS = {
    "kill": "primary SIGKILLed, standby promoted at once",
    "hang": "primary SIGSTOPped (hung: TCP accepted, nothing answers), standby promoted at once",
}


@dataclass(frozen=True)
class Stats:
    """Everything the report needs."""

    results: Sequence[Round]
    settings: FailoverSettings
    writers: int
    cap: float
    elapsed: float


def _seconds(value: float | None, cap: float) -> str:
    return f">{cap:g} s" if value is None else f"{value:.3f}"


def _median(values: list[float | None]) -> float | None:
    """Median where a round that never recovered counts as +infinity (None if it wins)."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: float("inf") if v is None else v)
    return ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else _mid(ordered)


def _mid(ordered: list[float | None]) -> float | None:
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    return None if low is None or high is None else (low + high) / 2


def _table(rounds: Sequence[Round], cap: float) -> dict[str, float | None]:
    """Print one scenario's table; return each client's median recovery."""
    print(f"{'client':<11}{'recovery after promotion (s)':<31}{'write outage (s)':<18}"
          f"{'acked':>7}{'lost':>6}  errors seen (count by class)")
    print(f"{'':<11}{'median':<10}{'min':<10}{'max':<11}{'median':<18}")
    medians: dict[str, float | None] = {}
    for client in dict.fromkeys(r.client for r in rounds):
        mine = [r for r in rounds if r.client == client and not r.failed]
        if not mine:
            print(f"{client:<11}every round failed to run")
            continue
        recoveries = [r.recovery for r in mine]
        done = [v for v in recoveries if v is not None]
        medians[client] = _median(recoveries)
        outage = statistics.median(o for r in mine if (o := r.outage) is not None) if any(
            r.outage is not None for r in mine) else None
        errors: Counter[str] = Counter()
        for r in mine:
            errors.update(r.errors)
        shown = ", ".join(f"{name} {count}" for name, count in errors.most_common()) or "none"
        print(f"{client:<11}{_seconds(medians[client], cap):<10}"
              f"{_seconds(min(done) if done else None, cap):<10}"
              f"{_seconds(None if None in recoveries else max(done), cap):<11}"
              f"{_seconds(outage, cap):<18}{sum(r.acked for r in mine):>7}"
              f"{sum(r.lost for r in mine):>6}  {shown}")
    return medians


def _ratios(base: str, medians: dict[str, float | None], cap: float) -> str:
    ours = medians.get(base)
    parts = []
    for client, median in medians.items():
        if client in OURS:
            continue
        if ours is None:
            parts.append(f"{client} n/a ({base} did not recover)")
        elif median is None:
            parts.append(f"{client} < {ours / cap:.3f} (reference >{cap:g} s)")
        else:
            parts.append(f"{client} {ours / median:.2f}" if median > 0 else f"{client} n/a")
    return ", ".join(parts)


def _http_answers(rounds: Sequence[Round]) -> int:
    """Print what each HTTP client got back over its rounds; return the number of HTTP 500s."""
    total = 0
    for client in dict.fromkeys(r.client for r in rounds if r.outcomes):
        outcomes: Counter[str] = Counter()
        for r in rounds:
            if r.client == client:
                outcomes.update(r.outcomes)
        errors = sum(n for label, n in outcomes.items() if label.startswith("5"))
        shown = ", ".join(f"{label} {count}" for label, count in sorted(outcomes.items()))
        print(f"{client} answers (whole rounds, warm-up included; status/LUNA error code): "
              f"{shown}")
        print(f"{client} 5xx: {errors}; 503/34010 (not sent, retry) and 503/34011 (outcome "
              "unknown) are the expected transient answers during a failover")
        count = sum(n for label, n in outcomes.items() if label.split("/")[0] == "500")
        print(f"{client} HTTP 500 count: {count}")
        if count:
            first = next(r.first_500 for r in rounds if r.client == client and r.first_500)
            print(f"  !!! {client} got {count} HTTP 500 response(s); the first body: {first}")
        total += count
    return total


def print_report(stats: Stats) -> None:
    """Print the whole report to stdout."""
    s = stats.settings
    print()
    print("Every round: a fresh primary + SYNCHRONOUS standby (synchronous_standby_names='*',")
    print(f"synchronous_commit=on), {stats.writers} concurrent writers inserting handler rows "
          "through the client,")
    print("the fault, then `pg_ctl promote -w` on the standby at once. 'ours' writes through")
    print("luna_handlers.db.context.DBContext.createHandler on a FailoverDatabase: the service's "
          "own DB layer;")
    print("'ours-http' is the whole service (create_app + database_factory, uvicorn on "
          "loopback), written to with")
    print("POST /1/handlers (acknowledged = 201); the same pool size and DB_FAILOVER "
          "settings as 'ours'.")
    print(f"Timeouts: connect {s.connect_timeout:g} s (psycopg: 2 s, libpq's minimum), "
          f"statement {s.query_timeout:g} s (asyncpg command_timeout; psycopg has none),")
    print(f"ours also: health check every {s.health_check_interval:g} s, switch wait "
          f"{s.switch_wait:g} s, {s.failure_threshold} failures in a row. The bench bounds "
          "every write at 5 s.")
    d = DEFAULT_FAILOVER
    print(f"{' and '.join(sorted(DEFAULTS))}: the same clients with every DB_FAILOVER key at "
          f"its default: connect {d.connect_timeout:g} s, statement {d.query_timeout:g} s,")
    print(f"health check every {d.health_check_interval:g} s answered within "
          f"{d.health_check_timeout:g} s, switch wait {d.switch_wait:g} s, "
          f"{d.failure_threshold} failures in a row.")
    print("recovery = first acknowledged write once the standby left recovery, minus that moment"
          "\n(seen by a separate connection polling pg_is_in_recovery() every 3 ms);")
    print("write outage = that first ack minus the last ack the old primary gave;")
    print("lost = acknowledged ids missing on the new primary afterwards.")
    verdicts: list[str] = []
    http_500 = 0
    for scenario, title in SCENARIOS.items():
        rounds = [r for r in stats.results if r.scenario == scenario]
        if not rounds:
            continue
        counts = Counter(r.client for r in rounds)
        if len(set(counts.values())) == 1:
            count = next(iter(counts.values()))
            shown = f"{count} round{'s' * (count != 1)} per client"
        else:
            shown = "rounds: " + ", ".join(f"{c} {n}" for c, n in counts.items())
        print(f"\n== {scenario}: {title} ({shown}) ==")
        medians = _table(rounds, stats.cap)
        for base in (c for c in medians if c in OURS):
            print(f"{base} / reference, median recovery: {_ratios(base, medians, stats.cap)}")
        http_500 += _http_answers(rounds)
        for r in rounds:
            if r.failed:
                print(f"  round of {r.client} could not run: {r.failed}")
        lost = {c: sum(r.lost for r in rounds if r.client == c) for c in medians}
        verdicts.append(f"{scenario}: acknowledged writes lost: "
                        + ", ".join(f"{c} {n}" for c, n in lost.items()))
        for (target_scenario, base), bound in TARGETS.items():
            if target_scenario == scenario and base in medians:
                ours = medians[base]
                ok = ours is not None and ours <= bound
                verdicts.append(f"{scenario}: {base} median recovery "
                                f"{_seconds(ours, stats.cap)} s <= {bound:g} s: "
                                f"{'PASS' if ok else 'FAIL'}")
    if any(r.client in ("ours-http", "http-dflt") and not r.failed for r in stats.results):
        verdicts.append("ours-http and http-dflt: no 500 responses: "
                        f"{'PASS' if not http_500 else 'FAIL'} ({http_500} over all rounds)")
    print("\nTargets:")
    for line in verdicts:
        print(f"  {line}")
    print(f"\ntotal bench time {stats.elapsed:.0f} s")
