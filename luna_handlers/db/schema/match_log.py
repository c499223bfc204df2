"""The list membership log of PostgreSQL (revision 0005): what the matching index of each
service instance reads to catch up with every instance's writes.

Not in the models' metadata: the tables and triggers are PostgreSQL's alone (Oracle has no
matching index, see :mod:`luna_handlers.db.match_index`), so Oracle's DDL and the
models-vs-migrations check leave them out.

* ``list_face_log``: one row per link added or removed (``list_face`` INSERT and DELETE,
  the cascades of a face deletion included) and per link of an updated face, with the
  writer's transaction id (``xid``, the 64-bit ``xid8`` as a bigint). Filled by statement
  triggers, so a Python writer cannot forget it. Links cascading from a list deletion are
  not logged: the list itself is gone, which the index sees.
* ``list_face_log_state``: one row. ``pruned_below``: every log row with a smaller xid is
  deleted, every one at or above it is kept; ``next_horizon`` (a snapshot's xmin) and the
  time it was taken: the next ``pruned_below``, once it is older than the retention.
"""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()

LOG = sa.Table(
    "list_face_log", METADATA,
    sa.Column("xid", sa.BigInteger, nullable=False,
              server_default=sa.text("(pg_current_xact_id()::text::bigint)")),
    sa.Column("list_id", sa.String(36), nullable=False),
    sa.Column("face_id", sa.String(36), nullable=False),
    sa.Index("ix_list_face_log_list_xid", "list_id", "xid"),
)

STATE = sa.Table(
    "list_face_log_state", METADATA,
    sa.Column("one", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("pruned_below", sa.BigInteger, nullable=False),
    sa.Column("next_horizon", sa.BigInteger, nullable=False),
    sa.Column("next_horizon_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.CheckConstraint("one = 1", name="ck_list_face_log_state_one"),
)

#: The xmin of the statement's snapshot: every xid below it had ended when it was taken.
SNAPSHOT_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"

INITIAL_STATE = f"INSERT INTO list_face_log_state VALUES (1, 0, {SNAPSHOT_XMIN}, now())"  # noqa: S608

TRIGGERS = [
    """CREATE FUNCTION list_face_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO list_face_log (list_id, face_id) SELECT list_id, face_id FROM new_links;
    ELSE
        -- a list deleted in this transaction is invisible here: its links need no rows
        INSERT INTO list_face_log (list_id, face_id) SELECT o.list_id, o.face_id
        FROM old_links o WHERE EXISTS (SELECT 1 FROM list l WHERE l.list_id = o.list_id);
    END IF;
    RETURN NULL;
END $$""",
    """CREATE FUNCTION face_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_face_log (list_id, face_id) SELECT lf.list_id, lf.face_id
    FROM list_face lf JOIN new_faces n ON n.face_id = lf.face_id;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER list_face_log_insert AFTER INSERT ON list_face REFERENCING NEW TABLE "
    "AS new_links FOR EACH STATEMENT EXECUTE FUNCTION list_face_logged()",
    "CREATE TRIGGER list_face_log_delete AFTER DELETE ON list_face REFERENCING OLD TABLE "
    "AS old_links FOR EACH STATEMENT EXECUTE FUNCTION list_face_logged()",
    "CREATE TRIGGER face_log_update AFTER UPDATE ON face REFERENCING NEW TABLE "
    "AS new_faces FOR EACH STATEMENT EXECUTE FUNCTION face_logged()",
]

DROP_TRIGGERS = [
    "DROP TRIGGER face_log_update ON face",
    "DROP TRIGGER list_face_log_delete ON list_face",
    "DROP TRIGGER list_face_log_insert ON list_face",
    "DROP FUNCTION face_logged()",
    "DROP FUNCTION list_face_logged()",
]
