"""Table-driven tests of the pure multi-host PostgreSQL DSN parser."""

from __future__ import annotations

import json
import pickle
from urllib.parse import quote

import pytest

from luna_handlers.db.dialects.postgresql.dsn import (
    ACCEPTED_OPTIONS,
    DsnDefaults,
    PgDsn,
    parse_pg_dsn,
)
from luna_handlers.db.hosts import DsnError, HostPort, TargetSessionAttrs

SECRET = "S3cr3t!x"
DEFAULTS = DsnDefaults()
CUSTOM = DsnDefaults(host="db.local", port=6000, user="svc", password="pw", dbname="other")


def hp(host: str, port: int = 5432) -> HostPort:
    return HostPort(host, port)


def dsn(
    *hosts: HostPort,
    user: str = "luna",
    password: str = "luna",
    dbname: str = "luna_handlers",
    options: tuple[tuple[str, str], ...] = (),
) -> PgDsn:
    return PgDsn(hosts or (hp("127.0.0.1"),), user, password, dbname, options)


TWO_HOSTS = (hp("pg01"), hp("pg02"))
FULL = dsn(*TWO_HOSTS, options=(("connect_timeout", "5"),))

VALID: list[tuple[str, str, DsnDefaults, PgDsn]] = [
    ("full", "luna:luna@pg01:5432,pg02:5432/luna_handlers?connect_timeout=5", DEFAULTS, FULL),
    (
        "postgresql-scheme",
        "postgresql://luna:luna@pg01:5432,pg02:5432/luna_handlers?connect_timeout=5",
        DEFAULTS,
        FULL,
    ),
    (
        "postgres-scheme",
        "postgres://luna:luna@pg01:5432,pg02:5432/luna_handlers?connect_timeout=5",
        DEFAULTS,
        FULL,
    ),
    ("scheme-case-insensitive", "PostgreSQL://pg01,pg02", DEFAULTS, dsn(*TWO_HOSTS)),
    ("hosts-and-dbname", "pg01,pg02/luna_handlers", DEFAULTS, dsn(*TWO_HOSTS)),
    ("partial-ports", "pg01:6432,pg02", DEFAULTS, dsn(hp("pg01", 6432), hp("pg02"))),
    ("user-only", "user@pg01/db", DEFAULTS, dsn(hp("pg01"), user="user", dbname="db")),
    ("dbname-only", "/db", DEFAULTS, dsn(dbname="db")),
    ("empty", "", DEFAULTS, dsn()),
    ("scheme-only", "postgresql://", DEFAULTS, dsn()),
    ("query-only", "?connect_timeout=3", DEFAULTS, dsn(options=(("connect_timeout", "3"),))),
    ("slash-no-dbname", "pg01/", DEFAULTS, dsn(hp("pg01"))),
    (
        "slash-then-query",
        "pg01/?sslmode=disable",
        DEFAULTS,
        dsn(hp("pg01"), options=(("sslmode", "disable"),)),
    ),
    ("empty-query", "pg01/db?", DEFAULTS, dsn(hp("pg01"), dbname="db")),
    ("empty-password", "user:@pg01", DEFAULTS, dsn(hp("pg01"), user="user", password="")),
    ("empty-user", ":pw@pg01", DEFAULTS, dsn(hp("pg01"), password="pw")),
    ("empty-userinfo", "@pg01", DEFAULTS, dsn(hp("pg01"))),
    ("userinfo-no-hosts", "u:p@/db", DEFAULTS, dsn(user="u", password="p", dbname="db")),
    ("custom-empty", "", CUSTOM, PgDsn((hp("db.local", 6000),), "svc", "pw", "other", ())),
    (
        "custom-ports",
        "pg01,pg02:7000",
        CUSTOM,
        PgDsn((hp("pg01", 6000), hp("pg02", 7000)), "svc", "pw", "other", ()),
    ),
    ("custom-user", "alice@h", CUSTOM, PgDsn((hp("h", 6000),), "alice", "pw", "other", ())),
    (
        "custom-empty-password",
        "alice:@h",
        CUSTOM,
        PgDsn((hp("h", 6000),), "alice", "", "other", ()),
    ),
    ("custom-dbname", "/x", CUSTOM, PgDsn((hp("db.local", 6000),), "svc", "pw", "x", ())),
    ("ipv6", "[::1]", DEFAULTS, dsn(hp("::1"))),
    ("ipv6-port", "[::1]:5433", DEFAULTS, dsn(hp("::1", 5433))),
    (
        "ipv6-mixed",
        "u:p@[::1],pg02:6000,[2001:db8::5]:7000/db",
        DEFAULTS,
        dsn(
            hp("::1"),
            hp("pg02", 6000),
            hp("2001:db8::5", 7000),
            user="u",
            password="p",
            dbname="db",
        ),
    ),
    (
        "hostname-chars",
        "pg-01.example_net,10.0.0.7:1",
        DEFAULTS,
        dsn(hp("pg-01.example_net"), hp("10.0.0.7", 1)),
    ),
    ("max-port", "h:65535", DEFAULTS, dsn(hp("h", 65535))),
    (
        "percent-encoded",
        "us%40er:p%40ss%3Aw%2Fd%3F@h/my%20db",
        DEFAULTS,
        dsn(hp("h"), user="us@er", password="p@ss:w/d?", dbname="my db"),
    ),
    (
        "percent-encoded-utf8",
        "%D0%B8:%C3%A9@h/%D0%B1%D0%B4",
        DEFAULTS,
        dsn(hp("h"), user="и", password="é", dbname="бд"),
    ),
    (
        "plus-is-literal",
        "u:a+b@h/c+d",
        DEFAULTS,
        dsn(hp("h"), user="u", password="a+b", dbname="c+d"),
    ),
    (
        "raw-at-and-colon",
        "u:p@ss:w@rd@h/db",
        DEFAULTS,
        dsn(hp("h"), user="u", password="p@ss:w@rd", dbname="db"),
    ),
    ("raw-colon-only", "u:a:b:c@h", DEFAULTS, dsn(hp("h"), user="u", password="a:b:c")),
    (
        "all-options-sorted",
        "h?target_session_attrs=prefer-standby&sslmode=verify-full"
        "&application_name=luna%20handlers&connect_timeout=2.5",
        DEFAULTS,
        dsn(
            hp("h"),
            options=(
                ("application_name", "luna handlers"),
                ("connect_timeout", "2.5"),
                ("sslmode", "verify-full"),
                ("target_session_attrs", "prefer-standby"),
            ),
        ),
    ),
    (
        "empty-application-name",
        "h?application_name=",
        DEFAULTS,
        dsn(hp("h"), options=(("application_name", ""),)),
    ),
    (
        "longest-application-name",
        "h?application_name=" + "a" * 63,
        DEFAULTS,
        dsn(hp("h"), options=(("application_name", "a" * 63),)),
    ),
]


