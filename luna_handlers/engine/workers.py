"""A bounded pool of worker processes, each owning its own state (the engine's models).

Why processes: with OpenCV 5.0 (bench/engine) two threads with a detector each ran no faster
than one, and the decode + detect + extract loop fell from 18.6 images/s with one thread to
11 with two, while two processes made 1.6x one. One state per worker: the OpenCV objects are
not thread-safe, and a process has nothing to share anyway.

Why not ``ProcessPoolExecutor``: its jobs and results pass through two parent threads (queue
manager, feeder) and ``call_soon_threadsafe``, GIL hand-offs that wait for a core on a busy
machine and cost the parent ~0.8 ms of CPU an image. Here the event loop writes a job to a
worker's socket and reads the answer when it is readable (``add_reader``). Each worker holds
its next job while it runs one (:data:`DEPTH`): it never waits for the loop between jobs.

At most ``queue_size`` jobs wait behind the ``workers`` running ones; one more is refused at
once with :class:`~luna_handlers.errors.EngineBusy` (503, ``Retry-After``) instead of growing
a backlog that would time out later. A job's exception reaches its caller. A worker process
that dies (a crash in a native decoder) fails the job it ran with ``InternalError``, its next
job goes back to the head of the queue and a new worker takes its place: never stuck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

from luna_handlers.engine.worker_process import (
    job_frame,
    pid,
    read_frame,
    result_of,
    serve,
    take_frame,
)
from luna_handlers.errors import EngineBusy, InternalError

S = TypeVar("S")
T = TypeVar("T")

#: Jobs a worker holds at once: the one it runs and the one it starts next.
DEPTH = 2
#: Seconds a stopping worker gets to exit once its socket is closed, before it is killed.
STOP_TIMEOUT = 10.0
# spawn, not fork: the parent has threads (the event loop's, the DB pool's) and OpenCV's
# thread pool, which a forked child would inherit in an unknown state.
_SPAWN = multiprocessing.get_context("spawn")

#: A job as sent: its caller's future (it gets the answer frame) and its frame.
_Job = tuple["asyncio.Future[bytes]", bytes]


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    sock: socket.socket
    jobs: deque[_Job] = field(default_factory=deque)  # sent, in the order they are answered
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)  # what the socket did not take yet
    since: float = 0.0  # time.monotonic() when it began the job it runs


def _died() -> InternalError:
    return InternalError("a face engine worker process died; it was replaced")


class WorkerPool(Generic[S]):
    """``workers`` processes, each with the state ``make_state()`` built in that process.

    ``make_state`` and every job must be picklable (module-level functions or
    ``functools.partial`` of them): they are sent to the worker processes. Jobs are run from
    one event loop at a time.
    """

    def __init__(self, make_state: Callable[[], S], *, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("a worker pool needs at least one worker and one queue place")
        self._make_state = make_state
        self._workers = workers
        self._queue_size = queue_size
        self._pending = 0
        self._live: list[_Worker] = []
        self._waiting: deque[_Job] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = True
        self._drained: asyncio.Future[None] | None = None

    def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = _SPAWN.Process(target=serve, args=(theirs, self._make_state), daemon=True,
                                 name="luna-face-engine")
        process.start()
        theirs.close()  # the worker has its copy; ours alone would hide its end of stream
        ours.setblocking(False)
        return _Worker(process, ours)

    def start(self) -> None:
        """Start the processes and wait until every one has built its state and answered.

        A state that cannot be built makes this raise the error of building it.
        """
        self._closed = False
        try:
            self._live = [self._spawn() for _ in range(self._workers)]
            for worker in self._live:
                worker.sock.setblocking(True)
                worker.sock.sendall(job_frame(pid))
            for worker in self._live:
                answer = read_frame(worker.sock, worker.inbox)
                if answer is None:
                    raise _died()
                result_of(answer)
                worker.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    async def run(self, job: Callable[[S], T]) -> T:
        """Run ``job(state)`` in a worker and return its result; never blocks the loop.

        Raises :class:`EngineBusy` when ``queue_size`` jobs are already waiting.
        """
        if self._closed or self._pending >= self._workers + self._queue_size:
            raise EngineBusy(self._queue_size)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if any(worker.jobs for worker in self._live):
                raise RuntimeError("a worker pool runs jobs of one event loop at a time")
            self._loop = loop
        entry: _Job = (loop.create_future(), job_frame(job))
        self._pending += 1
        try:
            self._waiting.append(entry)
            self._dispatch()
            answer = await entry[0]
        except asyncio.CancelledError:
            if entry in self._waiting:  # not sent yet: dropped; a sent job runs to its end
                self._waiting.remove(entry)
            raise
        finally:
            self._pending -= 1
        result: T = result_of(answer)
        return result

    def _dispatch(self) -> None:
        while self._waiting and self._live:
            # The least loaded worker; of two busy ones, the one that began its job first
            # (it ends first: the jobs are alike), as a FIFO pool would choose.
            worker = min(self._live, key=lambda each: (len(each.jobs), each.since))
            if len(worker.jobs) >= DEPTH:
                return
            entry = self._waiting.popleft()
            if not entry[0].done():  # its caller was cancelled meanwhile
                self._send(worker, entry)

    def _send(self, worker: _Worker, entry: _Job) -> None:
        assert self._loop is not None
        if not worker.jobs:
            worker.since = time.monotonic()
            self._loop.add_reader(worker.sock, self._readable, worker)
        worker.jobs.append(entry)
        if worker.outbox:
            worker.outbox += entry[1]
            return
        try:
            sent = worker.sock.send(entry[1])
        except BlockingIOError:
            sent = 0
        except OSError:  # the worker is gone (killed while idle), this job never reached it
            worker.jobs.pop()
            self._resend(worker, entry)
            return
        if sent < len(entry[1]):
            worker.outbox += entry[1][sent:]
            self._loop.add_writer(worker.sock, self._writable, worker)

    def _resend(self, dead: _Worker, entry: _Job) -> None:
        self._waiting.appendleft(entry)  # first again, to the worker that takes its place
        self._lost(dead)

    def _writable(self, worker: _Worker) -> None:
        try:
            sent = worker.sock.send(worker.outbox)
        except BlockingIOError:
            return
        except OSError:
            self._lost(worker)
            return
        del worker.outbox[:sent]
        if not worker.outbox and self._loop is not None:
            self._loop.remove_writer(worker.sock)

    def _readable(self, worker: _Worker) -> None:
        try:
            data = worker.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(worker)
            return
        worker.inbox += data
        self._deliver(worker)
        if not worker.jobs and self._loop is not None:
            self._loop.remove_reader(worker.sock)
        self._dispatch()
        self._check_drained()

    def _deliver(self, worker: _Worker) -> None:
        while worker.jobs and (answer := take_frame(worker.inbox)) is not None:
            self._answered(worker, answer)

    @staticmethod
    def _answered(worker: _Worker, answer: bytes) -> None:
        future, _ = worker.jobs.popleft()
        worker.since = time.monotonic()
        if not future.done():  # a caller cancelled while its job ran does not want it
            future.set_result(answer)

    def _lost(self, worker: _Worker) -> None:
        """``worker`` died: fail the job it ran, queue the next one again, replace it."""
        self._unregister(worker)
        worker.sock.close()
        worker.process.kill()  # it closed its end, so it is gone or going: never wait on it
        worker.process.join()
        if worker.jobs:
            future, _ = worker.jobs.popleft()
            if not future.done():
                future.set_exception(_died())
            self._waiting.extendleft(reversed(worker.jobs))
        self._live.remove(worker)
        if self._closed:
            self._refuse_waiting()
        else:
            self._live.append(self._spawn())
            self._dispatch()
        self._check_drained()

    def _unregister(self, worker: _Worker) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(worker.sock)
            loop.remove_writer(worker.sock)

    def close(self) -> None:
        """Refuse new jobs and those still waiting (as busy), let the running ones finish
        (and the next one each worker already holds), stop the processes. Blocks."""
        self._closed = True
        loop = self._loop
        if loop is not None and loop.is_running() and _running_loop() is not loop:
            asyncio.run_coroutine_threadsafe(self._finish(), loop).result()
        else:  # the loop cannot deliver the answers meanwhile: they are read here
            self._refuse_waiting()
            for worker in list(self._live):
                self._finish_blocking(worker)
        for worker in self._live:
            worker.sock.close()  # its end of stream: the worker returns
        for worker in self._live:
            worker.process.join(STOP_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        self._live = []

    def _refuse_waiting(self) -> None:
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(EngineBusy(self._queue_size))

    async def _finish(self) -> None:
        self._refuse_waiting()
        if any(worker.jobs for worker in self._live):
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    def _check_drained(self) -> None:
        drained = self._drained
        if drained is not None and not drained.done() and \
                not any(worker.jobs for worker in self._live):
            drained.set_result(None)

    def _finish_blocking(self, worker: _Worker) -> None:
        self._unregister(worker)
        worker.sock.setblocking(True)
        self._deliver(worker)
        try:
            worker.sock.sendall(worker.outbox)
            while worker.jobs and (answer := read_frame(worker.sock, worker.inbox)) is not None:
                self._answered(worker, answer)
        except OSError:  # died meanwhile: what it still held fails below
            pass
        for future, _ in worker.jobs:
            if not future.done():
                future.set_exception(_died())
        worker.jobs.clear()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
