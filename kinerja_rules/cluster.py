"""A dataset decided on a Dask cluster: a national run is one function call.

    from distributed import Client, LocalCluster
    from kinerja_rules.cluster import evaluate_dataset

    with LocalCluster(n_workers=8, threads_per_worker=1) as cluster, Client(cluster) as client:
        summary = evaluate_dataset(client, "nasional", "policies", "records/", "decisions/")

- **Input**: Parquet, one file or a folder of them (read in name order), with the columns
  `kinerja eval --input x.parquet` reads. Each row group is a partition; a record's `line` is its
  place in the dataset, from 1, files in name order.
- **Policies**: the client reads the policy asked for and its parents (`Engine.for_policy`) and sends
  their texts; each worker process compiles them once, and refuses to decide if its digest is not
  the client's (another version of kinerja-rules or of a plugin).
- **Deciding**: each record alone, with a bad record's error kept as its row, exactly as
  `kinerja eval` decides it. With `groups` (the group data, as `kinerja eval --groups`) the policy's
  population stage runs: records are shuffled by their group key (a `dask.bag` group-by), so each
  group is decided whole within one partition.
- **Output**: a new folder of Parquet parts, `part-00000.parquet`, ...: the columns of
  `kinerja eval --output x.parquet`, and `line`. A population run also writes each group's report
  as JSON Lines, `_reports-00000.jsonl`, ... (readers of the Parquet dataset skip `_` files).

Install with `pip install 'kinerja-rules[cluster]'` (dask, distributed, pyarrow).
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules import bulk, formats
from kinerja_rules.deciding import decide_population
from kinerja_rules.decision import ENCODER, ErrorInfo, ErrorResult, to_json
from kinerja_rules.engine import Engine, Shipment, discover, ship

__all__ = ["ClusterError", "Summary", "evaluate_dataset"]


class ClusterError(ValueError):
    """The run cannot start (bad input, output or options), or a worker cannot decide as the client would."""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What a run did."""

    policy: str
    digest: str
    records: int
    failed: int
    parts: list[str]  # the Parquet files written, in order
    reports: int = 0  # group reports written (a population run)


@dataclass(frozen=True)
class _Part:
    path: str
    row_group: int
    first: int  # the line of its first record


@dataclass(frozen=True)
class _Spec:
    """What every task needs: sent once per run, compiled once per worker process."""

    policy_id: str
    digest: str
    sources: Shipment  # the checked policy, compiled on each worker (not parsed or checked again)
    plugins: tuple[str, ...]
    task: bulk.Task
    output: str
    groups: Mapping[str, Any] | None = None
    columns: list[str] = field(default_factory=list)


_ENGINES: dict[str, Engine] = {}  # a worker process's compiled policies, by digest
_COMPILING = threading.Lock()


def _engine(spec: _Spec) -> Engine:
    """The worker's engine for `spec`, compiled on first use and checked against the client's digest."""
    with _COMPILING:
        engine = _ENGINES.get(spec.digest)
        if engine is None:
            engine = Engine.from_shipment(spec.sources, discover([Path(p) for p in spec.plugins]))
            found = engine.policy(spec.policy_id).digest
            if found != spec.digest:
                raise ClusterError(f"a worker compiled policy {spec.policy_id!r} to digest {found[:12]}, the "
                                   f"client to {spec.digest[:12]}: install the same kinerja-rules and plugins on "
                                   "every worker")
            _ENGINES[spec.digest] = engine
        return engine


def evaluate_dataset(client: Any, policy_id: str, library: str | Path, inputs: str | Path, output: str | Path, *,
                     as_of: dt.date | None = None, explain: bool = False, unknown_fields: str | None = None,
                     groups: Mapping[str, Any] | None = None, plugins: Sequence[str | Path] = ()) -> Summary:
    """Decide every record of a Parquet dataset on the cluster of `client` (a `distributed.Client`)
    and write the decisions as Parquet parts in the new folder `output`; see the module's note.
    Raises ClusterError before anything is decided when the policy, input or output is unusable."""
    import dask.bag as db
    from dask.delayed import delayed

    engine = Engine.for_policy(policy_id, Path(library), discover([Path(p) for p in plugins]))
    policy = engine.policy(policy_id)
    if groups is not None and (policy.population is None or policy.population.assignment is not None):
        raise ClusterError(f"policy {policy_id!r} has no population stage to send groups to" if
                           policy.population is None else f"policy {policy_id!r} assigns seats over the whole run, "
                           "which one partition cannot do; decide it with kinerja eval --seats")
    parts = _partitions(Path(inputs))
    target = _fresh_folder(Path(output))
    spec = _Spec(policy_id=policy_id, digest=policy.digest, sources=ship([policy]),
                 plugins=tuple(str(p) for p in plugins),
                 task=bulk.Task(policy_id, as_of, explain, False, unknown_fields), output=str(target),
                 groups=groups, columns=["line", *formats.columns(policy, explain)])
    if groups is not None:
        _check_groups(engine, spec)
    if not parts:
        return Summary(policy=policy_id, digest=policy.digest, records=0, failed=0, parts=[])
    shared = delayed(spec, traverse=False)
    bag = db.from_sequence(list(enumerate(parts)), npartitions=len(parts))  # type: ignore[no-untyped-call]
    if groups is None:
        done = bag.map(_decide_part, shared)
    else:
        buckets = len(parts)
        keyed = bag.map(_keyed_part, shared, buckets).flatten()
        done = keyed.groupby(_bucket_of, npartitions=buckets).map(_decide_bucket, shared)
    results = sorted(client.compute(done).result())
    return Summary(policy=policy_id, digest=policy.digest, records=sum(r[1] for r in results),
                   failed=sum(r[2] for r in results), parts=[r[3] for r in results if r[3]],
                   reports=sum(r[4] for r in results))