@pytest.mark.parametrize(
    ("text", "defaults", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_valid(text: str, defaults: DsnDefaults, expected: PgDsn) -> None:
    parsed = parse_pg_dsn(text, defaults)
    assert parsed == expected
    assert parsed.password == expected.password  # eq covers it; this makes failures readable


def test_default_defaults() -> None:
    assert parse_pg_dsn("") == parse_pg_dsn("", DsnDefaults())


def test_option_order_does_not_matter() -> None:
    a = parse_pg_dsn("h?sslmode=require&connect_timeout=1")
    b = parse_pg_dsn("h?connect_timeout=1&sslmode=require")
    assert a == b
    assert a.options == (("connect_timeout", "1"), ("sslmode", "require"))


TSA: list[tuple[str, str, TargetSessionAttrs]] = [
    ("default-read-write", "h", TargetSessionAttrs.READ_WRITE),
    *[(f"explicit-{m.value}", f"h?target_session_attrs={m.value}", m) for m in TargetSessionAttrs],
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TSA], ids=[c[0] for c in TSA])
def test_target_session_attrs(text: str, expected: TargetSessionAttrs) -> None:
    assert parse_pg_dsn(text).target_session_attrs is expected


TIMEOUTS: list[tuple[str, str, float | None]] = [
    ("absent", "h", None),
    ("integer", "h?connect_timeout=5", 5.0),
    ("decimal", "h?connect_timeout=0.25", 0.25),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in TIMEOUTS], ids=[c[0] for c in TIMEOUTS]
)
def test_connect_timeout(text: str, expected: float | None) -> None:
    assert parse_pg_dsn(text).connect_timeout == expected


