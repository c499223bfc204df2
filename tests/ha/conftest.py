"""The HA suite's session: the rig, the services under test, the report at the end.

Where the rig cannot be built (not root, no apt) the suite is skipped with the reason; with
``CI=true`` that is a failure instead, so CI cannot pass without having run it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from psycopg.conninfo import make_conninfo

from luna_handlers.config_schema import SCHEMA
from tests.ha import configs
from tests.ha.install import InstallLog, Unavailable, ensure_tools
from tests.ha.report import Report
from tests.ha.rig import Rig, start_rig
from tests.ha.scenarios import Run, run_scenario
from tests.ha.service import Service, start_service
from tests.ha.writers import PSYCOPG_CONNECT_TIMEOUT_S, PsycopgWriter, ServiceWriter, Writer

REPORT = pytest.StashKey[Report]()
LOOPS = 3  # concurrent writing loops per writer
# "a few seconds" past the default switch wait: no request may take longer than this
SLOW_AFTER_S = float(SCHEMA["DB_FAILOVER"]["switch_wait"].default) + 5.0
SERVICE_TARGETS = ("multi-host", "haproxy", "pgbouncer")
# What docs/deploying-ha.md says to set for pgbouncer in transaction mode.
DB_OPTIONS: dict[str, dict[str, object]] = {"pgbouncer": {"prepared_statements": False}}


@dataclass
class HaSession:
    """The rig with a service on each target; each scenario runs once, for every writer."""

    rig: Rig
    services: dict[str, Service]
    report: Report
    runs: dict[str, Run] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def psycopg_conninfo(self) -> str:
        """libpq multi-host over the three members, read-write sessions only."""
        specs = [m.spec for m in self.rig.members]
        return make_conninfo(
            host=",".join(s.host for s in specs), port=",".join(str(s.pg_port) for s in specs),
            user=configs.DB_USER, password=self.rig.passwords.service, dbname=configs.DBNAME,
            target_session_attrs="read-write", connect_timeout=PSYCOPG_CONNECT_TIMEOUT_S)

    async def run(self, scenario: str, label: str | None = None) -> Run:
        """The scenario's record (kept as ``label``), running it on first use."""
        label = label or scenario
        async with self.lock:
            if label not in self.runs:
                for name, service in self.services.items():
                    if not service.daemon.running():
                        pytest.fail(f"service ({name}) exited:\n{service.daemon.tail()}")
                writers: dict[str, tuple[Writer, int]] = {
                    f"service/{name}": (ServiceWriter(f"service/{name}", service.base), LOOPS)
                    for name, service in self.services.items()}
                writers["psycopg/multi-host"] = (
                    PsycopgWriter("psycopg/multi-host", self.psycopg_conninfo()), LOOPS)
                try:
                    run = await run_scenario(self.rig, scenario, writers)
                finally:
                    for writer, _ in writers.values():
                        await writer.close()
                run.scenario = label
                self.runs[label] = run
                self.report.runs.append(run)
            return self.runs[label]


@pytest.fixture(scope="session")
def ha_report(request: pytest.FixtureRequest) -> Report:
    """The report printed at the end of the run."""
    report = Report(slow_after_s=SLOW_AFTER_S)
    request.config.stash[REPORT] = report
    return report


@pytest.fixture(scope="session")
def ha_rig(ha_report: Report) -> Iterator[Rig]:
    """The session's rig, installing what is missing first."""
    log = InstallLog()
    try:
        tools = ensure_tools(log)
    except Unavailable as exc:
        ha_report.skipped = str(exc)
        if os.environ.get("CI") == "true":
            pytest.fail(f"the HA rig is required in CI: {exc}")
        pytest.skip(f"HA rig unavailable: {exc}")
    ha_report.install = log
    rig = start_rig(tools)
    ha_report.rig_start_s = rig.started_s
    yield rig
    rig.close()


@pytest.fixture(scope="session")
def ha(ha_rig: Rig, ha_report: Report) -> Iterator[HaSession]:
    """A ``serve`` process on the members (multi-host DSN), one on HAProxy, one on pgbouncer
    (in front of HAProxy, transaction mode)."""
    services: dict[str, Service] = {}
    dsns = {"multi-host": ha_rig.multi_host_dsn(),
            "haproxy": ha_rig.single_host_dsn(ha_rig.haproxy_port),
            "pgbouncer": ha_rig.single_host_dsn(ha_rig.pgbouncer_port)}
    try:
        for name in SERVICE_TARGETS:
            services[name] = start_service(name, dsns[name], ha_rig.base,
                                           DB_OPTIONS.get(name))
        yield HaSession(ha_rig, services, ha_report)
    finally:
        for service in services.values():
            service.daemon.stop(timeout=15)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """Print the HA table (service and psycopg reference side by side)."""
    report = config.stash.get(REPORT, None)
    if report is None:
        return
    terminalreporter.section("HA suite: Patroni / HAProxy / pgbouncer")
    for line in report.lines():
        terminalreporter.write_line(line)
