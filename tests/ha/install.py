"""What the HA rig needs on the machine, installed when the machine allows it.

Debian packages (etcd, HAProxy, pgbouncer, PostgreSQL server binaries) come from apt; Patroni
comes from PyPI into a virtualenv of its own, built on the system Python: Patroni runs
PostgreSQL as the ``postgres`` user, who cannot execute a Python inside root's home. The
virtualenv is cached under :data:`CACHE`, keyed by the Patroni version, so a second run
installs nothing. Without root or apt the rig cannot be built: :class:`Unavailable` says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from luna_handlers.pgserver.cluster import SHARED_ROOT

PATRONI_VERSION = "4.1.5"
PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
SYSTEM_PYTHON = Path("/usr/bin/python3")
SERVER_USER = "postgres"
CACHE = SHARED_ROOT / "ha"
# package -> a file it installs, the proof that it is there
DEB_PACKAGES: dict[str, Path] = {
    "etcd-server": Path("/usr/bin/etcd"),
    "etcd-client": Path("/usr/bin/etcdctl"),
    "haproxy": Path("/usr/sbin/haproxy"),
    "pgbouncer": Path("/usr/sbin/pgbouncer"),
    f"postgresql-{PG_MAJOR}": PG_BIN / "postgres",
}
PIP_REQUIREMENTS = (f"patroni[etcd3]=={PATRONI_VERSION}", "psycopg[binary]>=3.1")
INSTALL_TIMEOUT_S = 900


class Unavailable(Exception):
    """The rig cannot be built on this machine; the message says what is missing."""


@dataclass(frozen=True)
class Tools:
    """Paths of every program the rig runs."""

    etcd: Path
    etcdctl: Path
    haproxy: Path
    pgbouncer: Path
    pg_bin: Path
    patroni: Path
    patronictl: Path
    server_user: str


@dataclass
class InstallLog:
    """What :func:`ensure_tools` had to do, for the report."""

    apt_packages: tuple[str, ...] = ()
    patroni_venv_built: bool = False
    seconds: float = 0.0


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            timeout=INSTALL_TIMEOUT_S, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise Unavailable(f"{what} failed ({result.returncode}): {tail}")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One installer at a time on this machine (two sessions may start together)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    SHARED_ROOT.chmod(0o755)
    CACHE.chmod(0o755)
    with (CACHE / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _no_daemons_started() -> Iterator[None]:
    """Keep the packages' own services (etcd on 2379, a PostgreSQL cluster on 5432, ...) from
    starting at install: the rig runs its own instances on free ports."""
    policy = Path("/usr/sbin/policy-rc.d")
    cluster_conf = Path("/etc/postgresql-common/createcluster.d/luna-handlers-ha.conf")
    added: list[Path] = []
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        added.append(policy)
    if not (PG_BIN / "postgres").exists() and not cluster_conf.exists():
        cluster_conf.parent.mkdir(parents=True, exist_ok=True)
        cluster_conf.write_text("create_main_cluster = false\n")
        added.append(cluster_conf)
    try:
        yield
    finally:
        for path in added:
            path.unlink(missing_ok=True)


def _install_debs(missing: list[str]) -> None:
    if shutil.which("apt-get") is None:
        raise Unavailable(f"missing {', '.join(missing)} and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _no_daemons_started():
        _run(["apt-get", "update", "-q"], "apt-get update", env)
        _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
             f"apt-get install {' '.join(missing)}", env)


def _patroni_venv() -> Path:
    return CACHE / f"patroni-{PATRONI_VERSION}"


def _build_patroni_venv(venv: Path) -> None:
    if not SYSTEM_PYTHON.exists():
        raise Unavailable(f"no system Python at {SYSTEM_PYTHON} to build Patroni's virtualenv")
    # A half-built venv (an interrupted run) has no marker: start it over.
    shutil.rmtree(venv, ignore_errors=True)
    _run([str(SYSTEM_PYTHON), "-m", "venv", str(venv)], "building Patroni's virtualenv")
    _run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
          *PIP_REQUIREMENTS], f"pip install {' '.join(PIP_REQUIREMENTS)}")
    for path in (venv, *venv.rglob("*")):
        if path.is_dir():
            path.chmod(0o755)
    (venv / ".complete").write_text(PATRONI_VERSION)


def ensure_pgbouncer() -> Path:
    """The pgbouncer binary alone (for the tests outside the HA suite), installed with apt
    when missing and the machine allows it."""
    binary = DEB_PACKAGES["pgbouncer"]
    if binary.exists():
        return binary
    if os.geteuid() != 0:
        raise Unavailable("pgbouncer is not installed, and installing it needs root")
    with _locked():
        if not binary.exists():
            _install_debs(["pgbouncer"])
    return binary


def ensure_tools(log: InstallLog | None = None) -> Tools:
    """Every program of the rig, installed first when missing (root and apt needed then)."""
    log = log if log is not None else InstallLog()
    started = time.monotonic()
    if os.geteuid() != 0:
        raise Unavailable("the HA rig needs root: it runs PostgreSQL under Patroni as the "
                          f"{SERVER_USER!r} user and installs what is missing with apt")
    with _locked():
        missing = [package for package, proof in DEB_PACKAGES.items() if not proof.exists()]
        if missing:
            _install_debs(missing)
            log.apt_packages = tuple(missing)
        venv = _patroni_venv()
        if not (venv / ".complete").exists():
            _build_patroni_venv(venv)
            log.patroni_venv_built = True
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise Unavailable(f"no {SERVER_USER!r} user (the PostgreSQL package creates it)") from None
    log.seconds = time.monotonic() - started
    return Tools(etcd=DEB_PACKAGES["etcd-server"], etcdctl=DEB_PACKAGES["etcd-client"],
                 haproxy=DEB_PACKAGES["haproxy"], pgbouncer=DEB_PACKAGES["pgbouncer"],
                 pg_bin=PG_BIN, patroni=venv / "bin" / "patroni",
                 patronictl=venv / "bin" / "patronictl", server_user=SERVER_USER)