def _partitions(inputs: Path) -> list[_Part]:
    """Every row group of the Parquet files at `inputs`, with the line of its first record."""
    pq = formats.pyarrow_parquet("read")
    if inputs.is_dir():
        files = sorted(p for p in inputs.rglob("*.parquet") if p.is_file() and not p.name.startswith(("_", ".")))
    elif inputs.is_file():
        files = [inputs]
    else:
        raise ClusterError(f"no such file or folder: {inputs}")
    if not files:
        raise ClusterError(f"no .parquet files in {inputs}")
    parts, first = [], 1
    for path in files:
        try:
            with pq.ParquetFile(path) as file:
                meta = file.metadata
                groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
                if len(file.schema_arrow.names) > formats.MAX_COLUMNS:
                    raise ClusterError(f"cannot read {path}: more than {formats.MAX_COLUMNS} columns")
        except ClusterError:
            raise
        except Exception as exc:  # pyarrow says what is wrong with a file in exceptions of its own
            raise ClusterError(f"cannot read {path} as Parquet: {str(exc)[:300]}") from None
        for i, rows in enumerate(groups):
            if rows:
                parts.append(_Part(str(path), i, first))
                first += rows
    return parts


def _fresh_folder(output: Path) -> Path:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ClusterError(f"{output} already exists and is not an empty folder; name a new folder for the "
                           "decisions")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClusterError(f"cannot make the folder {output}: {exc.strerror}") from None
    return output.resolve()


def _check_groups(engine: Engine, spec: _Spec) -> None:
    """Refuse unusable group data here, before any task runs (each worker would refuse it alike)."""
    from kinerja_rules.population_run import PopulationInputError

    try:
        list(engine.evaluate_population(spec.policy_id, [], spec.groups, None, spec.task.as_of))
    except PopulationInputError as exc:
        raise ClusterError("; ".join(f"{e.path}: {e.message}" for e in exc.errors)) from None


def _items(part: _Part) -> Iterator[bulk.Item]:
    return formats.parquet_items(part.path, row_group=part.row_group, first=part.first)


def _writer(spec: _Spec, engine: Engine, index: int) -> tuple[formats.Parquet, str]:
    path = str(Path(spec.output) / f"part-{index:05d}.parquet")
    return formats.Parquet(path, engine.policy(spec.policy_id), spec.columns), path


def _decide_part(numbered: tuple[int, _Part], spec: _Spec) -> tuple[int, int, int, str, int]:
    """Decide one row group, each record alone; (index, records, failed, part written, 0)."""
    index, part = numbered
    engine = _engine(spec)
    sink, path = _writer(spec, engine, index)
    records = failed = 0
    try:
        for block in bulk.blocks(_items(part)):
            data, failures = bulk.decide_block(engine, spec.task, block)
            sink.write(data, [line for line, _, _ in block])
            records += len(block)
            failed += failures
    finally:
        sink.close()
    return index, records, failed, path, 0


def _keyed_part(numbered: tuple[int, _Part], spec: _Spec, buckets: int) -> list[tuple[int, bytes, int, Any]]:
    """Each record of one row group with its bucket: (bucket, group key as JSON, line, record). A record
    that cannot be grouped (unreadable, invalid) goes to bucket 0, where it gets its error."""
    from kinerja_rules.population_run import _Run

    _, part = numbered
    engine = _engine(spec)
    policy = engine.policy(spec.policy_id)
    run = _Run(policy, spec.groups, None, spec.task.as_of, False, spec.task.unknown_fields)
    out = []
    for line, item, _ in _items(part):
        member = item if isinstance(item, ErrorInfo) else run.prepare(0, item)
        if isinstance(member, (ErrorInfo, ErrorResult)):
            out.append((0, b"", line, item))
            continue
        key = ENCODER.encode(member.group)
        out.append((zlib.crc32(key) % buckets, key, line, item))
    return out


def _bucket_of(item: tuple[int, bytes, int, Any]) -> int:
    return item[0]


def _decide_bucket(grouped: tuple[int, list[tuple[int, bytes, int, Any]]],
                   spec: _Spec) -> tuple[int, int, int, str, int]:
    """Decide the whole groups of one bucket as a population; (bucket, records, failed, part, reports)."""
    from kinerja_rules.population_run import GroupReport

    index, items = grouped
    items.sort(key=lambda item: (item[1], item[2]))  # group by group, each in dataset order
    engine = _engine(spec)
    records = [item for _, _, _, item in items]  # a record, or the ErrorInfo of a line that is none
    lines = [line for _, _, line, _ in items]
    sink, path = _writer(spec, engine, index)
    out: list[bytes] = []
    failed = reports = position = 0
    try:
        with open(Path(spec.output) / f"_reports-{index:05d}.jsonl", "wb") as report:
            for item in decide_population(engine, spec.policy_id, records, spec.groups, None, spec.task.as_of,
                                          spec.task.explain, spec.task.unknown_fields):
                if isinstance(item, GroupReport):
                    report.write(ENCODER.encode(item) + b"\n")
                    reports += 1
                    continue
                result = item[1]
                if isinstance(result, ErrorResult):
                    failed += 1
                    if result.error.line is None:
                        result = msgspec.structs.replace(result, error=msgspec.structs.replace(
                            result.error, line=lines[position]))
                out.append(to_json(result) + b"\n")
                position += 1
        sink.write(b"".join(out), lines)
    finally:
        sink.close()
    return index, len(records), failed, path, reports