def test_option_map() -> None:
    parsed = parse_pg_dsn("h?sslmode=require&application_name=x")
    assert parsed.option_map == {"application_name": "x", "sslmode": "require"}


@pytest.mark.parametrize(
    ("host_port", "expected"),
    [(hp("pg01"), "pg01:5432"), (hp("::1"), "[::1]:5432"), (hp("10.0.0.1", 1), "10.0.0.1:1")],
    ids=["name", "ipv6", "ipv4"],
)
def test_host_port_str(host_port: HostPort, expected: str) -> None:
    assert str(host_port) == expected


def test_public_dict() -> None:
    parsed = parse_pg_dsn(f"luna:{SECRET}@pg01:5432,[::1]:5433/luna_handlers?connect_timeout=5")
    assert parsed.public_dict() == {
        "db_type": "postgres",
        "hosts": [{"host": "pg01", "port": 5432}, {"host": "::1", "port": 5433}],
        "user": "luna",
        "password": "***",
        "dbname": "luna_handlers",
        "options": {"connect_timeout": "5"},
    }


def test_public_dict_empty_password_is_null() -> None:
    assert parse_pg_dsn("luna:@pg01").public_dict()["password"] is None


REDACTED: list[tuple[str, str, str]] = [
    ("defaults", "", "postgresql://luna:***@127.0.0.1:5432/luna_handlers"),
    (
        "full",
        f"postgres://u%40x:{SECRET}@pg01,[::1]:5433/my%20db?sslmode=require&connect_timeout=5",
        "postgresql://u%40x:***@pg01:5432,[::1]:5433/my%20db?connect_timeout=5&sslmode=require",
    ),
    ("empty-password", "u:@h/db", "postgresql://u:@h:5432/db"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in REDACTED], ids=[c[0] for c in REDACTED]
)
def test_redacted(text: str, expected: str) -> None:
    parsed = parse_pg_dsn(text)
    assert parsed.redacted() == expected
    assert str(parsed) == expected


def test_redacted_parses_back() -> None:
    parsed = parse_pg_dsn(f"u:{SECRET}@pg01:6000,[::1]/d%2Fb?application_name=a%26b%3D")
    again = parse_pg_dsn(parsed.redacted())
    assert again == PgDsn(parsed.hosts, parsed.user, "***", parsed.dbname, parsed.options)


