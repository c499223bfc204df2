"""The matching index's statements (PostgreSQL): a full load, a delta, the log's pruning.

Each is ONE statement, so everything it reads comes from one snapshot (autocommit, READ
COMMITTED: one statement, one snapshot; behind a transaction pooler, one transaction), and
it returns that snapshot's xmin: the watermark of what the index then holds.

Members are what the SQL path selects: links of the list to faces of the account with a
descriptor of the version. The list's existence (of any account: the faces' account is the
filter, as in SQL) comes along, so that a deleted list's entry is dropped.
"""

from __future__ import annotations

import sqlalchemy as sa

from luna_handlers.db.prepared import Prepared
from luna_handlers.db.schema.match_log import SNAPSHOT_XMIN

_MEMBER = """face f ON f.face_id = lf.face_id AND f.account_id = :account_id
        AND f.descriptor_version = :version"""

#: Every member with its descriptor; one row (face_id NULL) for an empty or missing list.
LOAD = Prepared(lambda _dialect: sa.text(f"""
    SELECT s.xmin, s.listed, lf.face_id, f.external_id, f.descriptor, f.create_time
    FROM (SELECT {SNAPSHOT_XMIN} AS xmin,
                 EXISTS (SELECT 1 FROM list WHERE list_id = :list_id) AS listed) s
    LEFT JOIN (list_face lf JOIN {_MEMBER}) ON s.listed AND lf.list_id = :list_id"""))  # noqa: S608 (constants)

#: The faces whose link to the list changed at or after the watermark ``since``, with what
#: they are now (``descriptor`` NULL: no member); one row (face_id NULL) when none changed.
#: ``pruned_below`` above ``since``: the log lost rows the delta needs, reload instead.
DELTA = Prepared(lambda _dialect: sa.text(f"""
    WITH s AS (SELECT {SNAPSHOT_XMIN} AS xmin,
                      (SELECT pruned_below FROM list_face_log_state) AS pruned_below,
                      EXISTS (SELECT 1 FROM list WHERE list_id = :list_id) AS listed),
         changed AS (SELECT DISTINCT face_id FROM list_face_log
                     WHERE list_id = :list_id AND xid >= :since)
    SELECT s.xmin, s.pruned_below, s.listed, c.face_id, f.external_id, f.descriptor,
           f.create_time
    FROM s
    LEFT JOIN changed c ON s.listed AND s.pruned_below <= :since
    LEFT JOIN list_face lf ON lf.list_id = :list_id AND lf.face_id = c.face_id
    LEFT JOIN {_MEMBER}"""))  # noqa: S608 (constants)

#: Once the recorded horizon is older than the retention: log rows under it go, and the
#: current xmin is the next horizon. Concurrent prunes of several instances: the row lock
#: makes the later one see a fresh horizon and do nothing.
PRUNE = Prepared(lambda _dialect: sa.text(f"""
    WITH due AS (
        UPDATE list_face_log_state SET pruned_below = next_horizon,
            next_horizon = {SNAPSHOT_XMIN}, next_horizon_at = now()
        WHERE next_horizon_at <= now() - make_interval(secs => :retention)
        RETURNING pruned_below),
    gone AS (DELETE FROM list_face_log WHERE xid < (SELECT pruned_below FROM due)
             RETURNING 1)
    SELECT count(*) AS deleted FROM gone"""))  # noqa: S608
