"""Benchmark: a Parquet dataset decided on a Dask LocalCluster of 1 and of 2 worker processes.

Prints, from one run: records per second for each, the second against the first, the rate per
worker process (one core each), and the cost model of a national run: records / (rate per core x
cores).

Run: make bench-cluster   (or python bench/bench_cluster.py --records 1000000)
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_engine import ROOT, generate
from distributed import Client, LocalCluster

from kinerja_rules import formats
from kinerja_rules.cluster import evaluate_dataset

FILE_RECORDS = 10_000


def _dataset(folder: Path, count: int) -> Path:
    """`count` generated records as Parquet files of 10,000 (one block, written again and again)."""
    rows = [formats.flatten(r) for r in generate(min(count, FILE_RECORDS))]
    names = sorted({name for row in rows for name in row})
    table = pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows])
    parts = folder / "records"
    parts.mkdir()
    written = 0
    while written < count:
        size = min(FILE_RECORDS, count - written)
        pq.write_table(table.slice(0, size), parts / f"part-{written // FILE_RECORDS:05d}.parquet",
                       row_group_size=FILE_RECORDS)
        written += size
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--national", type=int, default=5_000_000, help="records of the cost model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kinerja-bench-cluster-") as folder:
        parts = _dataset(Path(folder), args.records)
        rates = {}
        for workers in (1, 2):
            # silence_logs: a worker whose heartbeat meets the cluster closing logs it as an error; a
            # run that failed would fail the assertion below
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                              silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
                started = time.perf_counter()
                summary = evaluate_dataset(client, "nasional", ROOT / "policies", parts,
                                           Path(folder) / f"out-{workers}")
                seconds = time.perf_counter() - started
            assert summary.records == args.records
            rates[workers] = args.records / seconds
            print(f"{workers} worker{'s' if workers > 1 else ' '}  {args.records:,} records in {seconds:6.1f} s  "
                  f"{rates[workers]:9,.0f} records/s")
        print(f"2 workers against 1: {rates[2] / rates[1]:.2f}x")
        per_core = rates[1]
        print(f"cost model: {args.national:,} records / ({per_core:,.0f} records/s per core x cores)")
        for cores in (8, 32, 128):
            print(f"  {cores:4} cores: {args.national / (per_core * cores) / 60:6.1f} min")


if __name__ == "__main__":
    main()
