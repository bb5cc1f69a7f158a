"""Benchmark: a population run against the per-record batch of the same records.

100,000 generated `nasional` records in 2,000 units (one month), each unit with its predikat
organisasi: the same records decided one by one (`evaluate_many`) and as a population
(`evaluate_population`: grouping, ordering, the kurva distribusi, then each record to the end),
in this process, best of three. Prints microseconds per record and the ratio (target: at most 1.5).

Then memory: the peak resident size of a fresh process that streams records generated unit by
unit through a population run, held whole (unsorted) or one group at a time (`sorted_by_group`),
for N and for 3 N records. Sorted, the peak follows the largest group, not the input.

    python bench/bench_population.py [--records N] [--units U] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_engine import generate

from kinerja_rules import Engine

ORG = ["istimewa", "baik", "butuh_perbaikan", "kurang", "sangat_kurang"]


def records_of(n: int, units: int, seed: int = 7) -> list[dict[str, Any]]:
    records = generate(n, seed)
    for i, record in enumerate(records):
        record["unit_kerja"] = f"Dinas {i % units:04d}"
        record["periode"] = "2025-06"
    return records


def groups_of(units: int, seed: int = 11) -> dict[str, Any]:
    rnd = random.Random(seed)
    return {f"Dinas {u:04d}": {"predikat_organisasi": rnd.choice(ORG)} for u in range(units)}


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def streamed(n: int, units: int) -> Iterator[dict[str, Any]]:
    """`n` records, unit after unit, made as they are read (the input is never held)."""
    per_unit = max(1, n // units)
    template = generate(per_unit, 7)
    for u in range(units):
        for i, record in enumerate(template):
            yield {**record, "nip": f"{198000000000000000 + u * per_unit + i:018d}", "unit_kerja": f"Dinas {u:04d}",
                   "periode": "2025-06"}


def memory_child(n: int, units: int, sorted_by_group: bool) -> None:
    engine = Engine.from_paths([ROOT / "policies"])
    decided = 0
    for _ in engine.evaluate_population("nasional", streamed(n, units), groups_of(units),
                                             sorted_by_group=sorted_by_group):
        decided += 1
    print(json.dumps({"results": decided, "peak_mib": round(_peak_kib() / 1024, 1)}))


def _peak_kib() -> int:
    """The process's peak resident size (Linux's VmHWM: unlike ru_maxrss, not carried over from the
    parent that started it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _memory(n: int, units: int, sorted_by_group: bool) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), str(units),
                          "sorted" if sorted_by_group else "held"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=2_000)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        n, units, mode = args.memory_child
        memory_child(int(n), int(units), mode == "sorted")
        return
    engine = Engine.from_paths([ROOT / "policies"])
    records, groups = records_of(args.records, args.units), groups_of(args.units)
    n = len(records)
    population = list(engine.evaluate_population("nasional", records, groups))
    batch = list(engine.evaluate_many("nasional", records))
    decided = [r for r in population[:n] if hasattr(r, "outputs")]
    assert len(decided) == sum(1 for r in batch if hasattr(r, "outputs")), "the same records are decided"
    violations = sum(len(r.violations) for r in population[n:])
    print(f"{n:,} records in {args.units:,} units "
          f"(nasional: the kurva distribusi reported, {violations:,} limits not met)")
    t_batch = _best(lambda: list(engine.evaluate_many("nasional", records)))
    t_pop = _best(lambda: list(engine.evaluate_population("nasional", records, groups)))
    print(f"  per-record batch   {t_batch / n * 1e6:8.1f} µs/record")
    print(f"  population run     {t_pop / n * 1e6:8.1f} µs/record   ratio {t_pop / t_batch:.2f} (target <= 1.5)")
    seats = [{"id": f"s{i}", "unit": f"Dinas {i:04d}", "kelas": 9} for i in range(20)]
    t_plaju_batch = _best(lambda: list(engine.evaluate_many("plaju", records)), 1)
    t_plaju = _best(lambda: list(engine.evaluate_population("plaju", records, groups, seats)), 1)
    print(f"  plaju (enforce, 20 vacancies over the run)  {t_plaju / n * 1e6:8.1f} µs/record   "
          f"ratio {t_plaju / t_plaju_batch:.2f} to its batch")
    if args.no_memory:
        return
    print("peak memory of a run streaming records unit by unit (fresh process):")
    for count in (n, 3 * n):
        held, one = _memory(count, args.units if count == n else 3 * args.units, False), \
            _memory(count, args.units if count == n else 3 * args.units, True)
        print(f"  {count:>9,} records, groups of {count // (args.units if count == n else 3 * args.units)}:  "
              f"held whole {held['peak_mib']:7.1f} MiB   sorted_by_group {one['peak_mib']:7.1f} MiB")


if __name__ == "__main__":
    main()
