"""The Oracle dsn parser, table-driven, with python-oracledb's own parser as the referee."""

from __future__ import annotations

import json
import pickle
from typing import Any

import oracledb
import pytest

from luna_handlers.config import DBSettings
from luna_handlers.db.dialects.oracle.dsn import (
    OPTIONS,
    OracleDefaults,
    OracleDsn,
    explain_dsn,
    oracle_dsn_from_settings,
    parse_oracle_dsn,
)
from luna_handlers.db.hosts import DsnError, HostPort

SECRET = "S3cr3t!x"
DEFAULTS = OracleDefaults(host="dbhost", port=1600, user="svc", password=SECRET, sid="ORCL")
DESCRIPTOR = ("(DESCRIPTION=(ADDRESS_LIST=(FAILOVER=on)"
              "(ADDRESS=(PROTOCOL=TCP)(HOST=ora1)(PORT=1521))"
              "(ADDRESS=(PROTOCOL=TCP)(HOST=ora2)(PORT=1522)))"
              "(CONNECT_DATA=(SERVICE_NAME=luna_svc)))")


def hp(*pairs: tuple[str, int]) -> list[dict[str, object]]:
    return [{"host": host, "port": port} for host, port in pairs]


def public(hosts: list[dict[str, object]], target: dict[str, str], *, user: str = "svc",
           password: str | None = "***", options: dict[str, str] | None = None,
           form: str = "easy_connect", protocol: str = "tcp") -> dict[str, object]:
    return {"db_type": "oracle", "form": form, "protocol": protocol, "hosts": hosts,
            "user": user, "password": password, **target, "options": options or {}}


# text -> public_dict(); user svc, password *** and port 1600 come from DEFAULTS.
VALID: dict[str, dict[str, object]] = {
    "": public(hp(("dbhost", 1600)), {"sid": "ORCL"}),
    "ora1": public(hp(("ora1", 1600)), {"sid": "ORCL"}),
    "ora1:1521/luna_svc": public(hp(("ora1", 1521)), {"service_name": "luna_svc"}),
    "//ora1/luna.example.com": public(hp(("ora1", 1600)), {"service_name": "luna.example.com"}),
    "tcp://ora1:1521/s": public(hp(("ora1", 1521)), {"service_name": "s"}),
    "TCPS://ora1:2484/s": public(hp(("ora1", 2484)), {"service_name": "s"}, protocol="tcps"),
    "ora1,ora2:1522/s": public(hp(("ora1", 1522), ("ora2", 1522)), {"service_name": "s"}),
    "ora1:1521,ora2/s": public(hp(("ora1", 1521), ("ora2", 1600)), {"service_name": "s"}),
    "a,b,c:1700,d/s": public(hp(("a", 1700), ("b", 1700), ("c", 1700), ("d", 1600)),
                             {"service_name": "s"}),
    "[::1]:1522,10.0.0.2/s": public(hp(("::1", 1522), ("10.0.0.2", 1600)),
                                    {"service_name": "s"}),
    "/s": public(hp(("dbhost", 1600)), {"service_name": "s"}),
    "luna/pw@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}, user="luna"),
    "luna:pw@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}, user="luna"),
    "luna:p@s:s/w@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}, user="luna"),
    "luna@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}, user="luna"),
    "luna:@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}, user="luna",
                           password=None),
    "@ora1/s": public(hp(("ora1", 1600)), {"service_name": "s"}),
    "ora1/s?retry_delay=2&connect_timeout=2.5&retry_count=3&failover=off&load_balance=on"
    "&expire_time=1": public(hp(("ora1", 1600)), {"service_name": "s"}, options={
        "connect_timeout": "2.5", "expire_time": "1", "failover": "off",
        "load_balance": "on", "retry_count": "3", "retry_delay": "2"}),
    DESCRIPTOR: public(hp(("ora1", 1521), ("ora2", 1522)), {"service_name": "luna_svc"},
                       form="descriptor", options={"failover": "on"}),
    f"luna/pw@{DESCRIPTOR}": public(hp(("ora1", 1521), ("ora2", 1522)),
                                    {"service_name": "luna_svc"}, user="luna",
                                    form="descriptor", options={"failover": "on"}),
    "(DESCRIPTION=(ADDRESS=(PROTOCOL=tcps)(HOST=ora1)(PORT=2484))(CONNECT_DATA=(SID=ORA)))":
        public(hp(("ora1", 2484)), {"sid": "ORA"}, form="descriptor", protocol="tcps"),
    # tnsnames.ora style: any case, blanks and line breaks, a quoted value, no PORT.
    ' (description = (retry_count = 2)\n  (address = (host = ora1))\n'
    '  (connect_data = (server = dedicated) (service_name = "s1")) ) ':
        public(hp(("ora1", 1521)), {"service_name": "s1"}, form="descriptor",
               options={"retry_count": "2"}),
}


