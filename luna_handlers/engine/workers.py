"""A bounded pool of worker threads, each owning its own state (the engine's models).

Why threads and not processes: OpenCV's DNN, its resize and Pillow's decoders release the GIL
while they work, so two threads use both cores (bench/engine measures it) without pickling
images and results across processes. Why one state per thread: the OpenCV detector and
networks are not thread-safe.

The queue is bounded: at most ``queue_size`` jobs wait behind the running ones; one more is
refused at once with :class:`~luna_handlers.errors.EngineBusy` (a 503 with ``Retry-After``)
instead of growing a backlog that would only time out later. A job that raises hands its
exception to its caller and the worker takes the next job: a bad image never stops a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from luna_handlers.errors import EngineBusy

S = TypeVar("S")
T = TypeVar("T")

_Job = tuple[Callable[[Any], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class WorkerPool(Generic[S]):
    """``workers`` threads, each with the state ``make_state()`` built in that thread."""

    def __init__(self, make_state: Callable[[], S], *, workers: int, queue_size: int,
                 name: str = "engine") -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("a worker pool needs at least one worker and one queue place")
        self._make_state = make_state
        self._queue_size = queue_size
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
                         for n in range(workers)]
        self._ready = threading.Barrier(workers + 1)
        self._start_errors: list[BaseException] = []
        self._closed = False

    def start(self) -> None:
        """Start the threads and wait until each has built its state (or re-raise its error)."""
        for thread in self._threads:
            thread.start()
        self._ready.wait()
        if self._start_errors:
            self.close()
            raise self._start_errors[0]

    def close(self) -> None:
        """Refuse the waiting jobs (as busy), let the running ones finish, join the threads."""
        self._closed = True
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                _, loop, future = item
                _hand_back(loop, future, (False, EngineBusy(self._queue_size)))
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    async def run(self, job: Callable[[S], T]) -> T:
        """Run ``job(state)`` on a worker and return its result; never blocks the loop.

        Raises :class:`EngineBusy` when ``queue_size`` jobs are already waiting.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._closed:
            raise EngineBusy(self._queue_size)
        try:
            self._jobs.put_nowait((job, loop, future))
        except queue.Full:
            raise EngineBusy(self._queue_size) from None
        return await future

    def _serve(self) -> None:
        state: S | None = None
        try:
            state = self._make_state()
        except BaseException as exc:
            self._start_errors.append(exc)
        self._ready.wait()
        while (item := self._jobs.get()) is not None:
            job, loop, future = item
            if state is None or future.cancelled():
                continue
            try:
                outcome: tuple[bool, Any] = (True, job(state))
            except Exception as exc:
                outcome = (False, exc)
            _hand_back(loop, future, outcome)


def _hand_back(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
               outcome: tuple[bool, Any]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
        loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # the caller was cancelled while the job ran
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
