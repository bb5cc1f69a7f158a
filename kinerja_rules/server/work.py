"""Expensive work a request starts, bounded in time and in number.

A population run, an impact report, a replay or an appeal can take seconds of CPU, and a
hostile one far longer (four comprehensions nested over a 1,000-item list). `Work.run` runs
such work on a thread of its own with a time budget (`--work-seconds`): when the budget ends,
or the client goes away first, the work is stopped where it stands, by an exception raised in
its thread (`PyThreadState_SetAsyncExc`, which Python delivers at the next bytecode; the
evaluation code is Python, and no value it works on is large enough for one C call to run
long), and the request is answered with `work-timeout` (or not at all, for a client that has
gone). At most `--max-work` such pieces run at once; one more is refused at once with
`work-busy` and a `Retry-After`.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from kinerja_rules.server.problems import ApiProblem

T = TypeVar("T")
_log = logging.getLogger("kinerja_rules.server")


class WorkStopped(BaseException):
    """Raised in a work thread to stop it (a BaseException, so that no `except Exception` in the
    work catches it and goes on)."""


class Work:
    """How long one piece of expensive work may run, and how many may run at once."""

    def __init__(self, seconds: float = 30.0, at_once: int = 4) -> None:
        if not seconds > 0 or at_once < 1:
            raise ValueError("a work budget is more than 0 seconds, and at least one piece runs at once")
        self.seconds = seconds
        self.at_once = at_once
        self.running = 0
        self.stopped = 0  # pieces stopped (out of time, or their client gone): for tests and curiosity

    async def run(self, what: str, fn: Callable[..., T], *args: Any,
                  disconnected: Callable[[], Any] | None = None) -> T:
        """`fn(*args)` on a thread of its own, within the budget; `what` names it in the answers.
        `disconnected` is awaited beside it: when it returns (the client has gone) the work is stopped."""
        if self.running >= self.at_once:
            raise ApiProblem("work-busy", f"{self.running} expensive requests are running (--max-work); retry "
                                          "shortly", headers={"retry-after": str(max(1, round(self.seconds / 10)))})
        self.running += 1
        piece = _Piece(fn, args)
        try:
            watch = asyncio.ensure_future(disconnected()) if disconnected is not None else None
            wrapped = asyncio.wrap_future(piece.future)
            wrapped.add_done_callback(_read_outcome)  # a piece stopped or timed out: its exception is not news
            try:
                waiting: set[asyncio.Future[Any]] = {wrapped}
                if watch is not None:
                    waiting.add(watch)
                done, _ = await asyncio.wait(waiting, timeout=self.seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if watch is not None:
                    watch.cancel()
            if piece.future.done():
                result: T = await wrapped  # its outcome, or its exception raised here (and so not left unread)
                return result
            piece.stop()
            self.stopped += 1
            if not done:
                _log.warning("%s did not finish within %g s (--work-seconds): stopped", what, self.seconds)
                raise ApiProblem("work-timeout", f"{what} did not finish within {self.seconds:g} s (--work-seconds); "
                                                 "send less, or ask the operator for a larger budget")
            _log.info("%s stopped: its client went away", what)
            raise ApiProblem("bad-request", "the client went away")  # answered to no one
        except asyncio.CancelledError:
            piece.stop()
            self.stopped += 1
            raise
        finally:
            self.running -= 1


def _read_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _Piece:
    """One piece of work on its thread, and the means to stop it."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.future: Future[Any] = Future()
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._body, args=(fn, args), name="kinerja-work", daemon=True)
        self._thread.start()

    def _body(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            try:
                result = fn(*args)
            finally:
                with self._lock:
                    self._running = False
            self.future.set_result(result)
        except WorkStopped:
            return
        except BaseException as exc:
            if not self.future.done():
                self.future.set_exception(exc)

    def stop(self) -> None:
        """Raise WorkStopped in the thread, while it is still in the work."""
        with self._lock:
            if self._running and self._thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread.ident),
                                                           ctypes.py_object(WorkStopped))


async def client_gone(request: Any) -> None:
    """Returns once the client of `request` (whose body has been read) disconnects."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            return
