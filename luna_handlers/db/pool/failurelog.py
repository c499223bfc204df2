"""Why a connection fails, for operators: the driver's words, scrubbed, once per cause.

:func:`scrub` takes secrets out of any driver text (the configured password, credentials in
a URL or a ``password=`` pair); :class:`FailureLog` logs a failure of a host once per cause
(the error's type and code), then again only after :data:`REPEAT_S` seconds, saying how
many were not logged meanwhile, so that a host failing every second fills no disk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from luna_handlers.db.hosts import HostPort

REPEAT_S = 60.0  # the same cause on the same host is logged again after this long
# scheme://user:secret@ and password=secret (libpq keywords, Oracle's connect strings)
_URL_CREDENTIALS = re.compile(r"([a-zA-Z][\w+.-]*://)[^/@\s]*@")
_PASSWORD_PAIR = re.compile(r"(password\s*=\s*)('[^']*'|\"[^\"]*\"|\S+)", re.IGNORECASE)


def scrub(text: str, secret: str = "") -> str:
    """``text`` without ``secret`` and without credentials in URLs or password pairs."""
    if secret:
        text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return _PASSWORD_PAIR.sub(r"\1***", text)


@dataclass
class FailureLog:
    """Logs each (host, stage, cause) once per :data:`REPEAT_S` (``clock`` is for tests)."""

    logger: logging.Logger
    repeat_s: float = REPEAT_S
    clock: Callable[[], float] = time.monotonic
    _last: dict[tuple[str, str, str], tuple[float, int]] = field(default_factory=dict)

    def report(self, level: int, host: HostPort | str, stage: str, cause: str,
               detail: str) -> bool:
        """Log ``stage failed on host: detail`` unless this cause was logged lately; True
        when it was logged now."""
        key = (str(host), stage, cause)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.repeat_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        self._last[key] = (now, 0)
        again = f" ({last[1]} more since {now - last[0]:.0f} s ago)" if last and last[1] else ""
        self.logger.log(level, "database %s failed on %s: %s%s", stage, host, detail, again)
        return True
