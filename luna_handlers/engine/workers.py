"""A bounded pool of worker processes, each owning its own state (the engine's models).

Why processes and not threads: measured with OpenCV 5.0 (bench/engine), two threads with a
detector each ran YuNet no faster than one thread (16 detections/s either way), and the whole
decode + detect + extract loop went from 18.6 images/s with one thread down to 11 with two,
while two processes made 1.6x one process. Why one state per worker: the OpenCV detector and
networks are not thread-safe, and a process has nothing to share anyway.

The queue is bounded: at most ``queue_size`` jobs wait behind the ``workers`` running ones;
one more is refused at once with :class:`~luna_handlers.errors.EngineBusy` (a 503 with
``Retry-After``) instead of growing a backlog that would only time out later. A job that
raises hands its exception to its caller and the worker takes the next job; a worker process
that dies (a crash inside a native decoder) fails the jobs it had with ``InternalError`` and
the pool is rebuilt, so it never stays stuck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from luna_handlers.errors import EngineBusy, InternalError, LunaError

S = TypeVar("S")
T = TypeVar("T")

#: The state of this worker process, built once by :func:`_initialise`, or why it was not.
_state: Any = None
_state_error: Exception | None = None


def _initialise(make_state: Callable[[], Any]) -> None:
    global _state, _state_error  # noqa: PLW0603 - one state per worker process, by design
    try:
        _state = make_state()
    except Exception as exc:  # every job of this worker reports it (start() sees it first)
        _state_error = exc


def _call(job: Callable[[Any], Any]) -> tuple[bool, Any]:
    # A LunaError goes back as its class and attributes: its constructor takes other
    # arguments than its message, so pickling it as an exception would not rebuild it.
    try:
        if _state_error is not None:
            raise _state_error
        return True, job(_state)
    except LunaError as exc:
        return False, (type(exc), dict(vars(exc)))


def _rebuild(cls: type[LunaError], attributes: dict[str, Any]) -> LunaError:
    error = cls.__new__(cls)
    Exception.__init__(error, attributes["detail"])
    vars(error).update(attributes)
    return error


def _worker_pid(_state_value: Any) -> int:
    # Holds its worker a moment so that the other warm-up jobs go to the other workers.
    time.sleep(0.05)
    return os.getpid()


class WorkerPool(Generic[S]):
    """``workers`` processes, each with the state ``make_state()`` built in that process.

    ``make_state`` and every job must be picklable (module-level functions or
    ``functools.partial`` of them): they are sent to the worker processes.
    """

    def __init__(self, make_state: Callable[[], S], *, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("a worker pool needs at least one worker and one queue place")
        self._make_state = make_state
        self._workers = workers
        self._queue_size = queue_size
        self._pending = 0
        self._executor: ProcessPoolExecutor | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent has threads (the event loop's, the DB pool's) and
        # OpenCV's thread pool, which a forked child would inherit in an unknown state.
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_initialise, initargs=(self._make_state,))

    def start(self) -> None:
        """Start the processes and wait until every one has built its state and answered.

        A state that cannot be built makes this raise the error of building it.
        """
        executor = self._new_executor()
        self._executor = executor
        seen: set[int] = set()
        try:
            while len(seen) < self._workers:
                batch = [executor.submit(_call, _worker_pid) for _ in range(self._workers)]
                for done in batch:
                    ok, value = done.result()
                    if not ok:
                        raise _rebuild(*value)
                    seen.add(value)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Refuse new jobs and those still waiting in the pool (as busy), let the running
        ones finish (and the one per worker the executor already handed over), stop."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    async def run(self, job: Callable[[S], T]) -> T:
        """Run ``job(state)`` in a worker and return its result; never blocks the loop.

        Raises :class:`EngineBusy` when ``queue_size`` jobs are already waiting.
        """
        executor = self._executor
        if executor is None or self._pending >= self._workers + self._queue_size:
            raise EngineBusy(self._queue_size)
        self._pending += 1
        try:
            future: Future[tuple[bool, Any]] = executor.submit(_call, job)
        except RuntimeError:  # shut down meanwhile
            self._pending -= 1
            raise EngineBusy(self._queue_size) from None
        try:
            ok, value = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace(executor)
            raise InternalError(
                "a face engine worker process died; the pool was restarted") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                raise EngineBusy(self._queue_size) from None  # refused by close()
            future.cancel()
            raise
        finally:
            self._pending -= 1
        if not ok:
            raise _rebuild(*value)
        result: T = value
        return result

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:
            self._executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)
