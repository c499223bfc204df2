"""The free places of a pool: first come, first served, one timer bounding every wait."""

from __future__ import annotations

import asyncio
import time

import pytest

from luna_handlers.db.pool.places import Places, PoolBusy


async def test_free_places_are_taken_without_waiting() -> None:
    places = Places(2, timeout=10.0)
    async with asyncio.timeout(0.1):
        await places.take()
        await places.take()
    third = asyncio.create_task(places.take())
    await asyncio.sleep(0.01)
    assert not third.done()
    places.give()
    async with asyncio.timeout(0.1):
        await third


async def test_waiters_are_served_in_arrival_order() -> None:
    places = Places(1, timeout=10.0)
    await places.take()
    served: list[int] = []

    async def wait(number: int) -> None:
        await places.take()
        served.append(number)

    tasks = [asyncio.create_task(wait(number)) for number in range(3)]
    await asyncio.sleep(0.01)
    for _ in tasks:
        places.give()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2]


async def test_each_wait_is_bounded_and_later_waiters_keep_theirs() -> None:
    places = Places(1, timeout=0.2)
    await places.take()
    started = time.monotonic()
    first = asyncio.create_task(places.take())
    await asyncio.sleep(0.1)
    second = asyncio.create_task(places.take())
    with pytest.raises(PoolBusy):
        await first
    assert 0.15 < time.monotonic() - started < 0.5
    assert not second.done()  # its own deadline is 0.1 s later
    places.give()
    async with asyncio.timeout(0.1):
        await second


async def test_a_cancelled_waiter_does_not_hold_a_place() -> None:
    places = Places(1, timeout=10.0)
    await places.take()
    gone = asyncio.create_task(places.take())
    await asyncio.sleep(0.01)
    gone.cancel()
    places.give()  # skips the cancelled waiter: the place stays free
    async with asyncio.timeout(0.1):
        await places.take()


async def test_a_place_handed_to_a_waiter_cancelled_meanwhile_is_passed_on() -> None:
    places = Places(1, timeout=10.0)
    await places.take()
    handed = asyncio.create_task(places.take())
    await asyncio.sleep(0.01)
    places.give()  # handed over...
    handed.cancel()  # ...but the waiter is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await handed
    async with asyncio.timeout(0.1):
        await places.take()
