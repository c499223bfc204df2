"""The configuration files of the HA stack: one Patroni member, HAProxy, pgbouncer.

The rig writes exactly these files, and ``docs/deploying-ha.md`` shows them rendered with
:func:`example_files` (a test keeps the page and this code identical), so the documented
configuration is the one the suite runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from luna_handlers.pgserver import pgbouncer

SCOPE = "luna-ha"
REPLICATION_USER = "replicator"
REWIND_USER = "rewinder"
SUPERUSER = "postgres"
DBNAME = "luna_handlers"
DB_USER = "luna"


@dataclass(frozen=True)
class DcsTiming:
    """Patroni's leader-lock timing (bootstrap.dcs): a dead leader is replaced after about
    ``ttl`` seconds; Patroni requires ``loop_wait + 2 * retry_timeout <= ttl`` and ttl >= 20."""

    ttl: int
    loop_wait: int
    retry_timeout: int


USERS_DEFAULT = DcsTiming(ttl=30, loop_wait=10, retry_timeout=10)
# The suite's timing: the smallest ttl Patroni accepts, so that each failover costs ~20 s of
# CI time instead of ~30 s; the service's behaviour does not depend on it.
SUITE = DcsTiming(ttl=20, loop_wait=2, retry_timeout=5)


@dataclass(frozen=True)
class Passwords:
    """The cluster's logins (never printed by the rig)."""

    superuser: str
    replication: str
    rewind: str
    service: str


@dataclass(frozen=True)
class Member:
    """One Patroni member: its PostgreSQL and REST addresses and its directories."""

    name: str
    host: str
    pg_port: int
    rest_port: int
    data_dir: str
    run_dir: str  # pgpass and the Unix socket


def patroni_member(member: Member, *, etcd: str, bin_dir: str, timing: DcsTiming,
                   passwords: Passwords) -> dict[str, Any]:
    """Patroni's YAML for ``member`` as a dict; ``etcd`` is ``host:port``."""
    def login(user: str, password: str) -> dict[str, str]:
        return {"username": user, "password": password}

    return {
        "scope": SCOPE,
        "name": member.name,
        "restapi": {"listen": f"{member.host}:{member.rest_port}",
                    "connect_address": f"{member.host}:{member.rest_port}"},
        "etcd3": {"hosts": etcd},
        "bootstrap": {
            "dcs": {
                "ttl": timing.ttl, "loop_wait": timing.loop_wait,
                "retry_timeout": timing.retry_timeout,
                "maximum_lag_on_failover": 1048576,
                # A commit is acknowledged only once a standby has it: a failover loses none.
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {"wal_log_hints": "on", "max_wal_senders": 10,
                                   "max_replication_slots": 10, "hot_standby": "on"},
                },
            },
            "initdb": [{"encoding": "UTF8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"{member.host}:{member.pg_port}",
            "connect_address": f"{member.host}:{member.pg_port}",
            "data_dir": member.data_dir,
            "bin_dir": bin_dir,
            "pgpass": f"{member.run_dir}/pgpass",
            "authentication": {
                "superuser": login(SUPERUSER, passwords.superuser),
                "replication": login(REPLICATION_USER, passwords.replication),
                "rewind": login(REWIND_USER, passwords.rewind),
            },
            "parameters": {"unix_socket_directories": member.run_dir},
            # Without a fast checkpoint a new replica's base backup waits for the next
            # scheduled one (91 s measured).
            "basebackup": [{"checkpoint": "fast"}],
            "pg_hba": [
                "local all all scram-sha-256",
                f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
                f"host replication {REPLICATION_USER} 0.0.0.0/0 scram-sha-256",
                "host all all 0.0.0.0/0 scram-sha-256",
            ],
        },
    }


def patroni_yaml(config: dict[str, Any]) -> str:
    """The member config as Patroni reads it."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def haproxy_cfg(members: list[Member], *, bind: str, stats_socket: str | None = None) -> str:
    """HAProxy sending every connection to the member whose REST ``/primary`` answers 200."""
    stats = f"    stats socket {stats_socket} mode 600 level admin\n" if stats_socket else ""
    servers = "".join(
        f"    server {m.name} {m.host}:{m.pg_port} maxconn 100 check port {m.rest_port}\n"
        for m in members)
    return (
        "global\n"
        "    maxconn 200\n"
        f"{stats}"
        "\n"
        "defaults\n"
        "    mode tcp\n"
        "    retries 2\n"
        "    timeout connect 4s\n"
        "    timeout client 30m\n"
        "    timeout server 30m\n"
        "    timeout check 5s\n"
        "\n"
        "listen postgres_primary\n"
        f"    bind {bind}\n"
        "    option httpchk GET /primary\n"
        "    http-check expect status 200\n"
        # Sessions to a member that stops being the primary are cut at once.
        "    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions\n"
        f"{servers}"
    )


def pgbouncer_ini(*, listen: str, port: int, upstream_host: str, upstream_port: int,
                  auth_file: str, pool_mode: str = "transaction") -> str:
    """pgbouncer in front of HAProxy's primary port (so it follows the leader)."""
    return pgbouncer.pgbouncer_ini(dbname=DBNAME, listen=listen, port=port,
                                   upstream_host=upstream_host, upstream_port=upstream_port,
                                   auth_file=auth_file, pool_mode=pool_mode)


pgbouncer_userlist = pgbouncer.pgbouncer_userlist


EXAMPLE_HOSTS = ("pg01", "pg02", "pg03")


def example_files() -> dict[str, str]:
    """The files of ``docs/deploying-ha.md``: member pg01 of three, HAProxy, pgbouncer."""
    members = [Member(name=host, host=host, pg_port=5432, rest_port=8008,
                      data_dir="/var/lib/postgresql/15/patroni",
                      run_dir="/var/run/postgresql") for host in EXAMPLE_HOSTS]
    passwords = Passwords(superuser="CHANGE-ME-1", replication="CHANGE-ME-2",
                          rewind="CHANGE-ME-3", service="CHANGE-ME-4")
    member = patroni_member(members[0], etcd="etcd01:2379,etcd02:2379,etcd03:2379",
                            bin_dir="/usr/lib/postgresql/15/bin", timing=USERS_DEFAULT,
                            passwords=passwords)
    return {
        "patroni.yml": patroni_yaml(member),
        "haproxy.cfg": haproxy_cfg(members, bind="*:5000"),
        "pgbouncer.ini": pgbouncer_ini(listen="*", port=6432, upstream_host="127.0.0.1",
                                       upstream_port=5000,
                                       auth_file="/etc/pgbouncer/userlist.txt"),
    }
