"""Request metrics in the Prometheus text format, and one structured access-log line per request.

Counters live in the worker process; with several workers each answers for itself.
The access log is JSON Lines written straight to a stream in small batches, flushed
within a tenth of a second: going through `logging` cost a third of a trivial request.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import defaultdict
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from kinerja_rules.server.guard import COUNTERS
from kinerja_rules.server.logs import LineWriter, dropped

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_JSON = msgspec.json.Encoder()
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
        self.lines.write(_JSON.encode(entry) + b"\n")

    def close(self) -> None:
        self.lines.close()


class Metrics:
    """Request counts and latencies by endpoint and status, decisions by policy, reloads."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str, int], list[int]] = {}
        self.latency_sum: dict[tuple[str, str, int], float] = defaultdict(float)
        self.decisions: dict[tuple[str, str], int] = defaultdict(int)
        self.reloads: dict[str, int] = defaultdict(int)
        self.batch_records: dict[str, int] = defaultdict(int)  # by where they were decided

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        self.requests[key] += 1
        counts = self.latency.get(key)
        if counts is None:
            counts = self.latency[key] = [0] * (len(BUCKETS) + 1)
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[key] += seconds

    def observe_decisions(self, policy_id: str, outcome: str, count: int = 1) -> None:
        self.decisions[(policy_id, outcome)] += count

    def render(self, policies: list[tuple[str, str, str]]) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        out = ["# HELP kinerja_http_requests_total HTTP requests answered, by endpoint, method and status.",
               "# TYPE kinerja_http_requests_total counter"]
        for (endpoint, method, status), n in sorted(self.requests.items()):
            out.append(f"kinerja_http_requests_total{_labels(endpoint=endpoint, method=method, status=status)} {n}")
        out += ["# HELP kinerja_http_request_duration_seconds Time to answer, by endpoint, method and status.",
                "# TYPE kinerja_http_request_duration_seconds histogram"]
        for (endpoint, method, status), counts in sorted(self.latency.items()):
            running = 0
            for bound, n in zip((*BUCKETS, "+Inf"), counts):
                running += n
                le = bound if isinstance(bound, str) else repr(bound)
                out.append("kinerja_http_request_duration_seconds_bucket"
                           f"{_labels(endpoint=endpoint, method=method, status=status, le=le)} {running}")
            labels = _labels(endpoint=endpoint, method=method, status=status)
            total = self.latency_sum[(endpoint, method, status)]
            out.append(f"kinerja_http_request_duration_seconds_sum{labels} {total:.6f}")
            out.append(f"kinerja_http_request_duration_seconds_count{labels} {running}")
        out += ["# HELP kinerja_decisions_total Records evaluated, by policy and outcome.",
                "# TYPE kinerja_decisions_total counter"]
        for (policy_id, outcome), n in sorted(self.decisions.items()):
            out.append(f"kinerja_decisions_total{_labels(policy=policy_id, outcome=outcome)} {n}")
        out += ["# HELP kinerja_reloads_total Policy reloads, by outcome.", "# TYPE kinerja_reloads_total counter"]
        for outcome in ("ok", "partial", "failed"):
            out.append(f"kinerja_reloads_total{_labels(outcome=outcome)} {self.reloads[outcome]}")
        out += ["# HELP kinerja_connections_refused_total Connections refused before any request reached the "
                "service, by reason.", "# TYPE kinerja_connections_refused_total counter"]
        for reason, n in COUNTERS.refused.items():
            out.append(f"kinerja_connections_refused_total{_labels(reason=reason)} {n}")
        out += ["# HELP kinerja_log_lines_dropped_total Log lines dropped because their reader did not keep up.",
                "# TYPE kinerja_log_lines_dropped_total counter"]
        for stream, n in sorted(dropped().items()):
            out.append(f"kinerja_log_lines_dropped_total{_labels(stream=stream)} {n}")
        out += ["# HELP kinerja_batch_records_total Batch records, by the process that decided them.",
                "# TYPE kinerja_batch_records_total counter"]
        for where in ("service", "batch_processes"):
            out.append(f"kinerja_batch_records_total{_labels(decided_in=where)} {self.batch_records[where]}")
        out += ["# HELP kinerja_policy_info The policies in service.", "# TYPE kinerja_policy_info gauge"]
        for policy_id, version, digest in policies:
            out.append(f"kinerja_policy_info{_labels(policy=policy_id, version=version, digest=digest)} 1")
        return "\n".join(out) + "\n"


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

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            endpoint = scope.get("path_template") or "unmatched"
            self.metrics.observe_request(endpoint, scope["method"], status, elapsed)
            if self.log is not None:
                self.log.request(scope, status, elapsed)
