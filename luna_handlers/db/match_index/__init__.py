"""The in-process matching index of list members (PostgreSQL): :class:`MatchIndex`.

``members`` holds one list's descriptors and scores them (numpy, no SQL); ``statements``
the three statements it runs; ``index`` keeps the lists coherent with the database and
within the memory bound; ``metrics`` its Prometheus series. See ARCHITECTURE.md.
"""

from __future__ import annotations

from luna_handlers.db.match_index.index import RETENTION, MatchIndex

__all__ = ["RETENTION", "MatchIndex"]
