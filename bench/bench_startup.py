"""How long a new process (a batch process, a `kinerja eval --jobs` worker on a spawning system, a
cluster node) takes to be ready to decide: the bundled policies compiled from their files' texts
(parsed, checked and compiled again: the baseline) against the same policies shipped checked
(`engine.ship`: compiled only). Each figure is the median of interleaved runs, each in a fresh
spawned process; imports are timed apart.

    python bench/bench_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ready(how: str, sent: bytes) -> tuple[float, float]:
    """(seconds importing, seconds making the engine) in this fresh process."""
    start = time.perf_counter()
    payload = pickle.loads(sent)  # as a process pool hands over its initializer's arguments
    from kinerja_rules.engine import Engine, default_registry

    registry = default_registry()
    imported = time.perf_counter()
    engine = Engine.from_groups(payload, registry) if how == "texts" else Engine.from_shipment(payload, registry)
    assert engine.ids
    return imported - start, time.perf_counter() - imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from kinerja_rules.engine import Engine, ship, source_groups

    engine = Engine.from_paths([ROOT / "policies"])
    shipment = ship(engine.policies())
    payloads = {"texts": pickle.dumps(source_groups(engine.policies())), "shipped": pickle.dumps(shipment)}
    times: dict[str, list[tuple[float, float]]] = {"texts": [], "shipped": []}
    context = multiprocessing.get_context("spawn")
    for _ in range(args.runs):
        for how in ("texts", "shipped"):  # interleaved: both see the same machine
            with context.Pool(1) as pool:
                times[how].append(pool.apply(_ready, (how, payloads[how])))
    print(f"bundled policies: {len(engine.ids)}; shipment {sum(map(len, shipment.policies)) / 1e6:.2f} MB "
          f"pickled ({sum(1 for p in shipment.policies if p)} of {len(shipment.policies)} policies)")
    medians = {}
    for how, runs in times.items():
        imports = statistics.median(t[0] for t in runs)
        build = statistics.median(t[1] for t in runs)
        medians[how] = imports + build
        print(f"{how:>8}: imports {imports:.3f} s + engine {build:.3f} s = ready in {imports + build:.3f} s "
              f"(median of {len(runs)})")
    print(f"shipped / texts: {medians['shipped'] / medians['texts']:.2f}x the time to be ready")


if __name__ == "__main__":
    main()