INVALID: list[tuple[str, str, int, str]] = [
    ("unknown-scheme", "mysql://u:p@h/db", 0, "unsupported scheme 'mysql'"),
    ("unknown-scheme-http", "http://h", 0, "unsupported scheme 'http'"),
    ("unclosed-bracket", "pg01,[::1:5432/db", 5, "unclosed '['"),
    ("unclosed-bracket-alone", "[", 0, "unclosed '['"),
    ("garbage-after-bracket", "[::1]x", 5, "after ']'"),
    ("garbage-after-bracket-port", "h,[::1]5432", 7, "after ']'"),
    ("empty-brackets", "[]", 1, "invalid IPv6 address"),
    ("bad-ipv6", "[fe80::zz]:5432", 1, "invalid IPv6 address"),
    ("ipv4-in-brackets", "[10.0.0.1]", 1, "invalid IPv6 address"),
    ("empty-host-middle", "a,,b", 2, "empty host name"),
    ("empty-host-first", ",a", 0, "empty host name"),
    ("trailing-comma", "pg01,pg02,/db", 10, "empty host name"),
    ("only-comma", "u@,", 2, "empty host name"),
    ("port-without-host", "pg01,:5432", 5, "empty host name"),
    ("space-in-host", "pg 01", 2, "invalid character ' '"),
    ("semicolon-in-host", "pg01,pg;02", 7, "invalid character ';'"),
    ("bang-in-host", "u:p@h!", 5, "invalid character '!'"),
    ("port-zero", "pg01:0/db", 5, "between 1 and 65535"),
    ("port-65536", "pg01:65536/db", 5, "between 1 and 65535"),
    ("port-huge", "pg01,pg02:99999999999999999999", 10, "between 1 and 65535"),
    ("port-non-numeric", "pg01:abc", 5, "decimal digits"),
    ("port-negative", "pg01:-1", 5, "decimal digits"),
    ("port-mixed", "pg01:54x2", 5, "decimal digits"),
    ("port-unicode-digit", "pg01:\uff15\uff14\uff13\uff12", 5, "decimal digits"),
    ("port-second-colon", "pg01:5432:5433", 5, "decimal digits"),
    ("port-empty", "pg01:/db", 5, "empty port"),
    ("port-empty-ipv6", "[::1]:", 6, "empty port"),
    ("bad-escape-user", "us%zr:pw@h", 2, "bad percent-escape in user"),
    ("bad-escape-user-end", "us%@h", 2, "bad percent-escape in user"),
    ("bad-escape-password", f"u:{SECRET}%G1@h", 10, "bad percent-escape in password"),
    ("bad-escape-password-end", f"u:{SECRET}%4@h", 10, "bad percent-escape in password"),
    ("bad-escape-dbname", "h/db%2", 4, "bad percent-escape in dbname"),
    ("bad-escape-dbname-mid", "h/d%xyb?sslmode=disable", 3, "bad percent-escape in dbname"),
    (
        "bad-escape-option",
        "h?application_name=a%zz",
        20,
        "bad percent-escape in value of application_name",
    ),
    ("bad-utf8-dbname", "h/%FF", 2, "not valid UTF-8"),
    ("nul-dbname", "h/a%00", 2, "NUL character in dbname"),
    ("slash-in-dbname", "h/a/b", 3, "'/' in dbname"),
    ("at-in-dbname", "h/a@b", 3, "'@' after the host list"),
    ("raw-slash-in-password", "u:S3c/r3t!x@h/db", 11, "'@' after the host list"),
    ("raw-question-in-password", "u:S3c?r3t!x@h/db", 11, "'@' after the host list"),
    ("unknown-option", "h?conect_timeout=5", 2, "unknown option 'conect_timeout'"),
    ("unknown-option-case", "h?sslmode=require&SSLMODE=require", 18, "unknown option 'SSLMODE'"),
    ("duplicate-option", "h?connect_timeout=1&connect_timeout=2", 20, "duplicate option"),
    ("duplicate-option-same-value", "h?sslmode=allow&sslmode=allow", 16, "duplicate option"),
    ("option-without-value", "h?sslmode", 9, "has no '=value'"),
    ("empty-option", "h?sslmode=allow&&connect_timeout=1", 16, "empty option"),
    ("trailing-ampersand", "h?sslmode=allow&", 16, "empty option"),
    ("bad-tsa", "h?target_session_attrs=master", 23, "bad value for target_session_attrs"),
    ("bad-tsa-case", "h?target_session_attrs=READ-WRITE", 23, "target_session_attrs"),
    ("timeout-zero", "h?connect_timeout=0", 18, "bad value for connect_timeout"),
    ("timeout-zero-decimal", "h?connect_timeout=0.0", 18, "bad value for connect_timeout"),
    ("timeout-negative", "h?connect_timeout=-1", 18, "bad value for connect_timeout"),
    ("timeout-text", "h?connect_timeout=abc", 18, "bad value for connect_timeout"),
    ("timeout-empty", "h?connect_timeout=", 18, "bad value for connect_timeout"),
    ("timeout-exponent", "h?connect_timeout=1e3", 18, "bad value for connect_timeout"),
    ("timeout-infinite", "h?connect_timeout=" + "9" * 400, 18, "bad value for connect_timeout"),
    ("bad-sslmode", "h?sslmode=on", 10, "bad value for sslmode"),
    ("long-application-name", "h?application_name=" + "a" * 64, 19, "at most 63 characters"),
]


