"""The two data sets of the scale bench, built inside PostgreSQL with ``generate_series``.

Both have the same shape, only the size differs, so a request costs the same work per row
in each and the ratio shows what grows with the data:

* every 10th handler belongs to the hot account (``account_no`` 0), the others spread
  round-robin over the remaining accounts (~90 handlers each in both sets);
* one in 20 is dynamic (no policies); the others carry one of three realistic policy sets,
  stored as the service stores them;
* descriptions are two words of :data:`VOCABULARY` (drawn uniformly by a hash of the
  row number) and a number (``"north gate 17"``);
* creation times spread evenly over two years, in groups of 20 sharing one instant, so that
  pages meet ties on ``create_time`` (the hot account has two handlers per instant).

Ids are md5-derived (:func:`bench.api.data.handler_id`), so Python knows them without
reading the table. Indexes are dropped during the insert and rebuilt from their own
definitions (the migration's), which is several times faster than maintaining them row by row.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from bench.api.data import REQUEST_POLICIES, handler_id, migrate, sql_uuid
from luna_handlers.app.policies import HANDLER_RENDERING, parse_handler_body
from luna_handlers.db.schema.models import HANDLER_COUNT_BACKFILL

#: Words of the descriptions (a substring search looks for one of them).
VOCABULARY = (
    "north", "south", "east", "west", "main", "back", "side", "upper", "lower", "inner",
    "outer", "front", "gate", "door", "lobby", "hall", "parking", "garage", "entrance", "exit",
    "turnstile", "elevator", "stairs", "corridor", "office", "warehouse", "dock", "yard",
    "roof", "basement", "checkpoint", "reception", "cafeteria", "kiosk", "atm", "cashier",
    "platform", "terminal", "airport", "station", "metro", "bus", "tram", "store", "mall",
    "bank", "hotel", "school", "campus", "stadium", "arena", "museum", "clinic", "hospital",
    "pharmacy", "factory", "plant", "lab", "server", "vault", "camera", "panel", "tablet",
    "kiosk2", "mobile", "visitor", "staff", "guest", "vip", "contractor", "courier", "driver",
    "patient", "student", "employee", "security", "access", "enroll", "verify", "identify",
    "watchlist", "blacklist", "whitelist", "liveness", "quality", "attributes", "masks",
    "events", "archive", "test", "staging", "pilot", "demo", "night", "day", "shift", "zone",
    "sector", "block", "tower", "wing", "level", "floor", "room", "suite", "bay", "lane",
)

#: Three policy sets a platform might send: the full one of bench/api, detection only, and
#: two match lists with no storage.
REQUEST_VARIANTS: tuple[dict[str, Any], ...] = (
    REQUEST_POLICIES,
    {"detect_policy": {"detect_face": 1, "estimate_quality": 1},
     "storage_policy": {"face_sample_policy": {"store_sample": 0}}},
    {"detect_policy": {"detect_face": 1, "estimate_mask": 1},
     "extract_policy": {"extract_face_descriptor": 1},
     "match_policy": [
         {"candidates": {"origin": "faces", "list_id": "11111111-2222-4333-a444-555555555555"},
          "limit": 5, "threshold": 0.75, "label": "staff"},
         {"candidates": {"origin": "events", "list_id": "66666666-7777-4888-a999-000000000000"},
          "limit": 1, "threshold": 0.9, "label": "repeat"}],
     "storage_policy": {"face_sample_policy": {"store_sample": 0},
                        "event_policy": {"store_event": 0}}},
)

#: Seconds the creation times span, for both sets.
SPAN_S = 2 * 365 * 24 * 3600
#: Handlers sharing one creation instant.
TIE_GROUP = 20
#: Every HOT_EVERY-th handler belongs to the hot account.
HOT_EVERY = 10


@dataclass(frozen=True)
class Shape:
    """A data set: ``handlers`` rows over ``accounts`` accounts, account 0 the hot one."""

    name: str
    handlers: int
    accounts: int

    @property
    def hot_handlers(self) -> int:
        """Handlers of the hot account."""
        return self.handlers // HOT_EVERY

    @property
    def dbname(self) -> str:
        """The database holding this set."""
        return f"luna_scale_{self.name}"


SMALL = Shape("small", 10_000, 100)
BIG = Shape("big", 1_000_000, 10_000)


def account_id(account_no: int) -> str:
    """The id of account ``account_no`` (0 is the hot one)."""
    return handler_id(-account_no - 1)


def account_of(shape: Shape, n: int) -> int:
    """The account number of handler ``n`` (SQL: :func:`_insert`)."""
    return 0 if n % HOT_EVERY == 0 else 1 + n % (shape.accounts - 1)


def stored_variants() -> list[str]:
    """The policy variants as stored (the service's JSON text of the parsed policies)."""
    stored = [parse_handler_body({"policies": p}).policies for p in REQUEST_VARIANTS]
    return [orjson.dumps(p).decode() for p in stored]


def rendered_variants() -> list[str]:
    """The renderings the service's writes store beside :func:`stored_variants`."""
    rendered = [parse_handler_body({"policies": p}).rendered for p in REQUEST_VARIANTS]
    return [r.json for r in rendered if r is not None]


def _insert(shape: Shape) -> str:
    step = SPAN_S * TIE_GROUP / shape.handlers
    account_no = (f"CASE WHEN n % {HOT_EVERY} = 0 THEN 0 "
                  f"ELSE 1 + n % {shape.accounts - 1} END")
    words = len(VOCABULARY)
    # Every value is a number this module computed, never input: plain formatting is safe.
    return f"""
        INSERT INTO handler (handler_id, account_id, create_time, last_update_time,
                             description, policies, is_dynamic, rendered_policies,
                             rendered_with)
        SELECT {sql_uuid("md5(n::text)")},
               {sql_uuid(f"md5((-({account_no}) - 1)::text)")},
               t, t,
               ($1::text[])[1 + abs(hashint4(n)::bigint) % {words}] || ' '
                   || ($1::text[])[1 + abs(hashint4(n)::bigint) / {words} % {words}] || ' '
                   || (n % 50)::text,
               CASE WHEN n % 20 = 7 THEN NULL ELSE ($2::text[])[1 + n % 3] END,
               n % 20 = 7,
               CASE WHEN n % 20 = 7 THEN NULL ELSE ($3::text[])[1 + n % 3] END,
               CASE WHEN n % 20 = 7 THEN NULL ELSE $4 END
        FROM generate_series(1, {shape.handlers}) AS n,
             LATERAL (SELECT (now() AT TIME ZONE 'utc') - interval '{SPAN_S} seconds'
                      + (n / {TIE_GROUP}) * interval '{step} seconds' AS t) AS at
    """


async def build(dsn: str, shape: Shape) -> float:
    """Migrate the empty database at ``dsn`` and fill it with ``shape``; seconds taken."""
    began = time.monotonic()
    await migrate(dsn)
    conn = await asyncpg.connect(dsn, command_timeout=3600)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'handler'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'handler'::regclass)")
        keys = await conn.fetch("SELECT conname, pg_get_constraintdef(oid) AS def"
                                " FROM pg_constraint WHERE conrelid = 'handler'::regclass"
                                " AND contype = 'p'")
        async with conn.transaction():
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            for key in keys:
                await conn.execute(f'ALTER TABLE handler DROP CONSTRAINT "{key["conname"]}"')
            await conn.execute(_insert(shape), list(VOCABULARY), stored_variants(),
                               rendered_variants(), HANDLER_RENDERING)
            # Written around the service: the counter is filled as the migration fills it.
            await conn.execute("TRUNCATE handler_count")
            await conn.execute(HANDLER_COUNT_BACKFILL)
            for key in keys:
                await conn.execute(
                    f'ALTER TABLE handler ADD CONSTRAINT "{key["conname"]}" {key["def"]}')
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE handler")
        await conn.execute("VACUUM ANALYZE handler_count")
    finally:
        await conn.close()
    return time.monotonic() - began


def build_sync(dsn: str, shape: Shape) -> float:
    """:func:`build` from synchronous code."""
    return asyncio.run(build(dsn, shape))
