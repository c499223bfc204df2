"""The bounded pool: busy when full, errors go to their caller, the loop never waits."""

from __future__ import annotations

import asyncio
import threading

import pytest

from luna_handlers.engine.workers import WorkerPool
from luna_handlers.errors import EngineBusy


def make_pool(workers: int = 1, queue_size: int = 1) -> WorkerPool[dict[str, int]]:
    pool: WorkerPool[dict[str, int]] = WorkerPool(
        lambda: {"thread": threading.get_ident()}, workers=workers, queue_size=queue_size)
    pool.start()
    return pool


async def test_full_queue_is_busy_and_clears() -> None:
    pool = make_pool(workers=1, queue_size=1)
    started, release = threading.Event(), threading.Event()

    def blocking(_state: dict[str, int]) -> str:
        started.set()
        release.wait()
        return "done"

    try:
        running = asyncio.ensure_future(pool.run(blocking))
        await asyncio.to_thread(started.wait)
        waiting = asyncio.ensure_future(pool.run(lambda _state: "queued"))
        await asyncio.sleep(0)
        with pytest.raises(EngineBusy) as caught:
            await pool.run(lambda _state: "refused")
        assert (caught.value.status, caught.value.code, caught.value.retry_after) == (503, 35001,
                                                                                      1)
        release.set()
        assert (await running, await waiting) == ("done", "queued")
        assert await pool.run(lambda _state: "again") == "again"
    finally:
        release.set()
        pool.close()


async def test_errors_reach_the_caller_and_the_worker_goes_on() -> None:
    pool = make_pool(workers=2, queue_size=8)

    def fails(_state: dict[str, int]) -> None:
        raise ValueError("bad input")

    try:
        results = await asyncio.gather(*(pool.run(fails) for _ in range(6)),
                                       return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await pool.run(lambda state: state["thread"]) != threading.get_ident()
    finally:
        pool.close()


async def test_jobs_run_off_the_event_loop() -> None:
    """The job waits for something only the loop does after the job started: were it run
    on the loop, this would never finish."""
    pool = make_pool()
    loop_did_it = threading.Event()

    def waits_for_the_loop(state: dict[str, int]) -> int:
        assert loop_did_it.wait(timeout=30)
        return state["thread"]

    try:
        job = asyncio.ensure_future(pool.run(waits_for_the_loop))
        await asyncio.sleep(0.01)
        loop_did_it.set()
        assert await job != threading.get_ident()
    finally:
        pool.close()


async def test_each_worker_has_its_own_state() -> None:
    pool = make_pool(workers=2, queue_size=4)
    barrier = threading.Barrier(2)

    def meet(state: dict[str, int]) -> int:
        barrier.wait(timeout=30)  # both jobs run at once, so on two different workers
        return state["thread"]

    try:
        first, second = await asyncio.gather(pool.run(meet), pool.run(meet))
        assert first != second
    finally:
        pool.close()


async def test_close_refuses_waiting_and_new_jobs() -> None:
    pool = make_pool(workers=1, queue_size=2)
    started, release = threading.Event(), threading.Event()

    def blocking(_state: dict[str, int]) -> str:
        started.set()
        release.wait()
        return "finished"

    running = asyncio.ensure_future(pool.run(blocking))
    await asyncio.to_thread(started.wait)
    waiting = asyncio.ensure_future(pool.run(lambda _state: "never"))
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(asyncio.to_thread(pool.close))
    await asyncio.sleep(0.01)
    release.set()
    await closing
    assert await running == "finished"
    with pytest.raises(EngineBusy):
        await waiting
    with pytest.raises(EngineBusy):
        await pool.run(lambda _state: "late")


def test_a_state_that_cannot_be_built_fails_start() -> None:
    def broken() -> dict[str, int]:
        raise OSError("no models")

    pool: WorkerPool[dict[str, int]] = WorkerPool(broken, workers=2, queue_size=1)
    with pytest.raises(OSError, match="no models"):
        pool.start()
