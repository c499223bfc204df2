"""CPU time per request, from the kernel's accounting of each process tree.

Requests per second on a shared machine move with whatever else runs; the CPU a server and
PostgreSQL spend per request moves much less (it still grows somewhat under contention:
caches, frequency). The bench reports both: CPU time of the server's process tree and of the
cluster's processes (postmaster and every backend), over the measured wrk run, divided by
the requests it made. wrk's own CPU is in neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psutil


def tree_seconds(pid: int) -> dict[tuple[int, float], float]:
    """User + system CPU seconds of ``pid`` and its living descendants, by (pid, start time)
    (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    seconds: dict[tuple[int, float], float] = {}
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                seconds[(process.pid, process.create_time())] = times.user + times.system
        except psutil.Error:
            continue  # exited meanwhile
    return seconds


def spent(before: dict[tuple[int, float], float], after: dict[tuple[int, float], float]
          ) -> float:
    """CPU seconds spent between two samples by the processes alive at the second one (a
    process that started in between counts whole; one that ended is lost, never
    subtracted: autovacuum workers and short-lived backends come and go)."""
    return sum(now - before.get(key, 0.0) for key, now in after.items())


def postmaster_pid(datadir: Path) -> int:
    """The postmaster's pid, from the first line of ``postmaster.pid``."""
    return int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])


@dataclass
class CpuMeter:
    """CPU seconds of a server's tree and of the database's, between :meth:`start` and
    :meth:`stop`."""

    server_pid: int
    database_pid: int
    _began: tuple[dict[tuple[int, float], float], ...] = field(default=(), init=False)

    def _sample(self) -> tuple[dict[tuple[int, float], float], ...]:
        return tree_seconds(self.server_pid), tree_seconds(self.database_pid)

    def start(self) -> None:
        """Take the first sample."""
        self._began = self._sample()

    def stop(self) -> tuple[float, float]:
        """Seconds of (server, database) since :meth:`start`."""
        server, database = self._sample()
        return spent(self._began[0], server), spent(self._began[1], database)
