"""The HTTP servers under test, each a subprocess group on loopback: start, probe, stop.

- ``ours``: ``luna-handlers serve --config <json>`` on the bench database (``ours@pgbouncer``:
  through pgbouncer in transaction mode, ``prepared_statements`` false);
- ``floor``: :mod:`bench.api.thin_floor` under uvicorn (uvloop, httptools);
- ``postgraphile``: PostGraphile 4 from npm, installed once under ``bench/api/.node``.

Every server gets the same worker count and a 10-connection database pool.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.api.data import PASSWORD, USER, BenchDatabase
from luna_handlers.pgserver.cluster import free_port
from luna_handlers.pgserver.pgbouncer import PgBouncer

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / ".node"
POSTGRAPHILE = NODE_DIR / "node_modules" / ".bin" / "postgraphile"
POOL_SIZE = 10
OURS_VIA_PGBOUNCER = "ours@pgbouncer"
READY_TIMEOUT = 90.0


class ServerFailed(RuntimeError):
    """A server did not start; the message ends with the tail of its log."""


@dataclass
class Server:
    """One started server: ``flavor`` tells wrk's script which requests to build."""

    name: str
    flavor: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    health: str = "/health"

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM the whole process group (workers too), SIGKILL after 10 s."""
        if self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # workers that outlived their parent

    def tail(self, lines: int = 15) -> str:
        """The end of the server's log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _spawn(name: str, flavor: str, port: int, argv: list[str], *, env: dict[str, str],
           db: BenchDatabase, health: str = "/health") -> Server:
    log = db.workdir / f"{name}.log"
    with log.open("wb") as out:
        # Its own session: stop() can signal the server and every worker it forked.
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env}, start_new_session=True,
                                   cwd=str(HERE.parent.parent))
    return Server(name, flavor, port, process, log, health)


def _probe(server: Server) -> bool:
    if server.flavor == "graphql":
        request = urllib.request.Request(
            server.base + "/graphql", data=b'{"query":"{__typename}"}', method="POST",
            headers={"Content-Type": "application/json"})
    else:
        request = urllib.request.Request(server.base + server.health)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(server: Server) -> Server:
    """Return ``server`` once it answers; raise :class:`ServerFailed` if it exits or stalls."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not _probe(server):
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(f"{server.name} did not start:\n{server.tail()}")
        time.sleep(0.2)
    return server


def start_ours(db: BenchDatabase, workers: int, name: str = "ours",
               via: PgBouncer | None = None,
               sections: dict[str, dict[str, object]] | None = None) -> Server:
    """``luna-handlers serve`` with a config file pointing at the bench database, or at
    ``via`` in front of it (then as documented for pgbouncer in transaction mode); ``name``
    tells the servers of several databases (and their logs) apart; ``sections`` adds config
    sections (``{"FACE_ENGINE": {"workers": 2}}``)."""
    port = free_port()
    name = name if via is None else OURS_VIA_PGBOUNCER
    host, db_port = (db.cluster.host, db.cluster.port) if via is None else (via.host, via.port)
    config = db.workdir / f"{name}.json"
    config.write_text(json.dumps({
        "LUNA_HANDLERS_DB": {"db_type": "postgres", "db_host": host, "db_port": db_port,
                             "db_user": USER, "db_password": PASSWORD, "db_name": db.dbname,
                             "connection_pool_size": POOL_SIZE,
                             **({} if via is None else {"prepared_statements": False})},
        "LUNA_HANDLERS_SERVER": {"host": "127.0.0.1", "port": port, "workers": workers},
        "LOGGING": {"level": "WARNING"},
        **(sections or {}),
    }))
    script = Path(sys.executable).with_name("luna-handlers")
    argv = ([str(script)] if script.exists() else [sys.executable, "-m", "luna_handlers"])
    return wait_ready(_spawn(name, "rest", port, [*argv, "serve", "--config", str(config)],
                             env={}, db=db, health="/1/healthcheck"))


def start_pgbouncer(db: BenchDatabase, workers: int) -> PgBouncer:
    """pgbouncer 1.18 in transaction mode in front of the bench database, with a server
    session for every connection of every worker's pool."""
    workdir = db.workdir / "pgbouncer"
    workdir.mkdir(exist_ok=True)
    workdir.chmod(0o755)  # pgbouncer runs as the server user when we are root
    bouncer = PgBouncer(workdir, db.dbname, USER, PASSWORD, (db.cluster.host, db.cluster.port),
                        pool_size=POOL_SIZE * workers)
    bouncer.start()
    return bouncer


def start_floor(db: BenchDatabase, workers: int) -> Server:
    """The thin floor under uvicorn with uvloop and httptools."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.api.thin_floor:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--loop", "uvloop", "--http",
            "httptools", "--no-access-log", "--log-level", "warning"]
    env = {"BENCH_FLOOR_DSN": db.dsn, "BENCH_FLOOR_POOL": str(POOL_SIZE)}
    return wait_ready(_spawn("floor", "rest", port, argv, env=env, db=db))


def install_postgraphile() -> Path:
    """The PostGraphile 4 binary, installed from npm into ``bench/api/.node`` if missing."""
    if not POSTGRAPHILE.exists():
        if shutil.which("npm") is None:
            raise ServerFailed("npm is not installed (apt-get install -y nodejs npm)")
        NODE_DIR.mkdir(exist_ok=True)
        print(f"installing postgraphile@4 into {NODE_DIR} ...", flush=True)
        subprocess.run(["npm", "install", "--prefix", str(NODE_DIR), "--no-audit",
                        "--no-fund", "--loglevel=error", "postgraphile@4"], check=True)
    return POSTGRAPHILE


def start_postgraphile(db: BenchDatabase, workers: int) -> Server:
    """PostGraphile 4 over the ``public`` schema, query log off."""
    binary = install_postgraphile()
    port = free_port()
    argv = [str(binary), "--connection", db.dsn, "--schema", "public", "--host", "127.0.0.1",
            "--port", str(port), "--max-pool-size", str(POOL_SIZE), "--disable-query-log",
            "--disable-graphiql"]
    if workers > 1:
        argv += ["--cluster-workers", str(workers)]
    return wait_ready(_spawn("postgraphile", "graphql", port, argv,
                             env={"NODE_ENV": "production"}, db=db))
