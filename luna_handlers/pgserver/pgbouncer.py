"""pgbouncer in front of a PostgreSQL server, as the HA suite, the tests and the bench run it.

One place for its configuration (:func:`pgbouncer_ini`, :func:`pgbouncer_userlist`; the HA
rig renders ``docs/deploying-ha.md``'s file from the same function) and for running it
(:class:`PgBouncer`): Debian's ``pgbouncer`` package, on loopback at a free port, as a
non-root user (pgbouncer refuses to run as root), stopped by its own process id.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from luna_handlers.pgserver.cluster import free_port, run_as

PGBOUNCER = Path("/usr/sbin/pgbouncer")
READY_TIMEOUT_S = 30.0


def pgbouncer_ini(*, dbname: str, listen: str, port: int, upstream_host: str,
                  upstream_port: int, auth_file: str, pool_mode: str = "transaction",
                  pool_size: int = 20) -> str:
    """pgbouncer serving ``dbname`` from ``upstream_host:upstream_port`` with up to
    ``pool_size`` server sessions."""
    return (
        "[databases]\n"
        f"{dbname} = host={upstream_host} port={upstream_port} dbname={dbname}\n"
        "\n"
        "[pgbouncer]\n"
        f"listen_addr = {listen}\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {auth_file}\n"
        f"pool_mode = {pool_mode}\n"
        "max_client_conn = 500\n"
        f"default_pool_size = {pool_size}\n"
        "server_check_delay = 1\n"
        "server_connect_timeout = 5\n"
        # After a failed server login pgbouncer waits this long before the next one (15 s by
        # default): during a failover that is 15 s of no primary on top of Patroni's.
        "server_login_retry = 1\n"
        # A query waits at most this long for a server session (120 s by default), then
        # fails: bounded like the service's own switch_wait, never a hang.
        "query_wait_timeout = 5\n"
    )


def pgbouncer_userlist(user: str, password: str) -> str:
    """pgbouncer's auth_file line: it logs in to PostgreSQL with this password too."""
    quoted = password.replace('"', '""')
    return f'"{user}" "{quoted}"\n'


class PgBouncerMissing(RuntimeError):
    """No pgbouncer binary on this machine (Debian package ``pgbouncer``)."""


def _private_file(path: Path, text: str, user: str | None) -> None:
    path.write_text(text)
    path.chmod(0o600)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgBouncer:
    """One pgbouncer process serving ``dbname`` of ``upstream`` to ``user``.

    Its files live in ``workdir`` (which the server user must be able to enter); ``user``
    runs it (default: the user PgCluster runs PostgreSQL as). ``pool_size`` server sessions
    at most: with 1, every client transaction meets the same one (tests rely on it).
    """

    workdir: Path
    dbname: str
    user: str
    password: str = field(repr=False)
    upstream: tuple[str, int]
    pool_mode: str = "transaction"
    pool_size: int = 20
    host: str = "127.0.0.1"
    port: int = 0
    run_user: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """pgbouncer's own log (its stdout and stderr)."""
        return self.workdir / "pgbouncer.log"

    def start(self) -> None:
        """Write its files, start it, wait until it accepts connections."""
        binary = shutil.which("pgbouncer") or (str(PGBOUNCER) if PGBOUNCER.exists() else None)
        if binary is None:
            raise PgBouncerMissing("pgbouncer is not installed (apt-get install pgbouncer)")
        user = self.run_user or run_as()
        self.port = self.port or free_port(self.host)
        auth = self.workdir / "pgbouncer-users.txt"
        _private_file(auth, pgbouncer_userlist(self.user, self.password), user)
        ini = self.workdir / "pgbouncer.ini"
        _private_file(ini, pgbouncer_ini(
            dbname=self.dbname, listen=self.host, port=self.port,
            upstream_host=self.upstream[0], upstream_port=self.upstream[1],
            auth_file=str(auth), pool_mode=self.pool_mode, pool_size=self.pool_size), user)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([binary, str(ini)], stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            user=user, cwd="/", start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pgbouncer did not start: {self.tail()}")
            time.sleep(0.1)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (pgbouncer's immediate shutdown), SIGKILL after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)

    def tail(self, lines: int = 10) -> str:
        """The end of its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
