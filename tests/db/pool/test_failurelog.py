"""Failure logging: secrets scrubbed from driver text (table-driven), once per cause and host."""

from __future__ import annotations

import logging

import pytest

from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.failurelog import FailureLog, scrub

SECRET = "Sup3r-S3cret"


@pytest.mark.parametrize(("text", "expected"), [
    ("password authentication failed for user \"luna\"",
     "password authentication failed for user \"luna\""),
    (f"bad login with {SECRET} in it", "bad login with *** in it"),
    ("cannot reach postgresql://luna:hunter2@pg01:5432/db",
     "cannot reach postgresql://***@pg01:5432/db"),
    ("dsn postgres://luna@pg01/db", "dsn postgres://***@pg01/db"),
    ("host=pg01 password=hunter2 dbname=x", "host=pg01 password=*** dbname=x"),
    ("PASSWORD = 'two words'", "PASSWORD = ***"),
    ('password="quoted one" user=x', "password=*** user=x"),
    ("postgresql://pg01:5432/db, no credentials", "postgresql://pg01:5432/db, no credentials"),
], ids=["no-secret", "configured-secret", "url-user-password", "url-user", "keyword-pair",
        "single-quoted", "double-quoted", "url-without-credentials"])
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text, SECRET) == expected


def test_once_per_cause_and_host_then_again_with_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = FailureLog(logging.getLogger("test.failurelog"), repeat_s=60.0, clock=lambda: now[0])
    a, b = HostPort("pg01", 5432), HostPort("pg02", 5432)
    with caplog.at_level(logging.WARNING, "test.failurelog"):
        assert log.report(logging.WARNING, a, "connect", "OSError", "refused")
        assert not log.report(logging.WARNING, a, "connect", "OSError", "refused")
        assert log.report(logging.WARNING, b, "connect", "OSError", "refused")  # another host
        assert log.report(logging.WARNING, a, "connect", "X 28P01", "auth")  # another cause
        assert log.report(logging.WARNING, a, "probe", "OSError", "refused")  # another stage
        now[0] = 59.0
        assert not log.report(logging.WARNING, a, "connect", "OSError", "refused")
        now[0] = 61.0
        assert log.report(logging.WARNING, a, "connect", "OSError", "refused")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "database connect failed on pg01:5432: refused"
    assert messages[-1] == "database connect failed on pg01:5432: refused (2 more since 61 s ago)"
    assert len(messages) == 5
