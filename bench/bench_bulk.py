"""Benchmark: `kinerja eval` over many records, end to end, on one core and on every core.

Prints, from one run (so the ratios hold on a noisy machine):
- a bare msgspec loop that reads the same JSON Lines and writes one object per line: its CPU;
- `kinerja eval nasional --jobs 1`: records per CPU-second, and its CPU against the loop's
  (the target: at most 4x);
- `kinerja eval nasional` with every core: records per second against `--jobs 1`;
- CSV and Parquet in and out: time and peak memory, and the input read with every core (each
  worker reads its own parts of the table) against `--jobs 1`;
- the peak memory as the input grows (streamed: it should stay flat), for a JSON array, CSV and
  Parquet in, and CSV and Parquet out.

Run: make bench-bulk   (or python bench/bench_bulk.py --records 100000 --grow 10000,100000,1000000)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec
from bench_engine import ROOT, generate

from kinerja_rules.bulk import default_jobs

_ENCODER = msgspec.json.Encoder(decimal_format="number")
BARE_LOOP = """
import sys
from decimal import Decimal
import msgspec
decoder = msgspec.json.Decoder(float_hook=Decimal)
encoder = msgspec.json.Encoder(decimal_format="number")
out = sys.stdout.buffer
with open(sys.argv[1], "rb") as f:
    for line in f:
        out.write(encoder.encode({"record": decoder.decode(line)}) + b"\\n")
"""


def _write(path: Path, count: int, array: bool = False) -> None:
    """`count` generated records (a block of 10,000 repeated), as JSON Lines or one JSON array."""
    block = [_ENCODER.encode(r) for r in generate(min(count, 10_000))]
    with open(path, "wb") as f:
        f.write(b"[\n" if array else b"")
        for i in range(count):
            text = block[i % len(block)]
            f.write((b",\n" if array and i else b"") + text + (b"" if array else b"\n"))
        f.write(b"\n]\n" if array else b"")


def _to_table(lines: Path, target: Path) -> None:
    """The records of a JSON Lines file as CSV or Parquet, by the rule `kinerja eval` reads them with."""
    import csv

    from kinerja_rules.formats import csv_cell, flatten

    decoder = msgspec.json.Decoder()
    with open(lines, "rb") as f:
        rows = [flatten(decoder.decode(line)) for line in f]
    names = sorted({name for row in rows for name in row})
    if target.suffix == ".csv":
        with open(target, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(names)
            writer.writerows([csv_cell(row.get(n)) for n in names] for row in rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows]), target)


_WRAPPER = """
import os, sys, time
started = time.perf_counter()
with open(os.devnull, "wb") as sink:
    pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, sink.fileno(), 1)])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
      os.waitstatus_to_exitcode(status))