@pytest.mark.parametrize("text", VALID)
def test_valid(text: str) -> None:
    dsn = parse_oracle_dsn(text, DEFAULTS)
    assert dsn.public_dict() == VALID[text]
    assert (dsn.service_name is None) != (dsn.sid is None)


@pytest.mark.parametrize("text", VALID)
def test_python_oracledb_reads_our_dsn_as_we_do(text: str) -> None:
    dsn = parse_oracle_dsn(text, DEFAULTS)
    params = oracledb.ConnectParams()
    params.parse_connect_string(dsn.to_oracledb_dsn())
    hosts, ports, protocols = (v if isinstance(v, list) else [v]
                               for v in (params.host, params.port, params.protocol))
    assert [HostPort(h, p) for h, p in zip(hosts, ports, strict=True)] == list(dsn.addresses)
    assert set(protocols) == {dsn.protocol}
    assert (params.service_name, params.sid) == (dsn.service_name, dsn.sid)
    options = dsn.option_map
    assert params.retry_count == int(options.get("retry_count", 0))
    assert params.tcp_connect_timeout == float(options.get("connect_timeout", 20))


@pytest.mark.parametrize("text", [t for t in VALID if "/" in t and "(" not in t
                                  and not t.startswith(("/", "luna/"))])
def test_easy_connect_addresses_as_python_oracledb_reads_the_text(text: str) -> None:
    # The referee on the original text (without credentials, with Oracle's default port).
    dsn = parse_oracle_dsn(text.rsplit("@", maxsplit=1)[-1], OracleDefaults(port=1521))
    params = oracledb.ConnectParams()
    params.parse_connect_string(text.rsplit("@", maxsplit=1)[-1])
    hosts, ports = (v if isinstance(v, list) else [v] for v in (params.host, params.port))
    assert [HostPort(h, p) for h, p in zip(hosts, ports, strict=True)] == list(dsn.addresses)
    assert params.service_name == dsn.service_name


def test_driver_dsn_forms() -> None:
    # Built from parts: a descriptor, since Easy Connect cannot name a SID.
    assert parse_oracle_dsn("", DEFAULTS).to_oracledb_dsn() == (
        "(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCP)(HOST=dbhost)(PORT=1600)))"
        "(CONNECT_DATA=(SID=ORCL)))")
    assert parse_oracle_dsn("tcps://a,b:2484/s?connect_timeout=2.5&retry_count=3",
                            DEFAULTS).to_oracledb_dsn() == (
        "(DESCRIPTION=(TRANSPORT_CONNECT_TIMEOUT=2500ms)(RETRY_COUNT=3)(ADDRESS_LIST="
        "(ADDRESS=(PROTOCOL=TCPS)(HOST=a)(PORT=2484))(ADDRESS=(PROTOCOL=TCPS)(HOST=b)"
        "(PORT=2484)))(CONNECT_DATA=(SERVICE_NAME=s)))")
    assert "(TRANSPORT_CONNECT_TIMEOUT=5)" in parse_oracle_dsn(
        "a/s?connect_timeout=5").to_oracledb_dsn()
    # A descriptor goes to the driver exactly as written (only surrounding blanks dropped).
    assert parse_oracle_dsn(f"u/p@ {DESCRIPTOR}\n").to_oracledb_dsn() == DESCRIPTOR


