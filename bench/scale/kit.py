"""What wrk's ``scale.lua`` reads for one data set: a sample of ids with their owners, the
normal accounts, the hot account, the words searched for, the span of creation times and
the request body of POST and PUT."""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench.api.data import REQUEST_POLICIES, handler_id
from bench.scale.build import SPAN_S, VOCABULARY, Shape, account_id, account_of

#: Handlers read by GET and replaced by PUT: fewer than the service's cache holds (10,000),
#: so that after one priming pass every GET is a cache hit.
SAMPLE = 5_000
#: Normal accounts listed (at random) by the ``list`` and ``post`` cases.
ACCOUNTS_SAMPLE = 2_000


def sample(shape: Shape) -> list[tuple[str, str]]:
    """The (id, owner) pairs of the GET and PUT cases: the same ones on every run."""
    numbers = random.Random(shape.handlers).sample(range(1, shape.handlers + 1), SAMPLE)
    return [(handler_id(n), account_id(account_of(shape, n))) for n in numbers]


def write_kit(kit: Path, shape: Shape, built_at: float) -> None:
    """Write the kit of ``shape`` into ``kit``; ``built_at`` is the build's unix time (the
    newest creation time)."""
    kit.mkdir(parents=True, exist_ok=True)
    (kit / "ids.txt").write_text("".join(f"{hid} {owner}\n" for hid, owner in sample(shape)))
    normal = random.Random(shape.accounts).sample(
        range(1, shape.accounts), min(ACCOUNTS_SAMPLE, shape.accounts - 1))
    (kit / "accounts.txt").write_text("".join(f"{account_id(k)}\n" for k in normal))
    (kit / "hot.txt").write_text(account_id(0) + "\n")
    # Single words (each in ~1.7% of descriptions) and two-word phrases (~0.01%): frequent
    # terms end a page early, rare ones make the scan read everything.
    rng = random.Random(0)
    phrases = [f"{rng.choice(VOCABULARY)}%20{rng.choice(VOCABULARY)}" for _ in VOCABULARY]
    (kit / "words.txt").write_text("".join(f"{term}\n" for term in (*VOCABULARY, *phrases)))
    (kit / "span.txt").write_text(f"{int(built_at) - SPAN_S}\n{int(built_at)}\n")
    (kit / "body.json").write_text(
        json.dumps({"description": "scale bench", "policies": REQUEST_POLICIES}))
