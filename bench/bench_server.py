"""Benchmark: the HTTP service on loopback, driven by wrk at a bounded load.

Starts the service as `kinerja serve` builds it (one worker, default settings, access log
on and discarded) on a free loopback port, plus one bench-only route, waits for /ready,
then for each scenario runs wrk (one thread, so the server keeps a core) for the given
time at the given connections:

- trivial GET: GET /health;
- trivial POST: a Litestar handler that reads the same body as evaluate and answers a
  constant, the framework's ceiling for requests of that shape;
- trivial data POST: the same body taken the usual Litestar way (`data: dict[str, Any]`,
  decoded and validated by the framework) and a dict answered;
- evaluate: POST /v1/policies/nasional/evaluate, one generated record per request;
- the in-process full path: the same bodies read, checked, decided and encoded as the evaluate
  handler does, timed in this process while the server is idle. The target: an evaluate costs at
  most 1.10x a trivial POST plus this (a request's cost is one over the requests per second; the
  trivial POST and evaluate are measured in turns, 5 rounds, and the ratio is the median of the
  rounds'). A bench-only route also times that same work inside the loaded server;
- evaluate with plugin code: the same records for makassar, whose plugin functions run in
  the pool processes under their time budget (nasional runs no plugin code: the fast path);
- batch: POST /v1/policies/nasional/evaluate/batch, 1,000 records per request.

Prints requests per second, p50/p99 latency, records per second for the batch, the
evaluate/trivial ratios, and what the connection guard costs: the service with uvicorn's
own httptools protocol against the guarded one, in turns. wrk comes from `make bench-tools` (Debian's package).

    python bench/bench_server.py [--seconds 10] [--connections 32] [--batch-processes N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import msgspec
from bench_engine import ROOT, generate
from litestar import Request, Response, get, post

from kinerja_rules import Engine
from kinerja_rules.decision import ENCODER
from kinerja_rules.server.bodies import Limits, plain_evaluate
from kinerja_rules.server.serve import cpu_count

DEFAULT_PROCESSES = cpu_count() if cpu_count() > 1 else 0  # what `kinerja serve` starts with one worker

_ENCODER = msgspec.json.Encoder(decimal_format="number")

_LUA = """
local bodies = {%(bodies)s}
local requests = {}
local i = 0
init = function(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format("%(method)s", "%(path)s", {["Content-Type"] = "application/json"}, body)
  end
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def full_path(engine: Engine, policy_id: str, raw: bytes) -> bytes:
    """An evaluate body read, checked, decided and encoded as the evaluate handler does a plainly
    valid one (every generated record is)."""
    plain = plain_evaluate(raw, Limits())
    clean = None if plain is None else engine.read_plain(policy_id, plain.record)
    assert plain is not None and clean is not None, "a generated record is not plainly valid"
    return ENCODER.encode(engine.evaluate_plain(policy_id, clean, plain.as_of, plain.explain))


def full_path_us(engine: Engine, bodies: list[bytes], rounds: int = 15) -> float:
    """Microseconds the full path takes per body in this process: the median of rounds over all bodies."""
    taken = []
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in bodies:
            full_path(engine, "nasional", raw)
        taken.append((time.perf_counter() - start) / len(bodies) * 1e6)
    return statistics.median(taken)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], expected: int, timeout: float = 60) -> int:
    """Wait until the server is ready and its batch processes are up; return how many there are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base + "/ready", timeout=1) as response:
                ready = json.loads(response.read())
                if ready["batch_processes"] >= expected:
                    return int(ready["batch_processes"])
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server was not ready in time")


def run_wrk(base: str, method: str, path: str, bodies: list[bytes], seconds: int, connections: int) -> dict[str, Any]:
    lua = _LUA % {"bodies": ",".join(f"[==[{b.decode()}]==]" for b in bodies) if bodies else '""',
                  "method": method, "path": path}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script,
                              base + path], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    match = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, micros, p50, p99, bad_status, socket_errors = map(int, match.groups())
    if bad_status or socket_errors:
        raise SystemExit(f"{method} {path}: {bad_status} non-2xx answers, {socket_errors} socket errors")
    return {"rps": requests / (micros / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "requests": requests}


def serve_for_bench(port: int, batch_processes: int | None, plain: bool = False) -> None:
    """Run the service exactly as `kinerja serve` does, with one more route: the trivial POST."""
    import uvicorn

    from kinerja_rules.server.serve import Settings, build_app, uvicorn_options

    @post("/bench/trivial", status_code=200)
    async def trivial(request: Request[Any, Any, Any]) -> Response[bytes]:
        await request.body()
        return Response(b'{"ok":true}', media_type="application/json")

    @post("/bench/trivial-data", status_code=200)
    async def trivial_data(data: dict[str, Any]) -> dict[str, bool]:
        return {"ok": True}

    inside: list[float] = []

    @post("/bench/timed/{policy_id:str}", status_code=200)
    async def timed(request: Request[Any, Any, Any], policy_id: str) -> Response[bytes]:
        engine = request.app.state.service.current()
        raw = await request.body()
        start = time.perf_counter()
        answer = full_path(engine, policy_id, raw)
        inside.append(time.perf_counter() - start)
        return Response(answer, media_type="application/json")

    @get("/bench/timed", sync_to_thread=False)
    def timings() -> dict[str, float]:
        taken = sorted(inside)
        inside.clear()
        return {"median_us": taken[len(taken) // 2] * 1e6 if taken else 0.0}

    settings = Settings(policies=[str(ROOT / "policies")], port=port,  # the defaults of `kinerja serve`
                        batch_processes=batch_processes)
    app, _ = build_app(settings)
    for handler in (trivial, trivial_data, timed, timings):
        app.register(handler)
    options = uvicorn_options(settings)
    if plain:  # the baseline: uvicorn's own httptools protocol, without the connection guard
        options["http"] = "httptools"
    uvicorn.run(app, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-processes", type=int, metavar="N",
                        help="as `kinerja serve --batch-processes` (default: its default)")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_for_bench(args.serve, args.batch_processes, args.plain)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make bench-tools` (installs Debian's wrk package)")

    records = generate(1000)
    singles = [_ENCODER.encode({"record": r}) for r in records[:200]]
    engine = Engine.from_paths([ROOT / "policies"])
    assert all(full_path(engine, "nasional", raw) for raw in singles)
    batch = [_ENCODER.encode({"records": records})]
    extra = ["--batch-processes", str(args.batch_processes)] if args.batch_processes is not None else []
    expected = args.batch_processes if args.batch_processes is not None else DEFAULT_PROCESSES
    guard = guard_cost(singles, args.seconds, args.connections, extra, expected)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), *extra], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        processes = wait_ready(base, server, expected)
        check = urllib.request.Request(base + "/v1/policies/nasional/evaluate/batch", data=batch[0],
                                       headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(check) as response:  # every generated record must be decided
            results = json.loads(response.read())["results"]
            assert all("outputs" in r for r in results), "a generated record was not decided"
        print(f"kinerja-rules server, 1 worker ({processes} batch processes), "
              f"wrk {args.seconds} s at {args.connections} connections")
        trivial = run_wrk(base, "GET", "/health", [], args.seconds, args.connections)
        trivial_data = run_wrk(base, "POST", "/bench/trivial-data", singles, args.seconds, args.connections)
        rounds: list[tuple[dict[str, Any], dict[str, Any], float]] = []
        for _ in range(5):  # in turns, so what the machine does meanwhile falls on both
            posted = run_wrk(base, "POST", "/bench/trivial", singles, args.seconds, args.connections)
            decided = run_wrk(base, "POST", "/v1/policies/nasional/evaluate", singles, args.seconds,
                              args.connections)
            rounds.append((posted, decided, full_path_us(engine, singles)))
        run_wrk(base, "POST", "/bench/timed/nasional", singles, max(args.seconds // 2, 1), args.connections)
        with urllib.request.urlopen(base + "/bench/timed") as response:
            inside_us = json.loads(response.read())["median_us"]
        full_us = statistics.median(r[2] for r in rounds)
        overheads = sorted((1e6 / d["rps"]) / (1e6 / t["rps"] + f) for t, d, f in rounds)
        trivial_post, single, _ = sorted(rounds, key=lambda r: r[1]["rps"])[len(rounds) // 2]
        plugin_single = run_wrk(base, "POST", "/v1/policies/makassar/evaluate", singles, args.seconds,
                                args.connections)
        many = run_wrk(base, "POST", "/v1/policies/nasional/evaluate/batch", batch, args.seconds, args.connections)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"  trivial  GET /health         {trivial['rps']:9.0f} req/s   p50 {trivial['p50_ms']:6.2f} ms"
          f"   p99 {trivial['p99_ms']:6.2f} ms")
    print(f"  trivial  POST, same body     {trivial_post['rps']:9.0f} req/s   p50 {trivial_post['p50_ms']:6.2f} ms"
          f"   p99 {trivial_post['p99_ms']:6.2f} ms")
    print(f"  trivial  POST, data: dict    {trivial_data['rps']:9.0f} req/s   p50 {trivial_data['p50_ms']:6.2f} ms"
          f"   p99 {trivial_data['p99_ms']:6.2f} ms")
    print(f"  evaluate one record          {single['rps']:9.0f} req/s   p50 {single['p50_ms']:6.2f} ms"
          f"   p99 {single['p99_ms']:6.2f} ms")
    print(f"  evaluate, plugin code        {plugin_single['rps']:9.0f} req/s   p50 {plugin_single['p50_ms']:6.2f} ms"
          f"   p99 {plugin_single['p99_ms']:6.2f} ms   (makassar, in the pool processes)")
    print(f"  batch of 1,000 records       {many['rps'] * 1000:9.0f} records/s   ({many['rps']:.1f} req/s, "
          f"p50 {many['p50_ms']:.1f} ms, p99 {many['p99_ms']:.1f} ms)")
    print(f"  evaluate / trivial POST      {single['rps'] / trivial_post['rps']:9.1%}   (requests per second)")
    trivial_us = statistics.median(1e6 / t["rps"] for t, _, _ in rounds)
    single_us = statistics.median(1e6 / d["rps"] for _, d, _ in rounds)
    print(f"  one evaluate                 {single_us:9.0f} µs   (one over its requests per second)")
    print(f"  one trivial POST             {trivial_us:9.0f} µs")
    print(f"  the in-process full path     {full_us:9.0f} µs   (this process, the same bodies: read, checked, "
          "decided, encoded)")
    print(f"  evaluate / (trivial POST + full path) {statistics.median(overheads):5.2f}x   (target <= 1.10x; rounds "
          f"{', '.join(f'{x:.2f}' for x in overheads)})")
    print(f"  the full path inside the loaded server {inside_us:6.0f} µs   ({inside_us / full_us:.2f}x the same "
          "work in this process)")
    print(f"  evaluate / trivial GET       {single['rps'] / trivial['rps']:9.1%}")
    print(f"  evaluate / trivial data POST {single['rps'] / trivial_data['rps']:9.1%}")
    print(f"  evaluate p99                 {single['p99_ms']:9.2f} ms (target <= 10 ms)")
    print(f"  batch                        {many['rps'] * 1000:9.0f} records/s (target >= 50,000)")
    for name, (plain, guarded) in guard.items():
        print(f"  connection guard, {name:<10} {guarded / plain:9.1%} of uvicorn's own httptools protocol "
              f"({guarded:.0f} vs {plain:.0f} req/s, interleaved)")


def guard_cost(singles: list[bytes], seconds: int, connections: int, extra: list[str],
               expected: int) -> dict[str, tuple[float, float]]:
    """Requests per second without and with the connection guard, measured in turns (3 rounds each)."""
    servers = {}
    for plain in (True, False):
        port = free_port()
        process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), *extra, *(["--plain"] * plain)],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        servers[plain] = (f"http://127.0.0.1:{port}", process)
    try:
        for base, process in servers.values():
            wait_ready(base, process, expected)
        rates: dict[str, dict[bool, list[float]]] = {"GET /health": {True: [], False: []},
                                                     "evaluate": {True: [], False: []}}
        for _ in range(3):
            for plain, (base, _) in servers.items():
                rates["GET /health"][plain].append(run_wrk(base, "GET", "/health", [], max(seconds // 3, 1),
                                                           connections)["rps"])
                rates["evaluate"][plain].append(run_wrk(base, "POST", "/v1/policies/nasional/evaluate", singles,
                                                        max(seconds // 3, 1), connections)["rps"])
    finally:
        for _, process in servers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return {name: (sorted(r[True])[1], sorted(r[False])[1]) for name, r in rates.items()}


if __name__ == "__main__":
    main()