def db(dsn: str | None, **keys: Any) -> DBSettings:
    values: dict[str, Any] = {"db_type": "oracle", "db_host": "dbhost", "db_port": 1521,
                              "db_user": "svc", "db_password": SECRET, "db_name": "ORCL",
                              "connection_pool_size": 5, "dsn": dsn}
    return DBSettings(**{**values, **keys})


def test_settings_fill_the_gaps() -> None:
    assert oracle_dsn_from_settings(db(None)) == OracleDsn(
        (HostPort("dbhost", 1521),), None, "ORCL", "svc", SECRET)
    assert oracle_dsn_from_settings(db("ora1,ora2/s", db_port=1600)) == OracleDsn(
        (HostPort("ora1", 1600), HostPort("ora2", 1600)), "s", None, "svc", SECRET)
    assert explain_dsn(db("luna/pw@ora1:1521/s?retry_count=2")) == {
        "db_type": "oracle", "form": "easy_connect", "protocol": "tcp",
        "hosts": [{"host": "ora1", "port": 1521}], "user": "luna", "password": "***",
        "service_name": "s", "options": {"retry_count": "2"},
        "oracledb_dsn": "(DESCRIPTION=(RETRY_COUNT=2)(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCP)"
                        "(HOST=ora1)(PORT=1521)))(CONNECT_DATA=(SERVICE_NAME=s)))"}
    assert explain_dsn(db(None, db_password=""))["password"] is None


# text -> (position, part of the message)
INVALID: dict[str, tuple[int, str]] = {
    "ora1:0/s": (5, "port must be between 1 and 65535"),
    "ora1:65536/s": (5, "port must be"),
    "ora1:15x/s": (5, "port must be"),
    "ora1:/s": (5, "empty port after ':'"),
    "ora1,,ora2/s": (5, "empty host name"),
    ",ora1/s": (0, "empty host name"),
    "ora 1/s": (3, "invalid character ' ' in host name"),
    "ora1;ora2/s": (4, "several address lists need a descriptor"),
    "[::1/s": (0, "unclosed '['"),
    "[ora1]/s": (1, "invalid IPv6 address"),
    "[::1]x/s": (5, "expected ':port'"),
    "ftp://ora1/s": (0, "unsupported protocol"),
    "ora1/": (5, "empty service name"),
    "ora1/s:dedicated": (6, "no server type or instance name"),
    "ora1/s/inst1": (6, "no server type or instance name"),
    "ora1/s?conect_timeout=5": (7, "unknown option 'conect_timeout', accepted options: "
                                   "connect_timeout, expire_time, failover, load_balance, "
                                   "retry_count, retry_delay"),
    "ora1/s?": (7, "empty option"),
    "ora1/s?retry_count=1&": (21, "empty option"),
    "ora1/s?retry_count=1&retry_count=2": (21, "duplicate option 'retry_count'"),
    "ora1/s?connect_timeout=0": (23, "bad value for connect_timeout"),
    "ora1/s?connect_timeout": (22, "bad value for connect_timeout"),
    "ora1/s?failover=yes": (16, "bad value for failover"),
    "ora1/s?retry_count=-1": (19, "bad value for retry_count"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=x))": (0, "unbalanced parentheses"),
    # ADDRESS swallows CONNECT_DATA and closes with the last ")": DESCRIPTION stays open.
    "(DESCRIPTION=(ADDRESS=(HOST=a)(CONNECT_DATA=(SID=x)))": (0, "unbalanced parentheses"),
    "(DESCRIPTION=": (0, "unbalanced parentheses"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=x))))": (54, "unexpected text after"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=x))) x": (55, "unexpected text after"),
    "(DESCRIPTION (ADDRESS=(HOST=a)))": (13, "expected '=' after the keyword"),
    "(=x)": (1, "expected a keyword"),
    "(DESCRIPTION=(ADDRESS=(HOST=)(PORT=1))(CONNECT_DATA=(SID=x)))": (28, "empty value"),
    "(DESCRIPTION=(ADDRESS=(HOST=a=b))(CONNECT_DATA=(SID=x)))": (29, "unexpected '='"),
    '(DESCRIPTION=(ADDRESS=(HOST="a))(CONNECT_DATA=(SID=x)))': (28, "unclosed '\"'"),
    "(DESCRIPTION=(ADDRESS=(HOST=a)(PORT=0))(CONNECT_DATA=(SID=x)))": (13, "PORT must be"),
    "(DESCRIPTION=(ADDRESS=(PORT=1))(CONNECT_DATA=(SID=x)))": (13, "ADDRESS needs a valid HOST"),
    "(DESCRIPTION=(ADDRESS=(HOST=a)(HOST=b))(CONNECT_DATA=(SID=x)))": (30, "HOST given twice"),
    "(DESCRIPTION=(ADDRESS=(HOST=(X=1)))(CONNECT_DATA=(SID=x)))": (22, "needs a value"),
    "(DESCRIPTION=(CONNECT_DATA=(SID=x)))": (0, "no (ADDRESS=...)"),
    "(DESCRIPTION=(ADDRESS=(HOST=a)))": (0, "needs one (CONNECT_DATA=...)"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SERVER=dedicated)))": (31, "exactly one of"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=x)(SERVICE_NAME=y)))": (31,
                                                                               "exactly one"),
    "(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=\"x y\")))": (31, "invalid character"),
    "(DESCRIPTION=(ADDRESS=(PROTOCOL=IPC)(KEY=a))(CONNECT_DATA=(SID=x)))": (0, "TCP or TCPS"),
    "(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=a))(ADDRESS=(PROTOCOL=TCPS)(HOST=b))"
    "(CONNECT_DATA=(SID=x)))": (0, "the same for every address"),
    "(DESCRIPTION_LIST=(DESCRIPTION=(ADDRESS=(HOST=a))(CONNECT_DATA=(SID=x))))": (0,
                                                                                 "one (DESC"),
    "(A=" * 40: (51, "nested too deeply"),
}