"""


def _measure(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (the process and what it waited for) and peak memory (KiB) of a command,
    started from a small process of its own (a child's peak would count this one's memory as its own)."""
    found = subprocess.run([sys.executable, "-c", _WRAPPER, *command], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    wall, cpu, peak, code = float(found[0]), float(found[1]), int(found[2]), int(found[3])
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed")
    return wall, cpu, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--grow", default="10000,100000",
                        help="input sizes whose peak memory is measured (JSON array, CSV and Parquet in; tables out)")
    parser.add_argument("--to-table", nargs=2, metavar=("JSONL", "TABLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.to_table:
        _to_table(Path(args.to_table[0]), Path(args.to_table[1]))
        return
    eval_ = [sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional", "-i"]
    with tempfile.TemporaryDirectory(prefix="kinerja-bench-bulk-") as folder:
        lines = Path(folder) / "records.jsonl"
        _write(lines, args.records)
        bare = min(_measure([sys.executable, "-c", BARE_LOOP, str(lines)])[1] for _ in range(2))
        one = min((_measure([*eval_, str(lines), "--jobs", "1"]) for _ in range(2)), key=lambda m: m[0])
        jobs = default_jobs()
        every = min((_measure([*eval_, str(lines), "--jobs", str(jobs)]) for _ in range(2)), key=lambda m: m[0])
        print(f"kinerja eval nasional, {args.records:,} records of JSON Lines")
        print(f"  bare msgspec loop       CPU {bare:6.2f} s")
        print(f"  --jobs 1                CPU {one[1]:6.2f} s  {args.records / one[1]:9,.0f} records/CPU-s   "
              f"{one[1] / bare:4.1f}x the loop's CPU (target <= 4x)")
        print(f"  --jobs 1                wall {one[0]:5.2f} s  {args.records / one[0]:9,.0f} records/s")
        print(f"  --jobs {jobs:<3}             wall {every[0]:5.2f} s  {args.records / every[0]:9,.0f} records/s   "
              f"{one[0] / every[0]:4.2f}x --jobs 1")
        print(f"tables, the same records (out: --jobs 1; in: --jobs 1, then --jobs {jobs}, best of 2 each):")
        for suffix in (".csv", ".parquet"):
            table = Path(folder) / f"records{suffix}"
            _measure([*eval_, str(lines), "--jobs", str(jobs), "-o", str(table)])  # decisions as a table ...
            source = Path(folder) / f"input{suffix}"
            subprocess.run([sys.executable, __file__, "--to-table", str(lines), str(source)], check=True)  # ... and
            # the records as one, in a process of its own: one that forks from a large process counts its size
            wall, _, peak = min((_measure([*eval_, str(source), "--jobs", "1"]) for _ in range(2)),
                                key=lambda m: m[0])
            wall_n = min(_measure([*eval_, str(source), "--jobs", str(jobs)])[0] for _ in range(2))
            out_wall, _, out_peak = _measure([*eval_, str(lines), "--jobs", "1", "-o", str(table)])
            print(f"  {suffix:9} in: {wall:6.2f} s, {peak / 1024:5.0f} MiB peak, --jobs {jobs}: {wall_n:6.2f} s "
                  f"({wall / wall_n:4.2f}x)   out: {out_wall:6.2f} s, {out_peak / 1024:5.0f} MiB peak")
        print("peak memory as the input grows, streamed (--jobs 1): MiB peak (seconds)")
        print(f"  {'records':>10}  {'.json in':>14}  {'.csv in':>14}  {'.parquet in':>14}  {'.csv out':>14}  "
              f"{'.parquet out':>14}")
        block = Path(folder) / "block.jsonl"
        _write(block, min(max(int(n) for n in args.grow.split(",")), 10_000))
        for count in (int(n) for n in args.grow.split(",")):
            inputs = [Path(folder) / f"grow-{count}{suffix}" for suffix in (".json", ".csv", ".parquet")]
            _write(inputs[0], count, array=True)
            _repeat_table(block, inputs[1], count)
            _repeat_table(block, inputs[2], count)
            grown = Path(folder) / f"grow-{count}.jsonl"
            _write(grown, count)
            cells = []
            for source in inputs:
                wall, _, peak = _measure([*eval_, str(source), "--jobs", "1"])
                cells.append(f"{peak / 1024:6.0f} ({wall:5.1f})")
            for suffix in (".csv", ".parquet"):
                wall, _, peak = _measure([*eval_, str(grown), "--jobs", "1", "-o", str(Path(folder) / f"out{suffix}")])
                cells.append(f"{peak / 1024:6.0f} ({wall:5.1f})")
            print(f"  {count:>10,}  " + "  ".join(f"{c:>14}" for c in cells))
            for path in (*inputs, grown):
                path.unlink()


def _repeat_table(block: Path, target: Path, count: int) -> None:
    """`count` records as CSV or Parquet: the table of `block`'s records, its rows written again and again
    (a Parquet row group per block), made in a process of its own so this one stays small."""
    one = target.with_name("block" + target.suffix)
    if not one.exists():
        subprocess.run([sys.executable, __file__, "--to-table", str(block), str(one)], check=True)
    if target.suffix == ".csv":
        header, *rows = one.read_bytes().splitlines(keepends=True)
        with open(target, "wb") as f:
            f.write(header)
            for i in range(count):
                f.write(rows[i % len(rows)])
        return
    import pyarrow.parquet as pq

    table = pq.read_table(one)
    with pq.ParquetWriter(target, table.schema) as writer:
        for start in range(0, count, table.num_rows):
            writer.write_table(table.slice(0, min(table.num_rows, count - start)))

if __name__ == "__main__":
    main()