@pytest.mark.parametrize(
    ("text", "position", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid(text: str, position: int, fragment: str) -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn(text)
    err = caught.value
    assert (err.position, fragment in err.message) == (position, True), err.message
    assert str(err) == f"invalid DSN at position {position}: {err.message}"
    assert isinstance(err, ValueError)


def test_unknown_option_lists_accepted() -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn("h?typo=1")
    for name in ACCEPTED_OPTIONS:
        assert name in caught.value.message


BAD_VALUE_NAMES_ALLOWED: list[tuple[str, str, list[str]]] = [
    ("tsa", "h?target_session_attrs=x", [m.value for m in TargetSessionAttrs]),
    (
        "sslmode",
        "h?sslmode=x",
        ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
    ),
    ("timeout", "h?connect_timeout=x", ["positive number of seconds"]),
]


@pytest.mark.parametrize(
    ("text", "allowed"),
    [c[1:] for c in BAD_VALUE_NAMES_ALLOWED],
    ids=[c[0] for c in BAD_VALUE_NAMES_ALLOWED],
)
def test_bad_value_names_allowed_values(text: str, allowed: list[str]) -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn(text)
    for value in allowed:
        assert value in caught.value.message


def test_accepted_options() -> None:
    assert set(ACCEPTED_OPTIONS) == {
        "application_name",
        "connect_timeout",
        "sslmode",
        "target_session_attrs",
    }
    assert all(ACCEPTED_OPTIONS.values())


def test_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(DsnError("port must be decimal digits", 5)))
    assert (err.message, err.position) == ("port must be decimal digits", 5)
    assert str(err) == "invalid DSN at position 5: port must be decimal digits"


SECRET_VALID = [
    f"u:{SECRET}@h/db",
    f"postgresql://u:{quote(SECRET, safe='')}@pg01:5432,[::1]:5433/db?connect_timeout=5",
    f"u:{SECRET}:{SECRET}@{SECRET[:2]}/db",
    f"u:@@{SECRET}@h",
]


@pytest.mark.parametrize("text", SECRET_VALID, ids=range(len(SECRET_VALID)))
def test_password_never_shown(text: str) -> None:
    parsed = parse_pg_dsn(text)
    assert SECRET in parsed.password
    shown = [
        repr(parsed),
        str(parsed),
        parsed.redacted(),
        repr(parsed.public_dict()),
        json.dumps(parsed.public_dict()),
        f"{parsed}",
        f"{parsed!r}",
    ]
    for text_shown in shown:
        assert SECRET not in text_shown


SECRET_INVALID = [
    f"u:{SECRET}%zz@h/db",
    f"u:{SECRET}%@h",
    f"u:%ZZ{SECRET}@h",
    f"u:{SECRET}%FF@h",
    f"u:{SECRET}@h:0",
    f"u:{SECRET}@h,,x",
    f"u:{SECRET}@[::1",
    f"u:{SECRET}@h?bogus=1",
    f"u:{SECRET}@h?connect_timeout=-1",
    f"mysql://u:{SECRET}@h",
    f"u:{SECRET}/x@h/db",
    f"u:{SECRET}?x=1@h/db",
    f"u:5432?{SECRET}=1@h",
    f"u:5432/{SECRET}@h",
    f"u:{SECRET}%00@h",
]


@pytest.mark.parametrize("text", SECRET_INVALID, ids=range(len(SECRET_INVALID)))
def test_password_never_in_errors(text: str) -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn(text)
    err = caught.value
    for shown in (str(err), repr(err), err.message, repr(err.args)):
        assert SECRET not in shown
