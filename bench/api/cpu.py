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


def tree_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its living descendants (0 when it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # exited in between: its time is lost to both samples alike
        total += times.user + times.system
    return total


def postmaster_pid(datadir: Path) -> int:
    """The postmaster's pid, from the first line of ``postmaster.pid``."""
    return int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])


@dataclass
class CpuMeter:
    """CPU seconds of a server's tree and of the database's, between :meth:`start` and
    :meth:`stop`."""

    server_pid: int
    database_pid: int
    _began: tuple[float, float] = field(default=(0.0, 0.0), init=False)

    def _sample(self) -> tuple[float, float]:
        return tree_seconds(self.server_pid), tree_seconds(self.database_pid)

    def start(self) -> None:
        """Take the first sample."""
        self._began = self._sample()

    def stop(self) -> tuple[float, float]:
        """Seconds of (server, database) since :meth:`start`."""
        server, database = self._sample()
        return server - self._began[0], database - self._began[1]
