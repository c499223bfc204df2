"""The HA rig: one etcd, three Patroni members, HAProxy on Patroni's REST check, pgbouncer.

Everything listens on loopback at free ports and lives under one temporary directory. Setup
waits until the cluster is really usable (a leader, two streaming replicas, one of them the
synchronous standby, exactly one HAProxy server UP); teardown stops Patroni before etcd (a
member without its DCS waits for it) and kills whatever is left, so nothing outlives the run.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from luna_handlers.pgserver.cluster import free_port
from tests.ha import configs
from tests.ha.install import Tools
from tests.ha.procs import Daemon, chown, signal_all, tree
from tests.ha.writers import REFERENCE_TABLE

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
POLL_S = 0.2


class RigError(RuntimeError):
    """The rig did not reach the state it waited for; the message ends with log tails."""


def _http(method: str, url: str, body: dict[str, Any] | None = None,
          timeout: float = 2.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


@dataclass
class PatroniMember:
    """One member: its Patroni daemon and the PostgreSQL it runs."""

    spec: configs.Member
    daemon: Daemon

    @property
    def name(self) -> str:
        """The member's name (also its HAProxy server name)."""
        return self.spec.name

    @property
    def rest(self) -> str:
        """Base URL of its REST API."""
        return f"http://{self.spec.host}:{self.spec.rest_port}"

    def postmaster(self) -> list[psutil.Process]:
        """The postmaster and its backends (Patroni detaches the postmaster from itself)."""
        try:
            text = (Path(self.spec.data_dir) / "postmaster.pid").read_text()
            return tree(int(text.split("\n", 1)[0]))
        except (OSError, ValueError):
            return []

    def processes(self) -> list[psutil.Process]:
        """Patroni, the postmaster and every backend."""
        return [*self.daemon.processes(), *self.postmaster()]

    def status(self) -> dict[str, Any] | None:
        """Patroni's ``GET /patroni``, or None when it does not answer."""
        with contextlib.suppress(OSError, ValueError):
            _, body = _http("GET", self.rest + "/patroni", timeout=1.0)
            return body if isinstance(body, dict) else None
        return None

    def kill(self) -> None:
        """A crashed host: SIGKILL Patroni, the postmaster and its backends at once."""
        self.daemon.kill(self.postmaster())

    def pause(self) -> None:
        """A hung host: SIGSTOP Patroni and every PostgreSQL process of the member."""
        signal_all(self.processes(), signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        signal_all(self.processes(), signal.SIGCONT)

    def stop(self) -> None:
        """Patroni stops its PostgreSQL on SIGTERM; whatever is left is killed."""
        postmaster = self.postmaster()
        self.daemon.stop()
        signal_all(postmaster, signal.SIGCONT)
        signal_all(self.postmaster(), signal.SIGKILL)
        psutil.wait_procs(postmaster, timeout=10)


@dataclass
class Rig:
    """The running stack; build it with :func:`start_rig`, end it with :meth:`close`."""

    tools: Tools
    base: Path
    passwords: configs.Passwords
    etcd: Daemon
    etcd_port: int
    members: list[PatroniMember] = field(default_factory=list)
    haproxy: Daemon | None = None
    haproxy_port: int = 0
    haproxy_socket: Path = Path()
    pgbouncer: Daemon | None = None
    pgbouncer_port: int = 0
    started_s: float = 0.0

    # -- the cluster as Patroni sees it -----------------------------------------------------

    def cluster(self) -> list[dict[str, Any]]:
        """Members from ``GET /cluster`` of the first member that answers."""
        for member in self.members:
            with contextlib.suppress(OSError, ValueError):
                status, body = _http("GET", member.rest + "/cluster", timeout=1.0)
                if status == 200 and isinstance(body, dict):
                    return list(body.get("members", []))
        return []

    def leader(self) -> PatroniMember | None:
        """The member holding the leader lock and running, if any."""
        for entry in self.cluster():
            if entry.get("role") == "leader" and entry.get("state") == "running":
                return self.member(str(entry["name"]))
        return None

    def member(self, name: str) -> PatroniMember:
        """The member called ``name``."""
        return next(m for m in self.members if m.name == name)

    def healthy(self, expected: int = 3) -> bool:
        """A running leader, ``expected - 1`` streaming replicas, one synchronous."""
        entries = self.cluster()
        leaders = [e for e in entries if e.get("role") == "leader" and e.get("state") == "running"]
        streaming = [e for e in entries if e.get("role") in ("replica", "sync_standby")
                     and e.get("state") == "streaming"]
        sync = [e for e in streaming if e.get("role") == "sync_standby"]
        return len(leaders) == 1 and len(streaming) == expected - 1 and len(sync) >= 1

    def haproxy_up(self) -> list[str]:
        """Names of the HAProxy servers that are UP now."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(self.haproxy_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return [row["svname"] for row in rows
                if row.get("pxname") == "postgres_primary"
                and row.get("svname") not in ("FRONTEND", "BACKEND")
                and row.get("status", "").startswith("UP")]

    def wait_healthy(self, expected: int = 3, timeout: float = READY_TIMEOUT_S) -> PatroniMember:
        """Wait for a healthy cluster whose leader is the only HAProxy server UP."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and self.healthy(expected) and \
                    (self.haproxy is None or self.haproxy_up() == [leader.name]):
                return leader
            time.sleep(POLL_S)
        raise RigError(f"cluster not healthy after {timeout:.0f} s: {self.cluster()}\n"
                       f"{self.tails()}")

    def switchover(self) -> str:
        """A planned switchover through the leader's REST API; Patroni's answer."""
        leader = self.leader()
        if leader is None:
            raise RigError("no leader to switch over from")
        status, body = _http("POST", leader.rest + "/switchover", {"leader": leader.name},
                             timeout=60.0)
        if status != 200:
            raise RigError(f"switchover refused ({status}): {body}")
        return str(body)

    # -- SQL as the superuser ------------------------------------------------------------

    def psql(self, member: PatroniMember, sql: str, dbname: str = "postgres") -> str:
        """Run SQL on ``member`` as the superuser; unaligned tuples-only output."""
        result = subprocess.run(
            [str(self.tools.pg_bin / "psql"), "-h", HOST, "-p", str(member.spec.pg_port),
             "-U", configs.SUPERUSER, "-d", dbname, "-v", "ON_ERROR_STOP=1", "-X", "-A",
             "-t", "-c", sql], capture_output=True, text=True, check=False, timeout=30,
            env={"PGPASSWORD": self.passwords.superuser, "PATH": "/usr/bin:/bin"})
        if result.returncode != 0:
            raise RigError(f"psql on {member.name} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    # -- DSNs for the clients ------------------------------------------------------------

    def multi_host_dsn(self) -> str:
        """The three members, in order: the service finds the primary itself."""
        hosts = ",".join(f"{m.spec.host}:{m.spec.pg_port}" for m in self.members)
        return f"{configs.DB_USER}:{self.passwords.service}@{hosts}/{configs.DBNAME}"

    def single_host_dsn(self, port: int) -> str:
        """One address (HAProxy's or pgbouncer's port)."""
        return (f"{configs.DB_USER}:{self.passwords.service}@{HOST}:{port}/"
                f"{configs.DBNAME}")

    # -- teardown -----------------------------------------------------------------------

    def tails(self) -> str:
        """The ends of every log, for an error message."""
        daemons = [self.etcd, *(m.daemon for m in self.members), self.haproxy, self.pgbouncer]
        return "\n".join(f"--- {d.name}\n{d.tail(8)}" for d in daemons if d is not None)

    def close(self) -> None:
        """Stop everything (Patroni before etcd) and remove the directory."""
        for daemon in (self.pgbouncer, self.haproxy):
            if daemon is not None:
                daemon.stop(timeout=5)
        for member in self.members:
            member.resume()
        # In parallel: each Patroni takes a few seconds to stop its PostgreSQL.
        stoppers = [threading.Thread(target=m.stop) for m in self.members]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self.etcd.stop(timeout=10)
        # Anything else still running from our directory is ours and must not outlive us.
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(str(self.base) in part for part in proc.info["cmdline"] or []):
                    proc.kill()
        shutil.rmtree(self.base, ignore_errors=True)


def _wait(what: str, check: Any, rig: Rig, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, RigError):
            if check():
                return
        time.sleep(POLL_S)
    raise RigError(f"{what} not ready after {timeout:.0f} s\n{rig.tails()}")


def _private_file(path: Path, text: str, user: str) -> None:
    path.write_text(text)
    path.chmod(0o600)
    chown(path, user)


def _start_etcd(tools: Tools, base: Path) -> tuple[Daemon, int]:
    port, peer = free_port(), free_port()
    data = base / "etcd"
    daemon = Daemon("etcd", [
        str(tools.etcd), "--name", "etcd1", "--data-dir", str(data),
        "--listen-client-urls", f"http://{HOST}:{port}",
        "--advertise-client-urls", f"http://{HOST}:{port}",
        "--listen-peer-urls", f"http://{HOST}:{peer}",
        "--initial-advertise-peer-urls", f"http://{HOST}:{peer}",
        "--initial-cluster", f"etcd1=http://{HOST}:{peer}",
        "--log-level", "warn"], base / "etcd.log")
    daemon.start()
    return daemon, port


def etcd_ready(rig: Rig) -> bool:
    """True when etcd answers its health endpoint."""
    try:
        status, _ = _http("GET", f"http://{HOST}:{rig.etcd_port}/health", timeout=1.0)
    except OSError:
        return False
    return status == 200


def _start_members(rig: Rig, count: int) -> None:
    user = rig.tools.server_user
    for index in range(1, count + 1):
        home = rig.base / f"m{index}"
        home.mkdir()
        chown(home, user)
        spec = configs.Member(name=f"m{index}", host=HOST, pg_port=free_port(),
                              rest_port=free_port(), data_dir=str(home / "data"),
                              run_dir=str(home))
        config = configs.patroni_member(spec, etcd=f"{HOST}:{rig.etcd_port}",
                                        bin_dir=str(rig.tools.pg_bin), timing=configs.SUITE,
                                        passwords=rig.passwords)
        config_file = home / "patroni.yml"
        _private_file(config_file, configs.patroni_yaml(config), user)
        daemon = Daemon(spec.name, [str(rig.tools.patroni), str(config_file)],
                        rig.base / f"{spec.name}.log", user=user,
                        env={"HOME": str(home), "LC_ALL": "C.UTF-8"})
        rig.members.append(PatroniMember(spec, daemon))
        daemon.start()
        if index == 1:  # the first bootstraps the cluster; the others clone it
            _wait("the first member", lambda: rig.leader() is not None, rig)


def _start_haproxy(rig: Rig) -> None:
    rig.haproxy_port = free_port()
    rig.haproxy_socket = rig.base / "haproxy.sock"
    cfg = rig.base / "haproxy.cfg"
    cfg.write_text(configs.haproxy_cfg([m.spec for m in rig.members],
                                       bind=f"{HOST}:{rig.haproxy_port}",
                                       stats_socket=str(rig.haproxy_socket)))
    rig.haproxy = Daemon("haproxy", [str(rig.tools.haproxy), "-f", str(cfg), "-db"],
                         rig.base / "haproxy.log")
    rig.haproxy.start()
    _wait("haproxy", rig.haproxy_socket.exists, rig)


def _start_pgbouncer(rig: Rig) -> None:
    user = rig.tools.server_user
    rig.pgbouncer_port = free_port()
    auth = rig.base / "pgbouncer-users.txt"
    _private_file(auth, configs.pgbouncer_userlist(configs.DB_USER, rig.passwords.service), user)
    ini = rig.base / "pgbouncer.ini"
    _private_file(ini, configs.pgbouncer_ini(
        listen=HOST, port=rig.pgbouncer_port, upstream_host=HOST,
        upstream_port=rig.haproxy_port, auth_file=str(auth)), user)
    rig.pgbouncer = Daemon("pgbouncer", [str(rig.tools.pgbouncer), str(ini)],
                           rig.base / "pgbouncer.log", user=user)
    rig.pgbouncer.start()

    def listening() -> bool:
        with socket.create_connection((HOST, rig.pgbouncer_port), timeout=1.0):
            return True

    _wait("pgbouncer", listening, rig)


def _create_service_database(rig: Rig, leader: PatroniMember) -> None:
    password = rig.passwords.service.replace("'", "''")
    rig.psql(leader, f"CREATE ROLE {configs.DB_USER} LOGIN PASSWORD '{password}'")
    rig.psql(leader, f"CREATE DATABASE {configs.DBNAME} OWNER {configs.DB_USER}")
    rig.psql(leader, f"CREATE TABLE {REFERENCE_TABLE} (id uuid PRIMARY KEY, "
                     f"at timestamptz NOT NULL DEFAULT now()); "
                     f"ALTER TABLE {REFERENCE_TABLE} OWNER TO {configs.DB_USER}",
             configs.DBNAME)
    config = rig.base / "migrate.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {"dsn": rig.multi_host_dsn()}}))
    result = subprocess.run([sys.executable, "-m", "luna_handlers", "db", "upgrade",
                             "--config", str(config)], capture_output=True, text=True,
                            check=False, timeout=120)
    config.unlink()
    if result.returncode != 0:
        raise RigError(f"migration failed: {result.stderr.strip()}")


def start_rig(tools: Tools, members: int = 3) -> Rig:
    """Build and start the whole stack; on any failure everything started is killed."""
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="luna-ha-"))
    base.chmod(0o755)
    passwords = configs.Passwords(*(secrets.token_hex(12) for _ in range(4)))
    etcd, etcd_port = _start_etcd(tools, base)
    rig = Rig(tools=tools, base=base, passwords=passwords, etcd=etcd, etcd_port=etcd_port)
    try:
        _wait("etcd", lambda: etcd_ready(rig), rig)
        _start_members(rig, members)
        _start_haproxy(rig)
        leader = rig.wait_healthy(members)
        _start_pgbouncer(rig)
        _create_service_database(rig, leader)
    except BaseException:
        rig.close()
        raise
    rig.started_s = time.monotonic() - started
    return rig
