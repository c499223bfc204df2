"""The worker side of :mod:`luna_handlers.engine.workers`, and the frames both sides speak.

A worker is a spawned process holding one end of a socket pair. It builds its state once,
then answers each job frame with one answer frame, in order, until the parent closes its
end. A frame is an 8-byte big-endian length and that many bytes of pickle: a job is a
picklable callable of the state; an answer is ``(OK, result)``, ``(LUNA, (class,
attributes))`` or ``(RAISED, exception)``.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
from collections.abc import Callable
from typing import Any

from luna_handlers.errors import LunaError

HEADER = struct.Struct("!Q")
OK, LUNA, RAISED = 0, 1, 2


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return HEADER.pack(len(payload)) + payload


def job_frame(job: Callable[[Any], Any]) -> bytes:
    """The frame that sends ``job`` to a worker."""
    return frame(pickle.dumps(job, pickle.HIGHEST_PROTOCOL))


def take_frame(inbox: bytearray) -> bytes | None:
    """Cut the first whole frame's payload off ``inbox``; None while it is incomplete."""
    if len(inbox) < HEADER.size:
        return None
    (size,) = HEADER.unpack_from(inbox)
    end = HEADER.size + size
    if len(inbox) < end:
        return None
    payload = bytes(inbox[HEADER.size:end])
    del inbox[:end]
    return payload


def read_frame(sock: socket.socket, inbox: bytearray) -> bytes | None:
    """The next frame's payload, read blocking; None when the other end closed first (or
    died with bytes of ours unread: a reset)."""
    while (payload := take_frame(inbox)) is None:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            return None
        if not data:
            return None
        inbox += data
    return payload


def _rebuild(cls: type[LunaError], attributes: dict[str, Any]) -> LunaError:
    # A LunaError travels as its class and attributes: its constructor takes other
    # arguments than its message, so pickling it as an exception would not rebuild it.
    error = cls.__new__(cls)
    Exception.__init__(error, attributes["detail"])
    vars(error).update(attributes)
    return error


def result_of(answer: bytes) -> Any:
    """The result an answer frame carries, or raise the error it carries."""
    kind, value = pickle.loads(answer)  # noqa: S301 -- from our own worker process
    if kind == OK:
        return value
    if kind == LUNA:
        raise _rebuild(*value)
    raise value


def _answer(job: bytes, state: Any, state_error: Exception | None) -> bytes:
    try:
        if state_error is not None:
            raise state_error
        reply: tuple[int, Any] = (OK, pickle.loads(job)(state))  # noqa: S301 -- our parent's
    except LunaError as exc:
        reply = (LUNA, (type(exc), dict(vars(exc))))
    except Exception as exc:
        reply = (RAISED, exc)
    try:
        return pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an unpicklable result or exception still gets an answer
        return pickle.dumps((RAISED, RuntimeError(f"a worker's answer cannot be pickled: {exc}")))


def serve(sock: socket.socket, make_state: Callable[[], Any]) -> None:
    """A worker process's main: build the state, answer jobs until the parent's end closes.

    A state that cannot be built is the answer to every job (the pool's start() sees it
    first). Ctrl-C and SIGTERM, which reach the whole process group or service unit at once,
    are for the parent: its graceful stop lets the running jobs end, then closes our end (as
    its death would); a worker that died of them would fail those requests.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        state, error = make_state(), None
    except Exception as exc:
        state, error = None, exc
    inbox = bytearray()
    with sock:
        while (job := read_frame(sock, inbox)) is not None:
            sock.sendall(frame(_answer(job, state, error)))


def pid(_state: object) -> int:
    """The job start() sends to each worker: it answers once the state is built."""
    return os.getpid()
