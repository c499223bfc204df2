"""The service under test as users run it: ``python -m luna_handlers serve --config FILE``."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from luna_handlers.pgserver.cluster import free_port
from tests.ha.procs import Daemon

READY_TIMEOUT_S = 60.0
REPO = Path(__file__).resolve().parents[2]


class ServiceFailed(RuntimeError):
    """``serve`` exited or never answered; the message ends with the tail of its log."""


@dataclass
class Service:
    """One ``serve`` process on loopback."""

    name: str
    port: int
    daemon: Daemon

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        """True when ``GET /1/healthcheck`` answers at all (any status)."""
        try:
            with urllib.request.urlopen(self.base + "/1/healthcheck", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False


def start_service(name: str, dsn: str, workdir: Path,
                  db_options: dict[str, object] | None = None) -> Service:
    """``serve`` pointed at ``dsn`` (with ``db_options``, more ``LUNA_HANDLERS_DB`` keys) with
    every ``DB_FAILOVER`` setting at its default."""
    port = free_port()
    config = workdir / f"service-{name}.json"
    config.write_text(json.dumps({
        "LUNA_HANDLERS_DB": {"dsn": dsn, **(db_options or {})},
        "LUNA_HANDLERS_SERVER": {"host": "127.0.0.1", "port": port},
    }))
    config.chmod(0o600)
    # Ours, not an inherited one: the service reads LUNA_HANDLERS_* from the environment too.
    daemon = Daemon(f"service-{name}", [sys.executable, "-m", "luna_handlers", "serve",
                                        "--config", str(config)],
                    workdir / f"service-{name}.log",
                    # from the checkout, where ``luna_handlers`` imports without being installed
                    cwd=str(REPO))
    daemon.start()
    service = Service(name, port, daemon)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not service.answers():
        if not daemon.running() or time.monotonic() > deadline:
            daemon.stop(timeout=5)
            raise ServiceFailed(f"serve ({name}) did not start:\n{daemon.tail(10)}")
        time.sleep(0.2)
    return service
