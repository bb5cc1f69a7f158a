"""Log output that never holds up a request: lines go to a file descriptor from a thread of their own.

A reader that stalls (`kinerja serve | sleep 100000`) fills the pipe, and a write to a full
pipe blocks. Written from the event loop, that froze the service and left it deaf to
SIGTERM. Here a request only appends its line to a bounded buffer; a writer thread empties
it into the file descriptor. When the buffer is full, new lines are dropped and counted
(`kinerja_log_lines_dropped_total`), and at shutdown the writer gets a short while to
finish before the process exits without it.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from kinerja_rules.server.counters import DROPPED

MAX_PENDING_BYTES = 4 * 1024 * 1024  # per stream: about 25,000 access-log lines


def to_fd(fd: int) -> Callable[[bytes], None]:
    """Write all of some bytes to file descriptor `fd` (unbuffered: no lock a blocked write could hold)."""
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    return write


def to_stream(stream: BinaryIO) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()
    return write


def _writable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLOUT for _, events in poller.poll(0))


class LineWriter:
    """Write lines with `sink` from a daemon thread, through a bounded buffer."""

    def __init__(self, sink: Callable[[bytes], None], name: str, max_pending: int = MAX_PENDING_BYTES) -> None:
        self.sink = sink
        self.name = name
        self.max_pending = max_pending
        self.dropped = 0
        DROPPED.labels(name)  # shown from the start, at 0
        self._pending: deque[bytes] = deque()
        self._size = 0
        self._closing = False
        self._ready = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name=f"kinerja-log-{name}", daemon=True)
        self._thread.start()

    def write(self, line: bytes, fd: int | None = None) -> None:
        """Queue `line`; never blocks on the stream (a full buffer drops the line and counts it).

        With `fd`, a short line goes straight to it when nothing is queued and the stream can
        take it now, so service messages keep their order and survive an abrupt exit.
        """
        with self._ready:
            if fd is not None and self._idle.is_set() and len(line) <= select.PIPE_BUF and _writable(fd):
                try:
                    os.write(fd, line)  # at most PIPE_BUF bytes to a stream that has room: does not block
                except OSError:
                    self._drop()
                return
            if self._closing or self._size + len(line) > self.max_pending:
                self._drop()
                return
            self._pending.append(line)
            self._size += len(line)
            self._idle.clear()
            self._ready.notify()

    def _drop(self) -> None:
        self.dropped += 1
        DROPPED.labels(self.name).inc()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closing:
                    self._ready.wait()
                if not self._pending:
                    return
                data = b"".join(self._pending)
                self._pending.clear()
                self._size = 0
            try:
                self.sink(data)
            except (OSError, ValueError):  # a closed or broken stream loses log lines, never requests
                with self._ready:
                    self._drop()
            with self._ready:
                if not self._pending:
                    self._idle.set()

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the queued lines to be written; whether they were."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, for at most `timeout` seconds (a stalled reader is not waited for)."""
        self.flush(timeout)
        with self._ready:
            self._closing = True
            self._ready.notify()


_WRITERS: dict[int, LineWriter] = {}  # the process's writers for its standard streams
_WRITERS_LOCK = threading.Lock()


def writer(fd: int, name: str) -> LineWriter:
    """The one writer of this process for file descriptor `fd`."""
    with _WRITERS_LOCK:
        if fd not in _WRITERS:
            _WRITERS[fd] = LineWriter(to_fd(fd), name)
        return _WRITERS[fd]



class StderrHandler(logging.Handler):
    """A logging handler that writes to standard error through a `LineWriter`."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = writer(2, "stderr")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.write(self.format(record).encode("utf-8", "replace") + b"\n", fd=2)
        except Exception:  # a log line that cannot be formatted is dropped, never raised into a request
            self.lines._drop()
