"""The faults, run once each with every writer going, and what each writer saw.

A scenario: writers start, run a few seconds, the fault is injected (and repaired where the
scenario says so) in a thread while they keep writing, then writing goes on until every
writer has acknowledged writes again for a while. Afterwards every acknowledged id is read
back from the leader, and each member's role, polled all along, tells whether anything was
acknowledged while no member was primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from tests.ha import configs
from tests.ha.rig import HOST, PatroniMember, Rig, RigError, etcd_ready
from tests.ha.writers import REFERENCE_TABLE, Attempt, Writer, write_until

WARMUP_S = 3.0
SETTLED_S = 3.0  # acknowledged writes only, for this long, means a writer has recovered
RECOVERY_TIMEOUT_S = 120.0
ETCD_OUTAGE_S = 15.0
HUNG_AFTER_FAILOVER_S = 3.0
ROLE_POLL_S = 0.25
MARGIN_S = 0.5  # role polling resolution, both sides of a primary-less window


@dataclass
class Stats:
    """What one writer saw in one scenario."""

    attempts: int
    acked: int
    lost: list[str]
    failures: Counter[str]
    http_500: int
    slowest_s: float
    slow: int
    first_ack_s: float | None  # fault -> first acknowledged write sent after the fault
    longest_gap_s: float  # the longest stretch without an acknowledgement, after the fault
    while_no_primary: int  # acknowledged writes sent and answered while no member was primary


@dataclass
class Run:
    """One scenario's record."""

    scenario: str
    fault_at: float
    attempts: dict[str, list[Attempt]]
    roles: list[tuple[float, dict[str, str | None]]]
    notes: list[str] = field(default_factory=list)
    lost: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def no_primary_windows(self) -> list[tuple[float, float]]:
        """Intervals in which every member answered and none was a running primary."""
        windows: list[tuple[float, float]] = []
        start: float | None = None
        for at, roles in self.roles:
            none = all(role is not None for role in roles.values()) and \
                "primary" not in roles.values()
            if none and start is None:
                start = at
            elif not none and start is not None:
                windows.append((start, at))
                start = None
        return windows

    def stats(self, writer: str, slow_after_s: float) -> Stats:
        """The summary of ``writer``'s attempts."""
        attempts = sorted(self.attempts[writer], key=lambda a: a.done)
        acks = [a for a in attempts if a.ok and a.done >= self.fault_at]
        after = [a for a in acks if a.sent >= self.fault_at]
        moments = [self.fault_at, *(a.done for a in acks)]
        gaps = [b - a for a, b in itertools.pairwise(moments)]
        windows = self.no_primary_windows()
        inside = [a for a in attempts if a.ok and any(
            lo + MARGIN_S <= a.sent and a.done <= hi - MARGIN_S for lo, hi in windows)]
        return Stats(
            attempts=len(attempts), acked=sum(a.ok for a in attempts),
            lost=self.lost.get(writer, []),
            failures=Counter(a.label for a in attempts if not a.ok),
            http_500=sum(a.status == 500 for a in attempts),
            slowest_s=max((a.seconds for a in attempts), default=0.0),
            slow=sum(a.seconds > slow_after_s for a in attempts),
            first_ack_s=after[0].done - self.fault_at if after else None,
            longest_gap_s=max(gaps, default=0.0), while_no_primary=len(inside))


# -- the faults (blocking; run in a thread while the writers write) ------------------------

