"""Request metrics in the Prometheus text format, and one structured access-log line per request.

With several workers the counts of all of them are added up (prometheus-client's
multiprocess mode). The access log is JSON Lines handed to a writer thread: going through
`logging` cost a third of a trivial request, and a stalled reader must never stall one.
"""

from __future__ import annotations

import logging
import os
import random
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from kinerja_rules.server.counters import PROCESS
from kinerja_rules.server.logs import LineWriter

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_JSON = msgspec.json.Encoder()
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")  # a caller's id is kept only if it is this plain
# a request id correlates log lines, it grants nothing: random bits from a generator seeded from the
# system's, without a system call per request
_REQUEST_RANDOM = random.Random(secrets.randbits(256))
_REQUEST_BITS = _REQUEST_RANDOM.getrandbits
os.register_at_fork(after_in_child=lambda: _REQUEST_RANDOM.seed(secrets.randbits(256)))  # each process its own
_log = logging.getLogger("kinerja_rules.server")


class AccessLog:
    """Access-log lines, handed to a `LineWriter`: a stalled or broken stream never holds up a request."""

    def __init__(self, lines: LineWriter) -> None:
        self.lines = lines
        self._second = 0
        self._stamp = ""

    def request(self, scope: Scope, status: int, elapsed: float) -> None:
        client = scope.get("client")
        key = scope.get("state", {}).get("api_key")
        now = int(time.time())
        if now != self._second:  # formatting the time once a second is enough
            self._second, self._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
        entry: dict[str, Any] = {
            "time": self._stamp, "method": scope["method"], "path": scope["path"],  # type: ignore[typeddict-item]
            "status": status, "ms": round(elapsed * 1000, 3), "client": client[0] if client else None}
        policy_id = scope.get("path_params", {}).get("policy_id")
        if policy_id:
            entry["policy"] = policy_id
        if key is not None:
            entry["key"] = key.name
        entry["request_id"] = scope.get("state", {}).get("request_id")
        self.lines.write(_JSON.encode(entry) + b"\n")

    def close(self) -> None:
        self.lines.close()


class Metrics:
    """Request counts and latencies by endpoint and status, decisions by policy, reloads.

    prometheus-client counters. With several workers `kinerja serve` sets
    `PROMETHEUS_MULTIPROC_DIR` before they start: each worker writes its counts there, and
    whichever worker answers `/metrics` adds up every worker's.
    """

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("kinerja_http_requests", "HTTP requests answered, by endpoint, method and status.",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("kinerja_http_request_duration_seconds",
                                 "Time to answer, by endpoint, method and status.", ["endpoint", "method", "status"],
                                 buckets=BUCKETS, registry=r)
        self.decisions = Counter("kinerja_decisions", "Records evaluated, by policy and outcome.",
                                 ["policy", "outcome"], registry=r)
        self.reloads = Counter("kinerja_reloads", "Policy reloads, by outcome.", ["outcome"], registry=r)
        self.stage_seconds = Gauge("kinerja_policy_stage_seconds",
                                   "Seconds the latest reload spent in each stage of the policy pipeline.", ["stage"],
                                   registry=r, multiprocess_mode="mostrecent")
        self.batch_records = Counter("kinerja_batch_records", "Batch records, by the process that decided them.",
                                     ["decided_in"], registry=r)
        for outcome in ("ok", "partial", "failed"):
            self.reloads.labels(outcome)
        for where in ("service", "batch_processes"):
            self.batch_records.labels(where)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # each labelled series, found once
        self._decided: dict[tuple[str, str], Any] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        series = self._series.get(key)
        if series is None:
            labels = (endpoint, method, str(status))
            series = self._series[key] = (self.requests.labels(*labels), self.latency.labels(*labels))
        series[0].inc()
        series[1].observe(seconds)

    def observe_reload(self, timings: Mapping[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stage_seconds.labels(stage).set(seconds)

    def observe_decisions(self, policy_id: str, outcome: str, count: int = 1) -> None:
        if count:
            key = (policy_id, outcome)
            counter = self._decided.get(key)
            if counter is None:
                counter = self._decided[key] = self.decisions.labels(policy_id, outcome)
            counter.inc(count)

    def render(self, policies: list[tuple[str, str, str]], generation: int = 0) -> bytes:
        """The Prometheus text exposition, every worker's counts added up."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            text = generate_latest(registry)
        else:
            text = generate_latest(self.registry) + generate_latest(PROCESS)
        info = ["# HELP kinerja_policy_info The policies in service.", "# TYPE kinerja_policy_info gauge"]
        info += [f"kinerja_policy_info{_labels(policy=p, version=v, digest=d)} 1" for p, v, d in policies]
        info += ["# HELP kinerja_policy_generation The generation of policies in service.",
                 "# TYPE kinerja_policy_generation gauge", f"kinerja_policy_generation {generation}"]
        return text + ("\n".join(info) + "\n").encode()


def _labels(**labels: object) -> str:
    def escape(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


class ObserveMiddleware:
    """Time every request, count it by route template and status, and log it as one JSON line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given if _REQUEST_ID.fullmatch(given) else b"%032x" % _REQUEST_BITS(128)
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            endpoint = scope.get("path_template") or "unmatched"
            self.metrics.observe_request(endpoint, scope["method"], status, elapsed)
            if self.log is not None:
                self.log.request(scope, status, elapsed)
