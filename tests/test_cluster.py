"""kinerja_rules.cluster on a distributed.LocalCluster of 2 worker processes: the same decisions as `kinerja eval`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from kinerja_rules import formats
from kinerja_rules.cluster import ClusterError, _engine, _Spec, evaluate_dataset
from kinerja_rules.engine import Engine, ship
from tests.conftest import BASE_RECORD, POLICIES
from tests.test_bulk import kinerja

UNITS = ["Dinas Pendidikan", "Dinas Kesehatan", "Bappeda", "Inspektorat"]
ORGS = ["istimewa", "baik", "butuh_perbaikan", "kurang"]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as connected:
        yield connected


def _people(count: int) -> list[dict[str, Any]]:
    """Records of several units and months; every 37th is invalid in a way of its own."""
    people = []
    for i in range(count):
        record = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"19850712201001{i:04d}"
        record["unit_kerja"] = UNITS[i % len(UNITS)]
        record["periode"] = f"2025-0{1 + i // len(UNITS) % 2}"
        record["perilaku"]["atasan"] = 55 + i % 45
        record["skp"]["indikator"][0]["realisasi"] = 600 + (i * 37) % 500
        record["jabatan"]["kelas"] = 3 + i % 10
        if i % 37 == 5:
            record["jabatan"]["kelas"] = 99  # out of range
        if i % 37 == 11:
            del record["perilaku"]  # missing
        people.append(record)
    return people


def _dataset(folder: Path, records: list[dict[str, Any]], files: int = 3, row_group: int = 40) -> Path:
    """The records as Parquet: `files` files of row groups, and the same records as one file for the CLI."""
    rows = [formats.flatten(r) for r in records]
    names = sorted({name for row in rows for name in row})
    table = pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows])
    pq.write_table(table, folder / "all.parquet")
    parts = folder / "records"
    parts.mkdir()
    size = -(-len(records) // files)
    for i in range(files):
        pq.write_table(table.slice(i * size, size), parts / f"part-{i}.parquet", row_group_size=row_group)
    return parts


def _rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]


def test_a_dataset_is_decided_on_the_cluster_as_the_cli_decides_it(client: Client, tmp_path: Path) -> None:
    records = _people(300)
    parts = _dataset(tmp_path, records)
    summary = evaluate_dataset(client, "nasional", POLICIES, parts, tmp_path / "out")
    assert (summary.records, summary.policy) == (300, "nasional")
    assert len(summary.parts) == 9  # 3 files of 100 records, in row groups of 40
    cli = kinerja("eval", "nasional", "-i", str(tmp_path / "all.parquet"), "-o", str(tmp_path / "cli.parquet"))
    assert cli.returncode == 1, cli.stderr  # some records failed
    expected = _rows(tmp_path / "cli.parquet")
    got = sorted(_rows(tmp_path / "out"), key=lambda row: row["line"])
    assert [row.pop("line") for row in got] == list(range(1, 301))
    assert got == expected
    failed = [row for row in got if row["error.kind"] is not None]
    assert summary.failed == len(failed) == 16
    assert {row["error.line"] for row in failed} == {i + 1 for i in range(300) if i % 37 in (5, 11)}


def test_a_population_run_keeps_each_group_whole(client: Client, tmp_path: Path) -> None:
    records = _people(240)
    parts = _dataset(tmp_path, records, files=4, row_group=25)
    groups = {unit: {"predikat_organisasi": org} for unit, org in zip(UNITS, ORGS, strict=True)}
    summary = evaluate_dataset(client, "nasional", POLICIES, parts, tmp_path / "out", groups=groups)
    (tmp_path / "groups.json").write_text(json.dumps(groups))
    cli = kinerja("eval", "nasional", "-i", str(tmp_path / "all.parquet"), "-o", str(tmp_path / "cli.parquet"),
                  "--groups", str(tmp_path / "groups.json"), "--report", str(tmp_path / "reports.jsonl"))
    assert cli.returncode == 1, cli.stderr
    expected = _rows(tmp_path / "cli.parquet")
    got = sorted(_rows(tmp_path / "out"), key=lambda row: row.pop("line"))
    assert got == expected
    assert any(row["population"] for row in got)  # decided as a population, not alone
    reports = [json.loads(line) for path in sorted((tmp_path / "out").glob("_reports-*.jsonl"))
               for line in path.read_text().splitlines()]
    cli_reports = [json.loads(line) for line in (tmp_path / "reports.jsonl").read_text().splitlines()]
    assert summary.reports == len(reports) == len(cli_reports) == len(UNITS) * 2  # units x months

    def by_group(report: dict[str, Any]) -> str:
        return json.dumps(report["group"], sort_keys=True)

    assert sorted(reports, key=by_group) == sorted(cli_reports, key=by_group)


def test_a_worker_refuses_a_policy_that_compiles_to_another_digest() -> None:
    engine = Engine.for_policy("nasional", POLICIES)
    policy = engine.policy("nasional")
    from kinerja_rules import bulk

    spec = _Spec(policy_id="nasional", digest=policy.digest, sources=ship([policy]), plugins=(),
                 task=bulk.Task("nasional"), output="")
    assert _engine(spec).policy("nasional").digest == policy.digest
    with pytest.raises(ClusterError, match="another|same kinerja-rules"):
        _engine(replace(spec, digest="0" * 64))


def test_unusable_input_output_or_options_are_refused_before_anything_runs(client: Client, tmp_path: Path) -> None:
    parts = _dataset(tmp_path, _people(10), files=1)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "old.parquet").write_bytes(b"")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.parquet").write_bytes(b"not parquet at all")
    cases = [
        (dict(inputs=tmp_path / "missing"), "no such file or folder"),
        (dict(inputs=tmp_path / "taken" / "nothing"), "no such file"),
        (dict(inputs=tmp_path / "junk"), "cannot read .*x.parquet as Parquet"),
        (dict(output=tmp_path / "taken"), "not an empty folder"),
        (dict(policy_id="nasionall"), "nasional"),
        (dict(groups=["Dinas Pendidikan"]), "must be an object"),
        (dict(policy_id="sawahlunto", groups={}), "whole run"),
    ]
    for change, message in cases:
        given: dict[str, Any] = dict(policy_id="nasional", inputs=parts, output=tmp_path / "fresh")
        given.update(change)
        with pytest.raises(Exception, match=message):
            evaluate_dataset(client, given["policy_id"], POLICIES, given["inputs"], given["output"],
                             groups=given.get("groups"))
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())
