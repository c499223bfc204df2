"""Searches at a million rows: an account's own substring index, and an unscoped list
index that carries the description.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

PostgreSQL only (Oracle keeps its indexes, see README):

* ``luna_grams(owner, body)``: every three-character substring of ``body``, each hashed
  together with a bucket of ``owner`` (one of 256) into an ``integer``. A GIN index on
  ``luna_grams(account_id, description)`` finds an account's rows that contain every
  three-character substring of a term. The trigram index of 0004 cannot: its posting lists
  span every account, so a rare phrase in a big account costs as much as one searched in
  the whole table (7.5 ms at a million rows, against 0.3-0.4 ms here, measured on
  ``bench/scale``'s BIG set). The substrings are the text's own, case and all, so a row
  whose description contains the term literally always holds all of the term's: the
  index never misses a row of ``LIKE '%term%'``, and the statement rechecks the LIKE and
  the account for the rows a shared bucket or a hash collision adds. No extension needed.
* The unscoped list index ``INCLUDE (description)``: the walk of a search over every
  account (:func:`luna_handlers.db.pages.page_rows`) filters the newest rows by their
  description, and reads them from the index alone instead of one table page per row
  (2,000 rows: 3.4 ms -> 0.7 ms on BIG). The index by account stays lean: its deep pages
  read 100,000 of its entries (OFFSET), 10 % slower with the description in them, and
  within one account a rare term is the grams index's.

The upgrade evaluates ``luna_grams`` once per row (about 40 microseconds): a minute for a
million handlers, under the lock of ``CREATE INDEX``. Run it with the old service stopped, as
0004 and 0006.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"

TABLES = ("handler", "verifier")

#: Buckets of accounts in the upper 8 bits of a gram, the substring's hash in the lower 24:
#: an account's posting lists hold its own rows and about 1/256 of the others'.
GRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION luna_grams(owner text, body text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(((hashtext(owner) & 255) << 24) | (hashtext(substr(body, i, 3)) & 16777215))
    FROM generate_series(1, length(body) - 2) AS i
$$
"""


def _time_index(table: str, include: list[str]) -> None:
    op.drop_index(f"ix_{table}_time", table)
    op.create_index(f"ix_{table}_time", table, [sa.text("create_time DESC"), f"{table}_id"],
                    postgresql_include=include)


def upgrade() -> None:
    """The grams function and indexes, and the unscoped list indexes with the description."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(GRAMS_FUNCTION)
    for table in TABLES:
        op.execute(f"CREATE INDEX ix_{table}_grams ON {table} "
                   f"USING gin (luna_grams(account_id, description))")
        _time_index(table, ["description"])


def downgrade() -> None:
    """Back to 0006's indexes; the function goes with its indexes."""
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        _time_index(table, [])
        op.execute(f"DROP INDEX ix_{table}_grams")
    op.execute("DROP FUNCTION luna_grams(text, text)")