@pytest.mark.parametrize("text", INVALID)
def test_invalid(text: str) -> None:
    position, message = INVALID[text]
    with pytest.raises(DsnError) as caught:
        parse_oracle_dsn(text)
    assert message in caught.value.message
    assert caught.value.position == position
    assert str(caught.value).startswith(f"invalid DSN at position {position}: ")


@pytest.mark.parametrize("text", INVALID)
def test_password_is_never_shown_in_errors(text: str) -> None:
    # Same errors behind credentials; the position moves by the length of the prefix.
    prefix = f"luna/{SECRET}@"
    with pytest.raises(DsnError) as caught:
        parse_oracle_dsn(prefix + text)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert caught.value.position == INVALID[text][0] + len(prefix)
    restored = pickle.loads(pickle.dumps(caught.value))
    assert (restored.message, restored.position) == (caught.value.message,
                                                      caught.value.position)


@pytest.mark.parametrize("text", [f"luna/{SECRET}@ora1/s", f"luna:{SECRET}@{DESCRIPTOR}", ""])
def test_password_is_never_shown_when_valid(text: str) -> None:
    dsn = parse_oracle_dsn(text, OracleDefaults(password=SECRET))
    assert dsn.password == SECRET
    for shown in (repr(dsn), str(dsn), json.dumps(dsn.public_dict()), dsn.to_oracledb_dsn(),
                  json.dumps(explain_dsn(db(text or None)))):
        assert SECRET not in shown


@pytest.mark.parametrize(("key", "message"), [
    ("db_host", "db_host is not a valid Oracle host"),
    ("db_name", "db_name is not a valid Oracle SID"),
])
def test_defaults_cannot_rewrite_the_descriptor(key: str, message: str) -> None:
    # db_host and db_name are written into the descriptor we build.
    with pytest.raises(DsnError, match=message):
        oracle_dsn_from_settings(db(None, **{key: "x)(HOST=evil"}))


def test_every_option_is_documented() -> None:
    assert all(doc for _check, doc in OPTIONS.values())
    assert sorted(OPTIONS) == ["connect_timeout", "expire_time", "failover", "load_balance",
                               "retry_count", "retry_delay"]