def _new_leader(rig: Rig, old: PatroniMember, timeout: float = RECOVERY_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = rig.leader()
        if leader is not None and leader is not old:
            return leader.name
        time.sleep(0.1)
    raise RigError(f"no new leader after {timeout:.0f} s\n{rig.tails()}")


def _leader(rig: Rig) -> PatroniMember:
    leader = rig.leader()
    if leader is None:
        raise RigError("no leader")
    return leader


Mark = Callable[[], None]  # a fault calls it the moment the fault is real


def switchover(rig: Rig, mark: Mark) -> list[str]:
    """A planned switchover (REST ``POST /switchover``)."""
    old = _leader(rig).name
    mark()
    answer = rig.switchover()
    rig.wait_healthy()
    return [f"{old} -> {answer}"]


def leader_killed(rig: Rig, mark: Mark) -> list[str]:
    """SIGKILL of the leader's Patroni and its postmaster: a crashed host; left down."""
    old = _leader(rig)
    old.kill()
    mark()
    new = _new_leader(rig, old)
    rig.wait_healthy(expected=2)
    return [f"killed {old.name}; {new} took over"]


def old_leader_back(rig: Rig, mark: Mark) -> list[str]:
    """The killed member's Patroni started again: rewound, it rejoins as a replica."""
    down = [m for m in rig.members if not m.daemon.running()]
    if not down:  # run on its own: crash the leader first, unmeasured
        leader_killed(rig, lambda: None)
        down = [m for m in rig.members if not m.daemon.running()]
    member = down[0]
    mark()
    member.daemon.start()
    rig.wait_healthy()
    role = (member.status() or {}).get("role")
    if role == "primary":
        raise RigError(f"{member.name} came back as a primary")
    rewound = "pg_rewind" in member.daemon.log.read_text(errors="replace")
    return [f"{member.name} back as {role}" + (", rewound with pg_rewind" if rewound else "")]


def leader_hung(rig: Rig, mark: Mark) -> list[str]:
    """SIGSTOP of the leader's Patroni and all its PostgreSQL processes; SIGCONT after the
    failover, when the old leader must rejoin as a replica."""
    old = _leader(rig)
    old.pause()
    mark()
    try:
        new = _new_leader(rig, old)
        time.sleep(HUNG_AFTER_FAILOVER_S)
    finally:
        old.resume()
    rig.wait_healthy()
    return [f"hung {old.name}; {new} took over; {old.name} resumed as "
            f"{(old.status() or {}).get('role')}"]


def etcd_lost(rig: Rig, mark: Mark) -> list[str]:
    """etcd stopped for a while (Patroni's rules decide the leader's fate), then back."""
    old = _leader(rig)
    rig.etcd.stop(timeout=10)
    mark()
    time.sleep(ETCD_OUTAGE_S)
    rig.etcd.start()
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while not etcd_ready(rig) and time.monotonic() < deadline:
        time.sleep(0.2)
    new = rig.wait_healthy()
    return [f"etcd down {ETCD_OUTAGE_S:.0f} s; leader {old.name} -> {new.name}"]


FAULTS: dict[str, Callable[[Rig, Mark], list[str]]] = {
    "switchover": switchover, "leader_killed": leader_killed,
    "old_leader_back": old_leader_back, "leader_hung": leader_hung, "etcd_lost": etcd_lost,
}


# -- running one ---------------------------------------------------------------------------

async def _watch_roles(rig: Rig, out: list[tuple[float, dict[str, str | None]]],
                       stop: asyncio.Event) -> None:
    while not stop.is_set():
        statuses = await asyncio.gather(*(asyncio.to_thread(m.status) for m in rig.members))
        out.append((time.monotonic(), {
            m.name: (s.get("role") if s is not None and s.get("state") == "running" else None)
            if m.daemon.running() else "down" for m, s in zip(rig.members, statuses,
                                                               strict=True)}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ROLE_POLL_S)


def _settled(attempts: list[Attempt], since: float) -> bool:
    now = time.monotonic()
    if now - since < SETTLED_S:
        return False
    recent = [a for a in attempts if a.done >= now - SETTLED_S]
    return len(recent) >= 3 and all(a.ok for a in recent)


def missing_ids(rig: Rig, table: str, column: str, ids: list[str]) -> list[str]:
    """The ids of ``ids`` that the leader does not have."""
    if not ids:
        return []
    leader = _leader(rig)
    with psycopg.connect(host=HOST, port=leader.spec.pg_port, user=configs.SUPERUSER,
                         password=rig.passwords.superuser, dbname=configs.DBNAME,
                         connect_timeout=5) as conn:
        # the table and column are ours, never input
        found = {str(row[0]) for row in conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)",
            ([*ids],))}
    return [i for i in ids if i not in found]


async def run_scenario(rig: Rig, scenario: str, writers: dict[str, tuple[Writer, int]],
                       ) -> Run:
    """Inject ``scenario`` while every writer writes; see the module docstring."""
    started = time.monotonic()
    await asyncio.to_thread(rig.wait_healthy, 3 if scenario != "old_leader_back" else 2)
    attempts: dict[str, list[Attempt]] = {name: [] for name in writers}
    stop, watching = asyncio.Event(), asyncio.Event()
    run = Run(scenario=scenario, fault_at=0.0, attempts=attempts, roles=[])
    tasks = [asyncio.create_task(write_until(w, loops, stop, attempts[name].append))
             for name, (w, loops) in writers.items()]
    watcher = asyncio.create_task(_watch_roles(rig, run.roles, watching))
    try:
        await asyncio.sleep(WARMUP_S)
        run.fault_at = time.monotonic()

        def mark() -> None:
            run.fault_at = time.monotonic()

        run.notes = await asyncio.to_thread(FAULTS[scenario], rig, mark)
        repaired = time.monotonic()
        deadline = repaired + RECOVERY_TIMEOUT_S
        while not all(_settled(a, repaired) for a in attempts.values()):
            if time.monotonic() > deadline:
                run.notes.append(f"writers not recovered {RECOVERY_TIMEOUT_S:.0f} s after")
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        watching.set()
        await watcher
    for name in writers:
        table, column = ((REFERENCE_TABLE, "id") if name.startswith("psycopg")
                         else ("handler", "handler_id"))
        ids = [a.write_id for a in attempts[name] if a.write_id is not None]
        run.lost[name] = await asyncio.to_thread(missing_ids, rig, table, column, ids)
    run.seconds = time.monotonic() - started
    return run
