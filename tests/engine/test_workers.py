"""The bounded process pool: busy when full, errors reach their caller, a dead worker is
replaced, the loop never waits. Jobs signal through files: they run in other processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from luna_handlers.engine.workers import WorkerPool
from luna_handlers.errors import BadImage, EngineBusy, InternalError

State = dict[str, int]


def make_state() -> State:
    return {"pid": os.getpid()}


def broken_state() -> State:
    raise OSError("no models")


def pid_of(state: State) -> int:
    return state["pid"]


def wait_for(started: Path, release: Path, state: State) -> int:
    """Write the worker's pid to ``started``, then wait until ``release`` exists; the pid."""
    partial_file = started.with_name(started.name + ".part")  # seen whole or not at all
    partial_file.write_text(str(state["pid"]))
    partial_file.replace(started)
    _poll(release)
    return state["pid"]


def bad_image(_state: State) -> None:
    raise BadImage("not really an image")


def dies(_state: State) -> None:
    os._exit(3)


def echo(data: bytes, _state: State) -> bytes:
    return data


def touch(path: Path, _state: State) -> None:
    path.touch()


def _poll(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


async def until_exists(path: Path) -> None:
    await asyncio.to_thread(_poll, path)


def _until_gone(pid: int) -> None:
    """Until the child ``pid`` has exited, all its threads too (not reaped: WNOWAIT); its
    sockets are closed by then. A zombie leader alone is not enough: OpenBLAS's threads may
    still hold the process's files."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@contextmanager
def own_pool(*, queue_size: int = 1) -> Iterator[WorkerPool[State]]:
    """A started pool of one worker for one test (its worker is killed or blocked)."""
    own: WorkerPool[State] = WorkerPool(make_state, workers=1, queue_size=queue_size)
    own.start()
    try:
        yield own
    finally:
        own.close()


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool[State]]:
    shared: WorkerPool[State] = WorkerPool(make_state, workers=2, queue_size=1)
    shared.start()
    yield shared
    shared.close()


async def test_full_queue_is_busy_and_clears(pool: WorkerPool[State], tmp_path: Path) -> None:
    release = tmp_path / "release"
    jobs = [asyncio.ensure_future(pool.run(partial(wait_for, tmp_path / f"s{n}", release)))
            for n in range(3)]  # two running, one waiting: the pool is full
    await until_exists(tmp_path / "s0")
    with pytest.raises(EngineBusy) as caught:
        await pool.run(pid_of)
    assert (caught.value.status, caught.value.code, caught.value.retry_after) == (503, 35001, 1)
    release.touch()
    pids = await asyncio.gather(*jobs)
    assert os.getpid() not in pids
    assert len(set(pids)) == 2  # two running at once: each on its own worker process
    assert await pool.run(pid_of) in pids


async def test_errors_reach_the_caller_intact(pool: WorkerPool[State]) -> None:
    results = await asyncio.gather(*(pool.run(bad_image) for _ in range(3)),
                                   return_exceptions=True)
    for result in results:
        assert isinstance(result, BadImage)
        assert result.detail == "Failed to decode image: not really an image"
    assert await pool.run(pid_of) != os.getpid()


async def test_jobs_run_off_the_event_loop(pool: WorkerPool[State], tmp_path: Path) -> None:
    """The job waits for a file that only the loop writes after the job started."""
    job = asyncio.ensure_future(pool.run(partial(wait_for, tmp_path / "s", tmp_path / "go")))
    await until_exists(tmp_path / "s")
    (tmp_path / "go").touch()
    assert await job != os.getpid()


async def test_a_dead_worker_is_replaced() -> None:
    with own_pool() as own:
        with pytest.raises(InternalError, match="worker process died"):
            await own.run(dies)
        assert await own.run(pid_of) != os.getpid()


async def test_the_next_job_of_a_dead_worker_runs_on_its_successor() -> None:
    with own_pool() as own:
        # Both are handed to the one worker at once: it dies in the first, the second was
        # never started and must not fail with it.
        dead, after = await asyncio.gather(own.run(dies), own.run(pid_of),
                                           return_exceptions=True)
        assert isinstance(dead, InternalError)
        assert isinstance(after, int) and after != os.getpid()


async def test_a_worker_dead_while_idle_costs_no_job() -> None:
    with own_pool() as own:
        dead = await own.run(pid_of)
        os.kill(dead, signal.SIGKILL)
        await asyncio.to_thread(_until_gone, dead)
        assert await own.run(pid_of) not in (dead, os.getpid())


async def test_a_running_job_outlives_a_sigterm_of_its_worker(pool: WorkerPool[State],
                                                              tmp_path: Path) -> None:
    """A stop of the whole process group is the parent's to carry out: the worker keeps
    on with its job (the parent's graceful stop closes it later)."""
    job = asyncio.ensure_future(pool.run(partial(wait_for, tmp_path / "s", tmp_path / "go")))
    await until_exists(tmp_path / "s")
    worker = int((tmp_path / "s").read_text())
    os.kill(worker, signal.SIGTERM)
    (tmp_path / "go").touch()
    assert await job == worker
    assert await pool.run(pid_of) != os.getpid()


async def test_jobs_and_answers_larger_than_a_socket_buffer(pool: WorkerPool[State]) -> None:
    data = os.urandom(8 * 1024 * 1024)
    answers = await asyncio.gather(*(pool.run(partial(echo, data)) for _ in range(3)))
    assert all(answer == data for answer in answers)


async def test_a_cancelled_waiting_job_is_dropped(tmp_path: Path) -> None:
    with own_pool(queue_size=2) as own:
        release = tmp_path / "release"
        running = asyncio.ensure_future(own.run(partial(wait_for, tmp_path / "s", release)))
        held = asyncio.ensure_future(own.run(pid_of))  # the worker's next job (DEPTH)
        await until_exists(tmp_path / "s")
        cancelled = asyncio.ensure_future(own.run(partial(touch, tmp_path / "ran")))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.touch()
        await asyncio.gather(running, held)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await own.run(pid_of)  # sent after the cancelled one would have been answered
        assert not (tmp_path / "ran").exists()


async def test_closed_pool_refuses(tmp_path: Path) -> None:
    own: WorkerPool[State] = WorkerPool(make_state, workers=1, queue_size=4)
    own.start()
    release = tmp_path / "release"
    running = asyncio.ensure_future(own.run(partial(wait_for, tmp_path / "s", release)))
    await until_exists(tmp_path / "s")
    waiting = [asyncio.ensure_future(own.run(pid_of)) for _ in range(4)]
    await asyncio.sleep(0.05)
    closing = asyncio.ensure_future(asyncio.to_thread(own.close))
    await asyncio.sleep(0.05)
    release.touch()
    await closing
    assert await running != os.getpid()
    # The worker already holds the job after the running one (DEPTH): it still runs. The
    # jobs only waiting in the pool are refused.
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(results[0], int)
    assert all(isinstance(result, EngineBusy) for result in results[1:])
    with pytest.raises(EngineBusy):
        await own.run(pid_of)


async def test_close_on_the_loop_itself_still_answers_the_running(tmp_path: Path) -> None:
    """close() called on the loop's thread blocks it: the answers are read by close()."""
    own: WorkerPool[State] = WorkerPool(make_state, workers=1, queue_size=2)
    own.start()
    release = tmp_path / "release"
    running = asyncio.ensure_future(own.run(partial(wait_for, tmp_path / "s", release)))
    held, waiting = (asyncio.ensure_future(own.run(pid_of)) for _ in range(2))
    await until_exists(tmp_path / "s")
    release.touch()
    own.close()
    assert await running != os.getpid()
    assert await held != os.getpid()
    with pytest.raises(EngineBusy):
        await waiting


def test_a_state_that_cannot_be_built_fails_start() -> None:
    own: WorkerPool[State] = WorkerPool(broken_state, workers=1, queue_size=1)
    with pytest.raises(OSError, match="no models"):
        own.start()
