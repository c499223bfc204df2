"""Substring searches at a million rows: indexes of every 3-character substring, one over
every account and one within each account; an unscoped list index that carries the
description.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

PostgreSQL only (Oracle keeps its indexes, see README):

* ``luna_grams(body)``: every three-character substring of ``body``, hashed into an
  ``integer``. A GIN index on ``luna_grams(description)`` finds the rows that contain every
  three-character substring of a term. The substrings are the text's own, case, spaces and
  all, so a row whose description contains the term literally holds all of the term's: the
  index never misses a row of ``LIKE '%term%'``, and the statement rechecks the LIKE for
  what a hash collision lets in. It replaces 0004's ``pg_trgm`` index (dropped here), whose
  trigrams are those of lower-cased words: a phrase like ``north gate`` has none across the
  two words, so its candidates were the rows with both words anywhere (194 for 96 matches)
  and the scan decoded long lists: 5.9-7.5 ms at a million rows against 2.3-2.8 ms here,
  at the same size (40 MB), measured on ``bench/scale``'s BIG set. No extension needed.
* ``luna_grams(owner, body)``: the same substrings, each hashed with a bucket of ``owner``
  (one of 256). Its GIN index on ``luna_grams(account_id, description)`` serves a search
  within one account: a posting list holds the account's rows and about 1/256 of the
  others', so a rare phrase in the 100,000 handlers of one account costs 0.3-0.4 ms instead
  of a scan of the whole table's lists.
* The unscoped list index ``INCLUDE (description)``: the walk of a search over every
  account (:func:`luna_handlers.db.pages.page_rows`) filters the newest rows by their
  description, and reads them from the index alone instead of one table page per row
  (2,000 rows: 3.4 ms -> 0.7 ms on BIG). The index by account stays lean: its deep pages
  read 100,000 of its entries (OFFSET), 10 % slower with the description in them, and
  within one account a rare term is the grams index's.

The upgrade evaluates the functions once per row (about 40 microseconds each): about a
minute per index for a million handlers, under the lock of ``CREATE INDEX``. Run it with
the old service stopped, as 0004 and 0006. The downgrade puts the trigram index back where
``pg_trgm`` is installed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"

TABLES = ("handler", "verifier")

#: The buckets of accounts in the upper 8 bits of a gram, the substring's hash in the lower
#: 24 (a hash collision, like a shared bucket, is only a candidate more).
FUNCTIONS = ("""
CREATE OR REPLACE FUNCTION luna_grams(body text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(hashtext(substr(body, i, 3)))
    FROM generate_series(1, length(body) - 2) AS i
$$
""", """
CREATE OR REPLACE FUNCTION luna_grams(owner text, body text) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(((hashtext(owner) & 255) << 24) | (hashtext(substr(body, i, 3)) & 16777215))
    FROM generate_series(1, length(body) - 2) AS i
$$
""")


def _time_index(table: str, include: list[str]) -> None:
    op.drop_index(f"ix_{table}_time", table)
    op.create_index(f"ix_{table}_time", table, [sa.text("create_time DESC"), f"{table}_id"],
                    postgresql_include=include)


def upgrade() -> None:
    """The grams functions and indexes instead of the trigram index; the unscoped list
    index with the description."""
    if op.get_context().dialect.name != "postgresql":
        return
    for function in FUNCTIONS:
        op.execute(function)
    for table in TABLES:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_description_trgm")
        op.execute(f"CREATE INDEX ix_{table}_grams ON {table} USING gin (luna_grams(description))")
        op.execute(f"CREATE INDEX ix_{table}_account_grams ON {table} "
                   f"USING gin (luna_grams(account_id, description))")
        _time_index(table, ["description"])


def downgrade() -> None:
    """Back to 0006's indexes (the trigram index where ``pg_trgm`` is installed)."""
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        _time_index(table, [])
        op.execute(f"DROP INDEX ix_{table}_account_grams")
        op.execute(f"DROP INDEX ix_{table}_grams")
        op.execute(f"""DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                CREATE INDEX ix_{table}_description_trgm ON {table}
                    USING gin (description gin_trgm_ops);
            END IF;
        END $$""")  # noqa: S608 (the table names are constants)
    op.execute("DROP FUNCTION luna_grams(text, text)")
    op.execute("DROP FUNCTION luna_grams(text)")
