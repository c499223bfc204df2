"""Child processes of the HA rig: started in their own session, logged to a file, stopped by
their own id (and their process tree), never by name."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

STOP_TIMEOUT_S = 30.0


def chown(path: Path, user: str | None) -> None:
    """Give ``path`` to ``user`` (no-op for the current user)."""
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every descendant still alive."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def signal_all(procs: list[psutil.Process], sig: signal.Signals) -> None:
    """Send ``sig`` to each process that still exists."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


@dataclass
class Daemon:
    """One long-running program of the rig."""

    name: str
    argv: list[str]
    log: Path
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (again); its output is appended to :attr:`log`."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self.user, env={**os.environ, **self.env}, cwd=self.cwd,
                start_new_session=True)

    @property
    def pid(self) -> int:
        """The process id (it must have been started)."""
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def processes(self) -> list[psutil.Process]:
        """The process and its descendants."""
        return tree(self.pid) if self.running() else []

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (SIGCONT first, in case it was paused), SIGKILL the tree after ``timeout``."""
        if self.process is None:
            return
        procs = self.processes()
        signal_all(procs, signal.SIGCONT)
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill(procs)

    def kill(self, extra: list[psutil.Process] | None = None) -> None:
        """SIGKILL the process, its descendants and ``extra`` at once; reap it."""
        procs = [*self.processes(), *(extra or [])]
        signal_all(procs, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def tail(self, lines: int = 20) -> str:
        """The end of the log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
