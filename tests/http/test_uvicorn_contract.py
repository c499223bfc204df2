"""luna_handlers/http/protocol.py subclasses uvicorn's httptools protocol and relies on how
these methods behave (what they set, when they call back, which transport methods a request
cycle uses). A uvicorn release that changes any of them fails here: read the new code,
adapt protocol.py, then update the digests (and the pin in pyproject.toml)."""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: The version range pyproject.toml allows.
PINNED = "0.54."
RELIED_ON = [
    ("HttpToolsProtocol.__init__", "4f08999410347141"),
    ("HttpToolsProtocol.connection_made", "6efb565ff3d36b91"),
    ("HttpToolsProtocol.connection_lost", "c91a4c9bf2e29c55"),
    # replaced whole by protocol.py's data_received (a copy with our refusals)
    ("HttpToolsProtocol.data_received", "010a7ae59a5d3b1a"),
    ("HttpToolsProtocol.on_message_begin", "96d377fdc7c2baef"),
    ("HttpToolsProtocol.on_url", "37be44e962b04ca8"),
    ("HttpToolsProtocol.on_header", "65d62c044f61fdbd"),
    ("HttpToolsProtocol.on_headers_complete", "1ea8589acfad92d8"),
    ("HttpToolsProtocol.on_message_complete", "1fbad42dc31fc01f"),
    ("HttpToolsProtocol.on_response_complete", "64e254f28e389e76"),
    ("HttpToolsProtocol.shutdown", "d7351fa33f00d430"),
    ("HttpToolsProtocol._unset_keepalive_if_required", "00a6a4e47214e68e"),
    ("HttpToolsProtocol._should_upgrade", "8fcad1ab8e096739"),
    ("HttpToolsProtocol._unsupported_upgrade_warning", "55bbd2762b189d9a"),
    # the cycle uses only write, close and is_closing of its transport (_CycleTransport)
    ("RequestResponseCycle.__init__", "4d2f220910c33c12"),
    ("RequestResponseCycle.send", "abdd8601b326a8da"),
    ("RequestResponseCycle.receive", "8124ae006be71184"),
    ("RequestResponseCycle.run_asgi", "0f33f2449a444bc2"),
]
_CLASSES = {"HttpToolsProtocol": HttpToolsProtocol, "RequestResponseCycle": RequestResponseCycle}


def test_uvicorn_is_the_pinned_version() -> None:
    assert version("uvicorn").startswith(PINNED)


@pytest.mark.parametrize(("name", "digest"), RELIED_ON, ids=[name for name, _ in RELIED_ON])
def test_relied_on_uvicorn_code_is_unchanged(name: str, digest: str) -> None:
    cls_name, _, method = name.partition(".")
    source = inspect.getsource(getattr(_CLASSES[cls_name], method))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest
