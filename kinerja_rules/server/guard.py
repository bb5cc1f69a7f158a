"""The connection guard: limits that hold before a request reaches the application.

uvicorn's httptools protocol reads a header of any size, keeps a connection that never
finishes its headers forever, and accepts connections until the process runs out of file
descriptors. `GuardedHttpTools` is that protocol with limits a hostile client cannot pass:

- header size and count: a request whose request line and headers pass `max_header_bytes`,
  or that has more than `max_headers` headers, gets 431 and the connection is closed; a
  request whose headers are still unfinished after that many bytes is refused the same way,
  so memory per connection stays bounded whatever is sent;
- header timeout: the request line and headers must arrive within `header_timeout` seconds
  of the connection opening (or of the previous response); otherwise 408 and close;
- body timeout: a body that sends nothing for `body_timeout` seconds gets 408 and close;
- connection limit: beyond `max_connections` open connections in this process, a new one
  gets 503 and is closed at once, so slow connections never take every file descriptor.

It runs in the protocol, before the application, authentication included.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kinerja_rules.server.counters import REFUSED

_log = logging.getLogger("kinerja_rules.server")


class ConnectionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What a connection may hold before the application sees it (`kinerja serve` options)."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000


_PROBLEMS = {431: "headers-too-large", 408: "request-timeout", 503: "too-many-connections"}
_REASONS = {431: b"Request Header Fields Too Large", 408: b"Request Timeout", 503: b"Service Unavailable"}


def _answer(status: int, problem: str, detail: str) -> bytes:
    body = msgspec.json.encode({"type": f"/problems/{problem}", "title": _REASONS[status].decode(),
                                "status": status, "detail": detail})
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))) + body


class _Refused(Exception):
    pass


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits of `ConnectionLimits`."""

    limits = ConnectionLimits()  # set by `kinerja serve` in each process before it serves

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_read = 0  # bytes received since the request began, while its headers are unfinished
        self._head_size = 0  # bytes of request line and headers parsed
        self._header_count = 0
        self._refusal = ""
        self._deadline = 0.0  # when the headers or the next piece of body must have arrived; 0: none
        self._waiting_for = ""  # "header-timeout" or "body-timeout"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too-many-connections", "the service holds as many connections as it may; retry later")
            return
        _Sweeper.watch(self.loop, self.connections)
        self._await("header-timeout")

    def _await(self, what: str) -> None:
        seconds = self.limits.header_timeout if what == "header-timeout" else self.limits.body_timeout
        self._deadline, self._waiting_for = self.loop.time() + seconds, what

    def expired(self) -> None:
        """The headers or the body did not arrive in time (the sweeper calls this)."""
        self._deadline = 0.0
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete and self._waiting_for == "body-timeout":
            self.cycle.disconnected = True  # the application stops waiting and writes nothing more here
            self.cycle.message_event.set()
            if self.cycle.response_started:  # the answer is on its way: only stop waiting for the body
                self.transport.close()
                return
        detail = "the request headers took too long" if self._waiting_for == "header-timeout" \
            else "the request body stopped arriving"
        self._refuse(408, self._waiting_for, detail)

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._refusal = reason
        self._deadline = 0.0
        REFUSED.labels(reason).inc()
        self.transport.write(_answer(status, _PROBLEMS[status], detail))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refusal:
            return
        if self._in_head:
            self._head_read += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if not self._refusal:
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_read > self.limits.max_header_bytes and not self._refusal:
            self._too_large()

    def _too_large(self) -> None:
        self._refuse(431, "header-too-large", f"the request line and headers may hold at most "
                                              f"{self.limits.max_header_bytes} bytes in "
                                              f"{self.limits.max_headers} headers")

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_size = self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.limits.max_header_bytes:
            self._too_large()
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.limits.max_header_bytes or self._header_count > self.limits.max_headers:
            self._too_large()
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_read = 0
        self._await("body-timeout")
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._deadline = self.loop.time() + self.limits.body_timeout
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._deadline = 0.0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._in_head = True
            self._await("header-timeout")


class _Sweeper:
    """One timer per process that closes the connections past their deadline (cheaper than a timer each)."""

    PERIOD = 0.1
    _running: set[asyncio.AbstractEventLoop] = set()

    @classmethod
    def watch(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        if loop not in cls._running:
            cls._running.add(loop)
            loop.call_later(cls.PERIOD, cls._sweep, loop, connections)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        if not connections:
            cls._running.discard(loop)  # started again by the next connection
            return
        now = loop.time()
        for protocol in list(connections):
            deadline = getattr(protocol, "_deadline", 0.0)
            if deadline and deadline <= now:
                protocol.expired()
        loop.call_later(cls.PERIOD, cls._sweep, loop, connections)


def file_descriptors_for(connections: int) -> int:
    """Raise this process's open-file limit to hold `connections` and some room; the connections it can hold."""
    room = 64  # policy files, log streams, batch process pipes
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + room
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return min(connections, max(soft - room, 1))
