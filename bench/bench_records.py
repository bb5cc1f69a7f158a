"""Benchmark: what recording decisions costs, and what an impact run costs.

1. The HTTP service, one worker, with the decision store off (`--no-store`) and on (`--data`,
   SQLite, every decision committed before it is answered): both up at once, driven in turns
   (single evaluates at 32 connections, then batches of 1,000 records). Prints the median
   rates and the median of each round's on/off ratio (the targets: at least 0.80 single and
   0.70 batch).
2. `impact` over 100,000 generated records (base: the bundled policies; proposed: a change of
   nasional's TPP factor) against one evaluation of the same records, in-process. Prints both
   times and the ratio (the target: at most 2.3).

wrk comes from `make bench-tools` (Debian's package). Run: make bench-records
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
from bench_engine import ROOT, generate
from bench_server import DEFAULT_PROCESSES, free_port, run_wrk, wait_ready

from kinerja_rules import Engine
from kinerja_rules.impact import decide_all, impact

_ENCODER = msgspec.json.Encoder(decimal_format="number")
CHANGE = ("baik: 1.00, butuh_perbaikan: 0.75", "baik: 0.95, butuh_perbaikan: 0.75")


def _server(extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "kinerja_rules.cli", "serve", "--port", str(port),
                                "--no-access-log", *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def bench_http(seconds: int, connections: int, rounds: int) -> None:
    """Both services up at once (the idle one waits), driven in turns: each round measures off then
    on, and the ratio of each pair is taken, so the machine's drift falls on both sides of it."""
    records = generate(1000)
    singles = [_ENCODER.encode({"record": r}) for r in records[:200]]
    batch = [_ENCODER.encode({"records": records})]
    data = Path(tempfile.mkdtemp(prefix="kinerja-bench-data-"))
    servers = {"off": _server(["--no-store"]), "on": _server(["--data", str(data)])}
    found: dict[str, dict[str, list[float]]] = {name: {"single": [], "batch": []} for name in servers}
    try:
        for process, base in servers.values():
            wait_ready(base, process, DEFAULT_PROCESSES)  # batches go to its processes from the first
            # not counted: a new store's files grow to their working size (the WAL to its checkpoint size)
            run_wrk(base, "POST", "/v1/policies/nasional/evaluate/batch", batch, 2, 4)
        for _ in range(rounds):
            for name, (_, base) in servers.items():
                found[name]["single"].append(run_wrk(base, "POST", "/v1/policies/nasional/evaluate", singles,
                                                     seconds, connections)["rps"])
            for name, (_, base) in servers.items():
                found[name]["batch"].append(1000 * run_wrk(base, "POST", "/v1/policies/nasional/evaluate/batch",
                                                           batch, seconds, 4)["rps"])
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=60)
    kept = subprocess.run([sys.executable, "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1])"
                           ".execute('select count(*) from decisions').fetchone()[0])",
                           str(data / "decisions.sqlite3")], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(data, ignore_errors=True)
    print(f"HTTP, 1 worker each, wrk {seconds} s per run, {rounds} rounds of off then on after one of 2 s not counted "
          f"({kept} decisions recorded)")
    for kind, unit in (("single", f"evaluate/s at {connections} connections"),
                       ("batch", "records/s in batches of 1,000, 4 connections")):
        off, on = found["off"][kind], found["on"][kind]
        ratios = sorted(b / a for a, b in zip(off, on, strict=True))
        print(f"  {kind:6}  store off {statistics.median(off):10,.0f}  on {statistics.median(on):10,.0f} {unit} "
              f"(medians)   on/off: median {statistics.median(ratios):.2f}, "
              f"rounds {' '.join(f'{r:.2f}' for r in ratios)}")


def bench_impact(count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kinerja-bench-impact-"))
    try:
        shutil.copytree(ROOT / "policies", folder / "proposed")
        nasional = folder / "proposed" / "nasional.yaml"
        nasional.write_text(nasional.read_text().replace(*CHANGE))
        base, proposed = Engine.from_paths([ROOT / "policies"]), Engine.from_paths([folder / "proposed"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    records = generate(count)
    numbered = list(enumerate(records, start=1))
    gc.collect()
    started = time.perf_counter()
    decide_all(base, "nasional", records, None, None, None, False)
    once = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    report = impact(base, proposed, "nasional", numbered).report()
    both = time.perf_counter() - started
    print(f"impact over {count:,} records (nasional, baik's TPP factor 1.00 -> 0.95): "
          f"{report['changed']:,} people change, TPP {report['tpp']['difference']:+,} rupiah")
    print(f"  one evaluation {once:6.2f} s   impact {both:6.2f} s   impact/evaluation {both / once:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=100_000, help="records of the impact run")
    parser.add_argument("--only", choices=("http", "impact"))
    args = parser.parse_args()
    if args.only != "impact":
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed: run `make bench-tools` (installs Debian's wrk package)")
        bench_http(args.seconds, args.connections, args.rounds)
    if args.only != "http":
        bench_impact(args.records)


if __name__ == "__main__":
    main()
