"""The HA report: one row per scenario and writer, printed at the end of the pytest run."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.ha.install import InstallLog
from tests.ha.scenarios import Run

HEADER = ("scenario", "writer", "attempts", "acked", "lost", "500", "slowest s",
          "over bound", "first ack s", "longest gap s", "non-2xx / errors")


@dataclass
class Report:
    """What the HA session measured."""

    slow_after_s: float
    install: InstallLog = field(default_factory=InstallLog)
    rig_start_s: float = 0.0
    runs: list[Run] = field(default_factory=list)
    skipped: str | None = None

    def lines(self) -> list[str]:
        """The table and the notes, ready to print."""
        if self.skipped is not None:
            return [f"HA suite not run: {self.skipped}"]
        rows = [HEADER]
        notes = []
        for run in self.runs:
            for writer in run.attempts:
                s = run.stats(writer, self.slow_after_s)
                failures = ", ".join(f"{label} x{n}" for label, n in s.failures.most_common())
                rows.append((run.scenario, writer, str(s.attempts), str(s.acked),
                             str(len(s.lost)), str(s.http_500), f"{s.slowest_s:.2f}",
                             str(s.slow),
                             "-" if s.first_ack_s is None else f"{s.first_ack_s:.2f}",
                             f"{s.longest_gap_s:.2f}", failures or "none"))
            without = sum(hi - lo for lo, hi in run.no_primary_windows())
            primaryless = f"; no primary for {without:.1f} s" if without else ""
            notes.append(f"{run.scenario} ({run.seconds:.0f} s): {'; '.join(run.notes)}"
                         f"{primaryless}")
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
        table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                 + "  " + row[-1] for row in rows]
        installed = ", ".join(self.install.apt_packages) or "nothing from apt"
        venv = "built the Patroni venv" if self.install.patroni_venv_built else "Patroni cached"
        return [f"setup: {self.install.seconds:.1f} s ({installed}; {venv}); rig started "
                f"in {self.rig_start_s:.1f} s; over bound = requests over "
                f"{self.slow_after_s:.0f} s (switch_wait + 5 s)", *table, *notes]
