"""The `kinerja` command: check, test and evaluate policies. A thin shell over the engine."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import msgspec

from kinerja_rules import __version__, bulk, calibration_sheet, formats
from kinerja_rules.catalogue import (
    LANGUAGES,
    argparse_words,
    help_texts,
    language,
    say,
    severities,
    translate,
)
from kinerja_rules.decision import ENCODER, ErrorInfo, ErrorResult, to_json
from kinerja_rules.engine import Engine, check_paths, discover
from kinerja_rules.errors import KinerjaError, PluginError, PolicyError
from kinerja_rules.evaluation.decide import in_language
from kinerja_rules.evaluation.tracing import explain_text
from kinerja_rules.parts import csv_parts, parquet_parts
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.population_run import GroupReport, PenetapanError, PopulationInputError
from kinerja_rules.registry import Registry
from kinerja_rules.schema import UNKNOWN_FIELDS
from kinerja_rules.testing import run_all

DEFAULT_POLICIES = Path("policies")

_EPILOG_CHECK = """examples:
  kinerja check                       check every policy under policies/
  kinerja check policies/sawahlunto   one region (its parents come from policies/)
  kinerja check policies/nasional.yaml policies/sawahlunto
  kinerja check --timings             the seconds each stage of the pipeline took
"""
_EPILOG_EVAL = """examples:
  kinerja eval nasional --input examples/pegawai.json
  kinerja eval nasional --input examples/batch.jsonl > decisions.jsonl
  kinerja eval nasional --input examples/batch.jsonl --jobs 2 > decisions.jsonl
  kinerja eval nasional --input examples/batch.jsonl --output decisions.xlsx
  cat examples/pegawai.json | kinerja eval nasional --explain
  kinerja eval policies/sawahlunto --input examples/pegawai.json --as-of 2025-07-01
  kinerja eval makassar --input examples/pegawai.json --explain-text
  kinerja eval nasional --input examples/batch.jsonl --groups examples/groups.json --report groups.jsonl
  kinerja eval plaju --input examples/batch.jsonl --groups examples/groups.json --seats examples/seats.json
  kinerja eval nasional --input examples/batch.jsonl --groups examples/groups.json --calibration kalibrasi.xlsx

The input is one JSON record, a JSON array of records, or JSON Lines (one record per
line). Output is one JSON object per record, per line, in input order; a record that
cannot be decided prints {"error": {...}} and the others carry on. The exit code is 1
when any record failed.

With --groups the records are decided together, as a population: grouped (for nasional by
unit_kerja and periode), ranked, the kurva distribusi of each unit applied, then each record
finished; with --seats the candidates of the whole input are placed on the seats. Each
decision carries "population": {"group", "member", "size", "rank", "seat"?}; --report writes
one report per group (counts per category before and after, violations, who moved and why;
for an assignment, who got each seat and each seat's shortlist). Under the kurva
distribusi's propose mode (nasional's) nobody moves until the unit's leader fixes the
predikat: --calibration writes the workbook for that meeting (see `kinerja penetapan`).
"""
_EPILOG_PENETAPAN = """examples:
  kinerja penetapan examples/kalibrasi-terisi.xlsx --groups examples/groups.json --nomor 800/12/DINKES/2025 --tanggal 2025-04-02 --oleh 197001011995031001 -o groups-ditetapkan.json && kinerja eval nasional -i examples/batch.jsonl --groups groups-ditetapkan.json

The workbook comes from `kinerja eval POLICY --groups … --calibration kalibrasi.xlsx`: each
unit's members ranked, with predikat_awal and the usulan (the fewest changes that meet the
kurva distribusi). The leader fills predikat_ditetapkan for every member, and an alasan for
each departure from the usulan; this command checks that (naming the row and column of each
cell that is missing or wrong, exit 1) and writes the group data with each unit's penetapan.
The run decided with it checks the curve again and fixes each member's predikat.
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_KEBERATAN = """examples:
  kinerja eval nasional -i examples/pegawai.json --record kinerja-data > decided.jsonl && kinerja keberatan beritahu --nip 198507122010011003 --periode 2025-03 && kinerja keberatan ajukan --nip 198507122010011003 --periode 2025-03 --oleh 198507122010011003 --alasan "Bukti dukung belum dinilai" --bukti "laporan-triwulan.pdf" && kinerja keberatan list --status diajukan
  kinerja eval nasional -i examples/pegawai.json --record kinerja-data > decided.jsonl && kinerja keberatan ajukan --nip 198507122010011003 --oleh 198507122010011003 --alasan "Nilai perilaku tidak sesuai" && kinerja keberatan putus --nip 198507122010011003 --oleh 196501011990031002 --hasil diubah --set perilaku.atasan=90 --alasan "Bukti dukung sah" && kinerja keberatan show --nip 198507122010011003

A keberatan is filed by the employee the decision is for, on or before its deadline:
batas_keberatan days (nasional: 14 calendar days) after the decision reached them (beritahu),
or after it was recorded when no pemberitahuan is kept. The putusan is final and is given by
neither the employee nor the rater (penilaian.penilai_nip): ditolak keeps the decision;
diterima and diubah decide it again with the values --set gives, as a new decision naming
the keberatan and the original. A decision or keberatan is named by its id, or found with
--nip (the person's latest, with --periode and --policy to narrow it). --tanggal defaults
to today. Refused steps exit 1 with the reason.
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_SURAT = """examples:
  kinerja surat nasional --input examples/pegawai.json --output surat.html
  kinerja surat nasional --input examples/pegawai.json --lang en > letter.html
  kinerja eval nasional -i examples/pegawai.json --record kinerja-data > decided.jsonl && kinerja surat --nip 198507122010011003 --periode 2025-03 --output surat.html

The letter shows labels, never codes: the words come from the policy (label: and penjelasan:
of outputs, rules, parameters and enumeration values; nasional gives them in Indonesian and
English). --output surat.pdf prints it with Chromium (Debian: apt-get install chromium).
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_TEMPLATE = """examples:
  kinerja template nasional --output formulir.xlsx
  kinerja template nasional --output form.xlsx --lang en

Fill one row per employee on the first sheet and the SKP indicators on theirs (each row starts
with the NIP and Periode), then: kinerja eval nasional -i formulir.xlsx -o keputusan.xlsx
"""
_EPILOG_WHAT_IF = """examples:
  kinerja what-if nasional --input examples/pegawai.json --goal evaluasi.predikat=sangat_baik
  kinerja what-if nasional --input examples/pegawai.json --goal evaluasi.skor_perilaku=95 --what-if-seconds 2

The answer: {"reachable": true | false | "unknown", "optimal": …, "changes": [{path, from,
to}], "outputs": …}. First the fewest changed inputs, then the smallest total change in steps;
each candidate is decided by the policy itself. "unknown" when the budget ran out first;
"optimal": false when a change was found that a better one may beat.
"""
_EPILOG_REPLAY = """examples:
  kinerja eval nasional -i examples/pegawai.json --record kinerja-data > decided.jsonl && kinerja replay --nip 198507122010011003 --periode 2025-03
  kinerja eval nasional -i examples/pegawai.json --record kinerja-data > decided.jsonl && kinerja replay --nip 198507122010011003 --set perilaku.atasan=60

A replay compiles the policy archived with the decision (not the files in policies/ now) and
decides the recorded input with the same as_of. A member of a population run is decided again
with its whole run. Fields kept redacted (kinerja serve --redact) are asked for with --set.
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_IMPACT = """examples:
  kinerja impact --base policies --proposed policies --policy nasional --input examples/batch.jsonl
  kinerja impact --base policies --proposed policies --policy nasional -i examples/batch.jsonl --groups examples/groups.json -o dampak.html
  kinerja impact --base policies --proposed policies --policy sawahlunto -i examples/batch.jsonl --format csv

The TPP is tpp.diterima and the predikat evaluasi.predikat; units are each record's
unit_kerja and kelas its jabatan.kelas. Money is whole rupiah.
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_RAPEL = """examples:
  kinerja eval nasional -i examples/batch.jsonl --record kinerja-data > decided.jsonl && kinerja rapel --policy nasional --proposed policies --from 2025-01 --to 2025-12

Each person's latest decision of each month counts (an appeal over what it appealed).
"""  # noqa: E501 (each example is one command line: tests/test_workflow.py runs it)
_EPILOG_TEST = """examples:
  kinerja test                        run the tests of every policy under policies/
  kinerja test policies/sawahlunto    one region's tests (its parents come from policies/)
  kinerja test policies/nasional-tests.yaml
"""
_EPILOG_SERVE = """examples:
  kinerja serve                              http://127.0.0.1:8000, policies/ and installed plugins
  kinerja serve --port 9000 --workers 2
  kinerja serve --host 0.0.0.0 --keys examples/keys.yaml
  kinerja serve --data kinerja-data --redact nip --retention-days 1830

Endpoints: POST /v1/policies/{id}/evaluate, POST /v1/policies/{id}/evaluate/batch,
POST /v1/policies/{id}/evaluate/population, GET /v1/policies[/{id}], GET /v1/decisions[/{id}],
POST /v1/decisions/{id}/replay, POST /v1/decisions/{id}/appeal, POST /v1/impact,
POST /v1/validate, POST /v1/admin/reload, GET /health, /ready, /metrics; API docs at /docs.

Every decision is recorded (kinerja-data/ here, or --data DIR, or --store DSN) before it is
answered, with its decision_id; --no-store records nothing. See docs/records.md.
"""


def _decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(float_hook=Decimal)


def _print_diagnostics(report_errors: Sequence[Any], warnings: Sequence[Any], out: IO[str], lang: str) -> None:
    for d in (*warnings, *report_errors):
        print(translate(d, lang).render(severities(lang)), file=out)
        print(file=out)


def _registry(args: argparse.Namespace, quiet: bool = False) -> Registry:
    """The plugins in use; each left out as broken is a warning (only the policies using it fail)."""
    registry = discover([Path(p) for p in args.plugins or ()])
    if not quiet:
        for broken in registry.broken:
            print(f"warning: {broken}; it is left out", file=sys.stderr)
    return registry


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = _registry(args, quiet=True)
    for name, version in sorted(registry.plugins.items()):
        print(f"{name} {version}".rstrip())
        for spec in sorted((f for f in registry.functions.values() if f.plugin == name), key=lambda f: f.name):
            params = ", ".join(f"{p}: {t}" for p, t in spec.params) + (", …" if spec.variadic else "")
            print(f"  function  {spec.name}({params}) -> {spec.returns}")
            print(f"            {spec.description}")
            if spec.cite:
                print(f"            cites: {spec.cite}")
        for ind in sorted((i for i in registry.indicators.values() if i.plugin == name), key=lambda i: i.name):
            print(f"  indicator {ind.name}: {ind.returns}  (from {ind.source}: {ind.source_type})")
            print(f"            {ind.description}")
            if ind.cite:
                print(f"            cites: {ind.cite}")
    for broken in registry.broken:
        where = f"{broken.file}:{broken.line}" if broken.line else broken.file
        print(f"{broken.plugin} {broken.version}".rstrip() + "  BROKEN, left out")
        print(f"  {broken.reason}")
        if where:
            print(f"  at {where}")
    return 1 if registry.broken else 0


def cmd_check(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [Path(args.policies)]
    report = check_paths(paths, _registry(args), Path(args.policies), generate=args.timings)
    failing = bool(report.problems) or (args.strict and bool(report.warnings))
    if args.format == "json":  # for editors and CI: the whole report on standard output
        print(json.dumps({
            "ok": not failing,
            "policies": [{"id": p.id, "version": p.version, "extends": p.extends, "digest": p.digest}
                         for p in sorted(report.policies.values(), key=lambda p: p.id)],
            "errors": [_diagnostic_json(translate(d, args.lang)) for d in report.problems],
            "warnings": [_diagnostic_json(translate(d, args.lang)) for d in report.warnings],
            "acknowledged": [{**_diagnostic_json(d), "reason": d.hint} for d in report.acknowledged],
            **({"timings": dict(report.timings)} if args.timings else {})}, ensure_ascii=False, indent=1))
        return 1 if failing else 0
    _print_diagnostics(report.problems, report.warnings, sys.stderr, args.lang)
    for d in report.acknowledged:  # accepted by the policy: listed, never failing
        label = "diakui" if args.lang == "id" else "acknowledged"
        print(f"{d.span}: {label}[{d.code}]: {d.message} ({d.hint})" if d.span else
              f"{label}[{d.code}]: {d.message} ({d.hint})", file=sys.stderr)
    if args.timings:
        _print_timings(report.timings, args.lang)
    if failing:
        n, w = len(report.problems), len(report.warnings)
        if n:
            print(f"{n} galat" if args.lang == "id" else f"{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        else:  # --strict: a warning fails the check
            print(f"{w} peringatan (--strict)" if args.lang == "id" else
                  f"{w} warning{'s' if w != 1 else ''} (--strict)", file=sys.stderr)
        return 1
    for policy in sorted(report.policies.values(), key=lambda p: p.id):
        parent = f" (extends {policy.extends})" if policy.extends else ""
        print(f"ok  {policy.id} {policy.version}{parent}  {policy.digest[:12]}")
    return 0


def _diagnostic_json(d: Any) -> dict[str, Any]:
    span = d.span
    return {"code": d.code, "severity": d.severity, "message": d.message, "file": span.file if span else None,
            "line": span.line if span else None, "column": span.column if span else None, "hint": d.hint,
            "rendered": d.render()}


def _print_timings(timings: Mapping[str, float], lang: str) -> None:
    """The seconds each stage of the pipeline took, to standard error (standard output stays the result)."""
    stage, seconds, total = ("tahap", "detik", "jumlah") if lang == "id" else ("stage", "seconds", "total")
    rows = [*timings.items(), (total, sum(timings.values()))]  # in the pipeline's order
    print(f"{stage:<10} {seconds:>8}", file=sys.stderr)
    for name, value in rows:
        print(f"{name:<10} {value:>8.3f}", file=sys.stderr)


def cmd_test(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [Path(args.policies)]
    targets = {str(Path(p).resolve()) for p in args.paths}
    report = check_paths(paths, _registry(args), Path(args.policies))
    if report.problems:
        _print_diagnostics(report.problems, (), sys.stderr, args.lang)
        return 1
    failed = passed = 0
    for policy in sorted(report.policies.values(), key=lambda p: p.id):
        for result in run_all(policy, args.lang):
            file = str(Path(result.where.split(":")[0]).resolve())
            if targets and not any(file == t or file.startswith(t.rstrip("/") + "/") for t in targets):
                continue
            if result.ok:
                passed += 1
                if args.verbose:
                    print(say("test.pass", args.lang, case=f"{result.policy}::{result.case}"))
            else:
                failed += 1
                print(say("test.fail", args.lang, case=f"{result.policy}::{result.case}", where=result.where))
                print("  " + result.report.replace("\n", "\n  "))
    print(say("test.summary", args.lang, passed=passed, failed=failed))
    return 1 if failed else 0


def _records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line, record or ErrorInfo) from one JSON document, an array, or JSON Lines (see `bulk.Source`)."""
    for line, item, where in bulk.Source(stream).items():
        yield line, bulk.decode(item, line, where) if isinstance(item, bytes) else item


def _load_engine(policy_arg: str, policies: Path, registry: Registry) -> tuple[Engine, str]:
    """The engine for `kinerja eval POLICY`: an id in the policies folder, a policy file, or a region's folder."""
    as_path = Path(policy_arg)
    if as_path.suffix in (".yaml", ".yml") or as_path.is_file() or as_path.is_dir():
        if not as_path.exists():
            raise PolicyError([_diag(f"no such policy file: {as_path}")])
        own = _ids_in(as_path)
        if len(own) != 1:
            raise PolicyError([_diag(f"{as_path} must hold exactly one policy ('policy:' key), not "
                                     f"{', '.join(sorted(own)) or 'none'}")])
        return Engine.from_paths([as_path], registry, policies), own.pop()
    return Engine.for_policy(policy_arg, policies, registry), policy_arg


def _ids_in(path: Path) -> set[str]:
    from kinerja_rules.documents import declared_id
    from kinerja_rules.loader import iter_policy_files

    found = set()
    for file in iter_policy_files(path):
        declared = declared_id(file.read_text(encoding="utf-8", errors="replace"))
        if declared is not None:
            found.add(declared)
    return found


def _diag(message: str) -> Any:
    from kinerja_rules.errors import Diagnostic

    return Diagnostic(code="E000", message=message)


MAX_BESIDE_BYTES = 64 * 1024 * 1024
"""The largest groups or seats file `kinerja eval` reads."""


def _beside(path: str, what: str) -> Any:
    """The groups or seats file of a population run, read whole; raises ValueError saying why not."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BESIDE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_BESIDE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_BESIDE_BYTES} bytes")
    value = bulk.decode(raw, 0, f" in {path}")
    if isinstance(value, ErrorInfo):
        raise ValueError(value.message)
    if what == "groups" and not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object: each group's key to its data")
    if what == "seats" and not isinstance(value, list):
        raise ValueError(f"{path} must hold a JSON list of seat objects, each with an id")
    return value


def cmd_eval(args: argparse.Namespace) -> int:  # noqa: C901
    args.book_lang = args.lang or "id"  # a workbook is for people: Indonesian unless --lang says otherwise
    args.lang = args.lang or language()
    engine, policy_id = _load_engine(args.policy, Path(args.policies), _registry(args))
    policy = engine.policy(policy_id)
    as_of = args.as_of
    population = args.groups is not None or args.seats is not None or args.report is not None \
        or args.calibration is not None
    groups = seats = None
    if population:
        try:
            groups = _beside(args.groups, "groups") if args.groups is not None else None
            seats = _beside(args.seats, "seats") if args.seats is not None else None
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if policy.population is None:
            print(f"error: policy {policy_id!r} has no population stage; --groups, --seats, --report and "
                  "--calibration are for policies that decide over groups", file=sys.stderr)
            return 2
        if args.calibration is not None and not (policy.population.quotas and args.calibration.endswith(".xlsx")):
            print("error: --calibration writes an .xlsx workbook, for a policy with a quota (the kurva distribusi)",
                  file=sys.stderr)
            return 2
    elif args.sorted_by_group:
        print("error: --sorted-by-group is for a population run (--groups)", file=sys.stderr)
        return 2
    stream: IO[bytes]
    if args.input in (None, "-"):
        stream = sys.stdin.buffer
    else:
        try:
            stream = open(args.input, "rb")
        except OSError as exc:
            print(f"error: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
            return 2
    jobs = 1 if args.record is not None else args.jobs or bulk.default_jobs()  # kept decisions: in this process
    try:
        items, source = _items(args.input, stream, policy, parts=jobs > 1 and not population, args=args)
        sink = _sink(args, policy)
    except formats.TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _close(stream)
        return 2
    recorder = None
    if args.record is not None:
        from kinerja_rules.store import StoreError  # the store (and asyncio) only when used

        try:
            recorder = _Recorder(_open_store(args, args.record), policy)
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            _close(stream)
            return 2
    out: Any = sink if recorder is None else recorder.hold(sink)
    try:
        if population:
            assert not isinstance(items, bulk.Parts)  # a population is read here, whole groups at a time
            return _eval_population(args, engine, policy, items, groups, seats, recorder, out)
        try:
            size = os.fstat(stream.fileno()).st_size if stream is not sys.stdin.buffer else None
        except (OSError, ValueError):
            size = None
        progress = bulk.Progress(sys.stderr if sys.stderr.isatty() and not args.explain_text else None, size,
                                 source)
        task = bulk.Task(policy_id, as_of, args.explain, args.explain_text, args.unknown_fields, args.lang)
        failures = bulk.run(engine, task, items, out.write, jobs, keep=recorder.keep if recorder is not None else None,
                            progress=progress, plugins=args.plugins or ())
        progress.done(failures)
    except formats.TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        _close(stream)
        try:
            if recorder is not None:
                recorder.close()  # what is held is written once it is kept
        finally:
            sink.close()
    return 1 if failures else 0


def _close(stream: IO[bytes]) -> None:
    if stream is not sys.stdin.buffer:
        stream.close()


def _items(path: str | None, stream: IO[bytes], policy: CompiledPolicy, parts: bool = False,
           args: argparse.Namespace | None = None) -> tuple[Iterator[Any] | bulk.Parts, bulk.Source | None]:
    """The records of `--input`, read as its extension says: CSV (either dialect), a workbook,
    Parquet, or JSON (any other). With `parts`, a table is cut into parts that the worker processes
    read themselves; with `--input-list`, each record's list of records is joined in from its file."""
    from kinerja_rules import sheets

    suffix = Path(path).suffix.lower() if path not in (None, "-") else ""
    lists = {}
    for given in (getattr(args, "input_list", None) or []):
        list_path, _, where = given.partition("=")
        file, _, sheet = where.partition("#")
        lists[list_path] = sheets.list_rows(file, policy, list_path, sheet or None, getattr(args, "csv_dialect", None))
    if suffix == ".xlsx":
        assert path is not None
        lists.update(sheets.sheet_lists(path, policy, list(lists)))
        found: Iterator[Any] = sheets.xlsx_items(path, policy, getattr(args, "sheet", None))
        return (sheets.joined(found, policy, lists) if lists else found), None
    if suffix == ".csv":
        dialect = sheets.dialect_of(_peek_line(stream), getattr(args, "csv_dialect", None))
        if dialect == "excel-id" or lists:
            return sheets.joined(sheets.csv_id_items(stream, policy, dialect), policy, lists), None
        return (bulk.Parts(csv_parts(stream)) if parts else formats.csv_items(stream, policy)), None
    if suffix == ".parquet":
        assert path is not None
        return (bulk.Parts(parquet_parts(path)) if parts else formats.parquet_items(path)), None
    source = bulk.Source(stream)
    return source.items(), source


def _peek_line(stream: IO[bytes]) -> str:
    """The first line of `stream` (at most 64 KiB of it), left to be read again."""
    peek = getattr(stream, "peek", None)
    head = peek(65536)[:65536] if peek is not None else b""
    return head.split(b"\n", 1)[0].decode("utf-8-sig", "replace")


def _sink(args: argparse.Namespace, policy: CompiledPolicy) -> formats.Sink:
    if args.output is not None and args.explain_text:
        raise formats.TableError("--explain-text prints text for people: it goes to standard output, not --output")
    from kinerja_rules import workbook

    return workbook.sink(args.output, sys.stdout.buffer, policy, args.explain, args.book_lang, args.labels)


class _Recorder:
    """`kinerja eval --record`: each decision kept in the store; what is printed is held until the
    decisions it shows are committed (a thousand at a time)."""

    def __init__(self, store: Any, policy: CompiledPolicy, run: Any = None) -> None:
        self.store, self.policy, self.run = store, policy, run
        self.rows: list[Any] = []
        self.lines: list[bytes] = []
        self.out: Any = None
        self.run_kept = False

    def keep(self, decision: Any, record: Any) -> Any:
        """`decision` with its id, its row made by the sink the service keeps its decisions through."""
        from kinerja_rules.recording import Recording

        return Recording(run_id=None if self.run is None else self.run.id).keep(decision, record, self.rows)

    def hold(self, out: Any) -> _Recorder:
        self.out = out
        return self

    def write(self, data: bytes) -> None:
        self.lines.append(data)
        if len(self.rows) >= 1000:
            self.flush()

    def flush(self) -> None:
        from kinerja_rules.recording import source_of

        if self.rows:
            runs = [self.run] if self.run is not None and not self.run_kept else []  # a run is kept once
            self.store.put_rows(self.rows, [source_of(self.policy)], runs)
            self.run_kept = self.run_kept or bool(runs)
        self.rows = []
        if self.out is not None:
            self.out.write(b"".join(self.lines))
            self.out.flush()
        self.lines = []

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.store.close()


def _eval_population(args: argparse.Namespace, engine: Engine, policy: CompiledPolicy, items: Iterator[Any],  # noqa: C901
                     groups: Any, seats: Any, recorder: _Recorder | None, out: Any) -> int:
    """`kinerja eval --groups`: decisions in input order (standard output, or --output), a group report
    per line to --report."""
    from kinerja_rules.deciding import Intake, decide_population

    lines: list[int] = []
    wheres: list[str] = []

    def texts() -> Iterator[Any]:
        for line, raw, where in items:
            lines.append(line)
            wheres.append(where)
            yield raw

    intake = Intake(unreadable=lambda i, unread: bulk.unreadable(unread, lines[i], wheres[i]))
    if recorder is not None:
        from kinerja_rules.store import IDS, Run

        recorder.run = Run(id=IDS.next(), made_at=dt.datetime.now(dt.UTC), policy_id=policy.id,
                           policy_digest=policy.digest, groups=groups, seats=seats, as_of=args.as_of)

    report: IO[bytes] | None = None
    reports: list[dict[str, Any]] | None = None  # for a workbook, written once the run is decided
    if args.report is not None:
        suffix = Path(args.report).suffix.lower()
        if suffix not in (".jsonl", ".json", ".xlsx"):
            print(f"error: --report {args.report}: group reports are written as JSON Lines (.jsonl) or as a "
                  "workbook (.xlsx)", file=sys.stderr)
            return 2
        try:
            report = open(args.report, "wb")
        except OSError as exc:
            print(f"error: cannot write {args.report}: {exc.strerror}", file=sys.stderr)
            return 2
        if suffix == ".xlsx":
            reports = []
    failures = position = 0
    proposals: list[dict[str, Any]] = []
    try:
        for item in decide_population(engine, policy.id, texts(), groups, seats, args.as_of,
                                      args.explain or args.explain_text, args.unknown_fields, args.sorted_by_group,
                                      intake):
            if isinstance(item, GroupReport):
                if reports is not None:
                    reports.append(msgspec.to_builtins(item))
                elif report is not None:
                    report.write(ENCODER.encode(item) + b"\n")
                if args.calibration is not None and item.group is not None:
                    proposals.append(_proposal(item))
                continue
            record, result = item
            line = lines[position]
            position += 1
            if isinstance(result, ErrorResult):
                failures += 1
                if result.error.line is None:
                    result = msgspec.structs.replace(result, error=msgspec.structs.replace(result.error, line=line))
                result = msgspec.structs.replace(result, error=in_language(result.error, args.lang, policy))
                out.write(to_json(result) + b"\n")
            else:
                if recorder is not None:
                    result = recorder.keep(result, record)
                if args.explain_text:
                    sys.stdout.write(explain_text(result, policy=policy, lang=args.lang) + "\n\n")
                    sys.stdout.flush()
                else:
                    out.write(to_json(result) + b"\n")
    except PopulationInputError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(exc, PenetapanError) else 2
    finally:
        if report is not None:
            report.close()
    if reports is not None:
        from kinerja_rules import workbook

        try:
            workbook.report_workbook(args.report, policy, reports, args.book_lang)
        except formats.TableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.calibration is not None:
        written = calibration_sheet.write(args.calibration, policy, proposals, args.book_lang)
        print(f"{args.calibration}: {written} members in {len(proposals)} units", file=sys.stderr)
    return 1 if failures else 0


def _proposal(report: GroupReport) -> dict[str, Any]:
    """A group's usulan as the calibration workbook lists it: under `propose` the engine's, else each
    member's predikat as the quota left it (a leader may still fix it)."""
    shown: dict[str, Any] = msgspec.to_builtins(report)
    return shown if report.usulan is not msgspec.UNSET else {**shown, "usulan": []}


def cmd_penetapan(args: argparse.Namespace) -> int:
    """`kinerja penetapan SHEET`: the leader's filled calibration workbook into the group data."""
    try:
        groups = _beside(args.groups, "groups")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        out = calibration_sheet.read_penetapan(args.sheet, groups, args.nomor, args.tanggal, args.oleh)
    except calibration_sheet.SheetError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    text = json.dumps(out, ensure_ascii=False, indent=2) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        units = sum(1 for data in out.values() if "penetapan" in data)
        print(f"{args.output}: the penetapan of {units} units", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """`kinerja replay ID`: decide a recorded decision again; with --set, an appeal."""
    from kinerja_rules.recording import Replayer, ReplayError, source_of, traces_of
    from kinerja_rules.store import StoreError  # the store (and asyncio) only when used

    values = dict(args.set or [])
    try:
        store = _open_store(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        decision_id = args.id or _find_one(store, args)
        if decision_id is None:
            return 2
        replayer = Replayer(store, _registry(args))
        original = replayer.record(decision_id)
        if any(name not in original.redacted for name in values):
            outcome, new = replayer.appeal(decision_id, values, alasan=args.alasan)
            if new is None:
                error = outcome.answer().get("error")
                said = "; ".join([error.message, *(f"{f.path}: {f.message}" for f in error.fields)]) if error else ""
                print(f"error: the amended record was not decided: {said or '; '.join(outcome.notes)}",
                      file=sys.stderr)
                return 1
            engine, _ = replayer.compiled(original.policy_digest)
            assert engine is not None
            store.put_rows([_row(new)], [source_of(engine.policy(original.policy_id))])
            names = [d["output"] for d in outcome.differences]
            answer: dict[str, Any] = {"decision_id": new.id, "appeal_of": original.id,
                                      "identical": not outcome.differences, "differences": outcome.differences,
                                      "traces": traces_of(outcome.before, outcome.result, names)}
            if outcome.notes:
                answer["notes"] = outcome.notes
            sys.stdout.buffer.write(ENCODER.encode(answer) + b"\n")
            return 0
        replayed = replayer.replay(decision_id, values, args.explain)
        sys.stdout.buffer.write(ENCODER.encode(replayed.answer()) + b"\n")
        return 0 if replayed.identical else 1
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def cmd_keberatan(args: argparse.Namespace) -> int:
    """`kinerja keberatan beritahu|ajukan|putus|list|show`: the keberatan steps over the decision store."""
    from kinerja_rules.keberatan import WIT, Desk, KeberatanError, Who, recorded_on
    from kinerja_rules.recording import Replayer, ReplayError
    from kinerja_rules.store import StoreError

    try:
        store = _open_store(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        desk = Desk(store, Replayer(store, _registry(args)))
        today = {"tanggal": args.tanggal or dt.datetime.now(WIT).date()}
        if args.action == "list":
            found = store.find_keberatan(policy_id=args.policy, nip=args.nip, status=args.status, limit=args.limit)
            if args.format == "json":
                sys.stdout.buffer.write(b"".join(ENCODER.encode(k) + b"\n" for k in found))
            else:
                columns = ("keberatan_id", "status", "nip", "periode", "tanggal", "batas", "decision_id")
                print("\t".join(columns))
                for entry in found:
                    print("\t".join(str(entry.get(c, "")) for c in columns))
            return 0
        if args.action in ("show", "putus"):
            entry = store.keberatan(args.id) if args.id else _latest_keberatan(store, args)
            if entry is None:
                print(f"error: no keberatan {args.id or 'of nip ' + str(args.nip)} is recorded", file=sys.stderr)
                return 2 if args.id or args.nip is None else 1
            if args.action == "show":
                sys.stdout.buffer.write(ENCODER.encode(entry) + b"\n")
                return 0
            body = {"diputus_oleh": args.oleh, **today, "hasil": args.hasil, "alasan": args.alasan,
                    "set": dict(args.set or []) or None}
            answer = desk.decide(entry, body, Who()).answer()
        else:
            decision_id = args.id or _find_one(store, args)
            if decision_id is None:
                return 2
            record = desk.replayer.record(decision_id)
            if args.action == "beritahu":
                answer = desk.notify(record, args.tanggal or recorded_on(record), Who())
            else:
                body = {"diajukan_oleh": args.oleh, **today, "alasan": args.alasan, "bukti": args.bukti or []}
                filed = desk.file(record, body, Who())
                answer = {k: filed[k] for k in ("keberatan_id", "status", "batas")}
        sys.stdout.buffer.write(ENCODER.encode(answer) + b"\n")
        return 0
    except KeberatanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ReplayError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def cmd_surat(args: argparse.Namespace) -> int:
    """`kinerja surat ID` (a recorded decision) or `kinerja surat POLICY --input record.json`: the letter."""
    from kinerja_rules import surat
    from kinerja_rules.keberatan import WIT, deadline

    kind = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "html")
    if kind not in ("html", "pdf"):
        print(f"error: --output {args.output}: a letter is .html or .pdf (or say --format)", file=sys.stderr)
        return 2
    if args.target is None or _UUID_TEXT.fullmatch(args.target):
        made = _stored_letter(args)
        if made is None:
            return 2
        policy, letter = made
    else:
        if args.input is None:
            print("error: a letter of a record not recorded needs --input FILE (one record, JSON)", file=sys.stderr)
            return 2
        engine, policy_id = _load_engine(args.target, Path(args.policies), _registry(args))
        policy = engine.policy(policy_id)
        record = _one_record(args.input)
        if record is None:
            return 2
        decision = engine.evaluate(policy_id, record, args.as_of, explain=True)
        letter = surat.Letter(decision=decision, record=record,
                              deadline=deadline(policy, dt.datetime.now(WIT).date(), "pemberitahuan"),
                              goal=surat.nearest(engine, policy_id, record, decision, args.what_if_seconds))
    page = surat.render(policy, letter, args.lang)
    try:
        data = surat.pdf(page) if kind == "pdf" else page.encode("utf-8")
    except surat.SuratError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _write_out(data, args.output)


def cmd_what_if(args: argparse.Namespace) -> int:
    """`kinerja what-if POLICY --input record.json --goal OUTPUT=VALUE`: the nearest change that reaches it."""
    from kinerja_rules.whatif import WhatIfError, goal_of, what_if

    engine, policy_id = _load_engine(args.policy, Path(args.policies), _registry(args))
    record = _one_record(args.input)
    if record is None:
        return 2
    output, _, wanted = args.goal.partition("=")
    try:
        goal = goal_of(engine, policy_id, {"output": output, "at_least": wanted})
        found = what_if(engine, policy_id, record, goal, args.as_of, args.what_if_seconds)
    except WhatIfError as exc:
        print(f"error: --goal {exc}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(ENCODER.encode(found.answer()) + b"\n")
    return 0 if found.reachable is True else 1


def cmd_template(args: argparse.Namespace) -> int:
    """`kinerja template POLICY --output formulir.xlsx`: the form an HR office fills for `kinerja eval`."""
    from kinerja_rules import sheets

    if Path(args.output).suffix.lower() != ".xlsx":
        print(f"error: --output {args.output}: a form is a workbook (.xlsx)", file=sys.stderr)
        return 2
    engine, policy_id = _load_engine(args.policy, Path(args.policies), _registry(args))
    try:
        sheets.write_form(args.output, engine.policy(policy_id), args.lang)
    except formats.TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _one_record(path: str) -> dict[str, Any] | None:
    """The one record (a JSON object) in `path`; None, having said why, when there is none."""
    try:
        record = _beside(path, "record")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not isinstance(record, dict):
        print(f"error: {path} must hold one record (a JSON object)", file=sys.stderr)
        return None
    return record


def _stored_letter(args: argparse.Namespace) -> Any:
    from kinerja_rules.keberatan import Desk
    from kinerja_rules.recording import Replayer, ReplayError
    from kinerja_rules.store import StoreError
    from kinerja_rules.surat import SuratError, stored_letter

    try:
        store = _open_store(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    try:
        desk = Desk(store, Replayer(store, _registry(args)))
        decision_id = args.target or _find_one(store, args)
        return None if decision_id is None else stored_letter(desk, desk.replayer.record(decision_id),
                                                              args.what_if_seconds)
    except (ReplayError, SuratError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    finally:
        store.close()


def _latest_keberatan(store: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """The latest keberatan of --nip (in --periode, of --policy)."""
    if args.nip is None:
        return None
    found, after = None, None
    while True:
        page = store.find_keberatan(policy_id=args.policy, nip=args.nip, limit=1000, after=after)
        if not page:
            return found
        after = page[-1]["keberatan_id"]
        found = next((k for k in reversed(page) if args.periode in (None, k.get("periode"))), found)


def _row(record: Any) -> Any:
    from kinerja_rules.store import row_of

    return row_of(record)


def _find_one(store: Any, args: argparse.Namespace) -> str | None:
    """The latest recorded decision of --nip in --periode (of --policy), for an officer who knows the person."""
    if args.nip is None:
        print("error: name the decision: its id, or --nip NIP (with --periode and --policy to narrow it)",
              file=sys.stderr)
        return None
    found, after = None, None
    while True:
        page = store.find(policy_id=args.policy, nip=args.nip, periode=args.periode, limit=1000, after=after)
        if not page:
            break
        found, after = page[-1], page[-1].id
    if found is None:
        print(f"error: no decision of nip {args.nip}" + (f" in {args.periode}" if args.periode else "")
              + (f" under {args.policy}" if args.policy else "") + " is recorded", file=sys.stderr)
        return None
    return str(found.id)


def _engine_at(where: str, policy_id: str, registry: Registry, args: argparse.Namespace) -> Engine:
    """The policies of `where`: a policies folder, or the digest of a version archived in the decision store."""
    if re.fullmatch(r"[0-9a-f]{64}", where) and not Path(where).exists():
        from kinerja_rules.engine import SourceGroup

        store = _open_store(args)
        try:
            source = store.source(where)
        finally:
            store.close()
        if source is None:
            raise KinerjaError(f"no policy version with digest {where} is archived in the decision store")
        if source.policy_id != policy_id:
            raise KinerjaError(f"digest {where[:12]}… is a version of {source.policy_id}, not {policy_id}")
        return Engine.from_groups([SourceGroup(source.files, (policy_id,))], registry)
    if not Path(where).is_dir():
        raise KinerjaError(f"{where} is not a policies folder (nor the digest of an archived version)")
    engine = Engine.from_paths([Path(where)], registry)
    engine.policy(policy_id)  # an unknown id says which ids there are
    return engine


def _write_out(data: bytes, output: str | None) -> int:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _format(args: argparse.Namespace, allowed: tuple[str, ...]) -> str | None:
    """The format --format names, else --output's extension; None (having said why) for an extension
    this command cannot write: never one format in a file named for another."""
    if args.format is not None:
        return str(args.format)
    if not args.output:
        return "json"
    suffix = Path(args.output).suffix.lstrip(".").lower()
    if suffix in allowed:
        return suffix
    print(f"error: --output {args.output}: this command writes {', '.join('.' + a for a in allowed)} (the "
          "extension says which), or give --format", file=sys.stderr)
    return None


def cmd_impact(args: argparse.Namespace) -> int:
    """`kinerja impact`: the same records under two versions of a policy, compared."""
    from kinerja_rules.impact import impact, render
    from kinerja_rules.store import StoreError  # the store (and asyncio) only when used

    registry = _registry(args)
    try:
        base = _engine_at(args.base, args.policy, registry, args)
        proposed = _engine_at(args.proposed, args.policy, registry, args)
        groups = _beside(args.groups, "groups") if args.groups is not None else None
        seats = _beside(args.seats, "seats") if args.seats is not None else None
    except (ValueError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        stream: IO[bytes] = sys.stdin.buffer if args.input in (None, "-") else open(args.input, "rb")
    except OSError as exc:
        print(f"error: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 2
    with stream:
        records = [(line, ErrorResult(error=item) if isinstance(item, ErrorInfo) else item)
                   for line, item in _records(stream)]
    try:
        report = impact(base, proposed, args.policy, records, groups, seats, args.as_of, args.explain)
    except PopulationInputError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 2
    fmt = _format(args, ("json", "csv", "html"))
    if fmt is None:
        return 2
    return _write_out(render(report.report(), report.rows, fmt), args.output)


def cmd_rapel(args: argparse.Namespace) -> int:
    """`kinerja rapel`: back pay owed when a policy signed late takes effect from an earlier month."""
    from kinerja_rules.impact import RAPEL_COLUMNS, rapel_entries, rapel_report, to_csv
    from kinerja_rules.store import StoreError  # the store (and asyncio) only when used

    if args.to < args.since:
        print(f"error: --to {args.to} is before --from {args.since}", file=sys.stderr)
        return 2
    registry = _registry(args)
    try:
        proposed = _engine_at(args.proposed, args.policy, registry, args)
        store = _open_store(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        entries = rapel_entries(store, proposed, args.policy, (args.since, args.to))
    finally:
        store.close()
    fmt = _format(args, ("json", "csv"))
    if fmt is None:
        return 2
    if fmt == "csv":
        return _write_out(to_csv(entries, RAPEL_COLUMNS).encode(), args.output)
    report = rapel_report(iter(entries), args.policy, proposed.policy(args.policy).ref, (args.since, args.to))
    return _write_out(ENCODER.encode(report) + b"\n", args.output)


def cmd_new(args: argparse.Namespace) -> int:
    from kinerja_rules.scaffold import ScaffoldError, new_region

    try:
        written = new_region(args.region, Path(args.policies), args.title, args.lang)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(say("scaffold.wrote", args.lang, path=path))
    folder = written[0].parent
    where = "" if Path(args.policies) == DEFAULT_POLICIES else f" --policies {args.policies}"
    print(say("scaffold.next", args.lang, folder=folder, where=where))
    return 0


def _unknown_fields_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unknown-fields", choices=UNKNOWN_FIELDS, metavar="RULE",
                   help="what a record's field the policy does not declare is, for every policy: warn (listed in "
                        "the decision's warnings), error or ignore (default: each policy's unknown_fields, else "
                        "warn); a near miss of a declared name is an error unless ignore")


def cmd_serve(args: argparse.Namespace) -> int:
    from kinerja_rules.server.bodies import Limits
    from kinerja_rules.server.guard import ConnectionLimits
    from kinerja_rules.server.serve import Settings, serve

    limits = Limits(max_body_bytes=args.max_body_bytes, max_batch=args.max_batch, max_depth=args.max_depth,
                    max_list_items=args.max_list_items, max_response_bytes=args.max_response_bytes,
                    max_explain_batch=args.max_explain_batch, unknown_fields=args.unknown_fields,
                    what_if_seconds=args.what_if_seconds)
    connections = ConnectionLimits(max_header_bytes=args.max_header_bytes, max_headers=args.max_headers,
                                   header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                                   max_connections=args.max_connections)
    return serve(Settings(policies=[args.policies], plugins=list(args.plugins or ()), host=args.host, port=args.port,
                          workers=args.workers, keys_file=args.keys, allow_unauthenticated=args.allow_unauthenticated,
                          access_log=not args.no_access_log, limits=limits, connections=connections,
                          graceful_timeout=args.graceful_timeout, batch_processes=args.batch_processes,
                          validate_processes=args.validate_processes, validate_seconds=args.validate_seconds,
                          work_seconds=args.work_seconds, max_work=args.max_work, store_timeout=args.store_timeout,
                          public_metrics=args.public_metrics, cors_origins=args.cors_origin,
                          plugin_call_seconds=args.plugin_call_seconds, store=_store_location(args),
                          redact=list(args.redact), retention_days=args.retention_days))


def _store_location(args: argparse.Namespace) -> str | None:
    """Where decisions are recorded: --store DSN, else --data DIR, else the default data directory."""
    from kinerja_rules.store import default_data_dir  # the store (and asyncio) only when used

    if getattr(args, "no_store", False):
        return None
    if args.store is not None:
        return str(args.store)
    return str(args.data if args.data is not None else default_data_dir())


def _person_options(p: argparse.ArgumentParser, nip_help: str, nip_type: Any,
                    policy_help: str = "with --nip: under this policy") -> None:
    """--nip, --periode and --policy: a recorded decision found by the person it is for."""
    p.add_argument("--nip", type=nip_type, help=nip_help)
    p.add_argument("--periode", type=_month, metavar="YYYY-MM", help="with --nip: of this month")
    p.add_argument("--policy", metavar="ID", help=policy_help)


def _store_options(p: argparse.ArgumentParser, serving: bool = False) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--data", metavar="DIR", help="the data directory of the decision store (SQLite, made on first "
                                                     "use; default: $KINERJA_DATA, else kinerja-data/ here)")
    where.add_argument("--store", type=_dsn, metavar="DSN",
                       help="a PostgreSQL decision store, such as postgresql://kinerja@db.example/kinerja")
    if serving:
        where.add_argument("--no-store", action="store_true",
                           help="record no decisions (they cannot be looked up, replayed or appealed)")


def cmd_key(args: argparse.Namespace) -> int:
    from kinerja_rules.server.auth import hash_key, new_key

    key = new_key()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()] if args.policies else []
    if not policies and not args.admin:
        print("error: give --policies (ids, or '*') or --admin", file=sys.stderr)
        return 2
    print(f"# the key, for {args.name} only (it is not stored anywhere):", file=sys.stderr)
    print(key, file=sys.stderr)
    print("# add this entry under 'keys:' in the server's key file:", file=sys.stderr)
    entry = {"name": args.name, "sha256": hash_key(key), "policies": policies,
             **({"admin": True} if args.admin else {})}
    print("  - " + msgspec.json.encode(entry).decode())
    return 0


def _whole(low: int, high: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {low}–{high}, not {value}" if high is not None
                                             else f"must be at least {low}, not {value}")
        return value
    return parse


_positive = _whole(1)


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")


def _origin(text: str) -> str:
    if not _ORIGIN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not an origin: scheme and host, such as "
                                         "https://portal.example.go.id (no path, no trailing /)")
    return text


def _dsn(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://")) or len(text) > 2000:
        raise argparse.ArgumentTypeError("a PostgreSQL DSN such as postgresql://kinerja@db.example/kinerja "
                                         "(for a SQLite store, give its data directory with --data)")
    return text


def _month(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a month: YYYY-MM, such as 2025-01")
    return text


def _assignment(text: str) -> tuple[str, Any]:
    """`perilaku.atasan=85`: a field's dotted name and its value (JSON if it reads as JSON, else text)."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: write FIELD=VALUE, such as perilaku.atasan=85")
    if len(raw) > 10_000:
        raise argparse.ArgumentTypeError(f"{name[:80]}: the value is longer than 10000 characters")
    try:
        value = _decoder().decode(raw.encode("utf-8", "surrogateescape")) if raw else ""
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        value = raw
    return name, value


def _open_store(args: argparse.Namespace, location: str | None = None) -> Any:
    from kinerja_rules.store import open_store

    return open_store(str(location or _store_location(args)))


def _goal(text: str) -> str:
    output, sep, wanted = text.partition("=")
    if not sep or not output or not wanted or len(text) > 200:
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: write OUTPUT=VALUE, such as evaluasi.predikat=baik")
    return text


def _what_if_seconds(text: str) -> float:
    value = _seconds(text)
    if value > 60:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: a what-if search has at most 60 seconds")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text) if len(text) <= 12 else math.nan
    except ValueError:
        value = math.nan
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number of seconds from 0.1 to 3600")
    return value


def _bounded_text(text: str) -> str:
    if not text.strip() or len(text) > 200:
        raise argparse.ArgumentTypeError("must be a text of 1 to 200 characters")
    return text.strip()


def _reason(text: str) -> str:
    if not text.strip() or len(text) > 4000:
        raise argparse.ArgumentTypeError("must be a text of 1 to 4000 characters")
    return text.strip()


def _nip(text: str) -> str:
    if not re.fullmatch(r"[0-9]{18}", text):
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a NIP (18 digits)")
    return text


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kinerja", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rules as code for ASN performance, TPP and placement: check, test and evaluate policies.",
        epilog="examples:\n  kinerja check\n  kinerja test\n"
               "  kinerja eval nasional --input examples/pegawai.json --explain\n\n"
               "Run `kinerja COMMAND --help` for a command's options.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--lang", dest="lang_before", choices=LANGUAGES, type=str.lower,
                     help="the language of messages and help, for any command: en or id (default: $KINERJA_LANG, "
                          "else en)")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("check", help="load and check policies, print diagnostics", epilog=_EPILOG_CHECK,
                       formatter_class=fmt, description="Load, type-check and compile policies. Exit code 1 on errors.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="policy files or folders (default: policies/)")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR",
                   help="where the parents of the policies checked are found (default: policies/)")
    p.add_argument("--timings", action="store_true",
                   help="print the seconds each stage took (load, documents, assemble, check, compile: the "
                        "evaluation code is generated too) to standard error")
    p.add_argument("--strict", action="store_true",
                   help="warnings fail the check too (exit 1), except those a policy acknowledges under 'allow'")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="json: the whole report (policies, errors, warnings) as one JSON object on standard output")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("eval", help="evaluate records against a policy", epilog=_EPILOG_EVAL, formatter_class=fmt,
                       description="Evaluate employee records and print one decision per record.")
    p.add_argument("policy", metavar="POLICY",
                   help="a policy id in the policies folder, a policy file, or a region's folder")
    p.add_argument("--input", "-i", metavar="FILE",
                   help="the records: JSON, a JSON array or JSON Lines, or by its extension .csv, .xlsx or .parquet "
                        "(columns by dotted name or by the policy's label); '-' or omitted: standard input (JSON)")
    p.add_argument("--sheet", metavar="NAME", help="with --input FILE.xlsx: the sheet to read (default: the first)")
    p.add_argument("--csv-dialect", choices=("excel", "excel-id"),
                   help="a CSV file's dialect: excel (',' and a decimal point) or excel-id (';' and a decimal comma, "
                        "as Excel writes with Indonesian settings); default: from the header line's delimiter")
    p.add_argument("--input-list", action="append", metavar="PATH=FILE[#SHEET]",
                   help="a list of records (such as skp.indikator=indikator.csv) read from a file or sheet of its "
                        "own, each row naming its record by the subject (nip, periode); repeatable")
    p.add_argument("--as-of", type=_date, metavar="DATE",
                   help="decide as of this date (default: the first day of the record's period)")
    p.add_argument("--explain", action="store_true", help="add a trace of how each output was reached")
    p.add_argument("--explain-text", action="store_true", help="print the trace as readable text instead of JSON")
    p.add_argument("--labels", action="store_true", help="with --output FILE.csv: the policy's labels as headers and "
                   "values (as the .xlsx workbook shows them), for people; without it CSV keeps machine names")
    p.add_argument("--groups", metavar="FILE",
                   help="a population run: a JSON object of each group's data by its key (for nasional, each "
                        'unit_kerja: {"predikat_organisasi": …}); the policy\'s kurva distribusi and group values '
                        "apply")
    p.add_argument("--seats", metavar="FILE", help="a population run with an assignment: a JSON list of seats (posts), "
                                                   "each with an id")
    p.add_argument("--report", metavar="FILE", help="write a report per group: one JSON object per line (.jsonl), "
                                                    "or a workbook for people (.xlsx)")
    p.add_argument("--calibration", metavar="FILE.xlsx",
                   help="a population run: write the calibration meeting's workbook, each unit's members ranked with "
                        "predikat_awal and the usulan, and empty columns predikat_ditetapkan and alasan for the "
                        "leader (read back with `kinerja penetapan`)")
    p.add_argument("--sorted-by-group", action="store_true",
                   help="the input is sorted by group: hold one group at a time (memory follows the largest group)")
    _unknown_fields_option(p)
    p.add_argument("--jobs", "-j", type=_whole(1, 1024), metavar="N",
                   help="processes that decide records (default: one per CPU); the output is the same for any N, "
                        "in input order. A population run, and a run with --record, is decided in one")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the decisions to FILE, in the format its extension names: .jsonl, .json (an array), "
                        ".csv, .parquet or .xlsx (default: JSON Lines on standard output)")
    p.add_argument("--record", metavar="DIR|DSN",
                   help="keep each decision in a decision store (a data directory, or a PostgreSQL DSN); each "
                        "printed decision carries its decision_id")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR",
                   help="where policies are found (default: policies/)")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("penetapan", help="the leader's filled calibration workbook into the group data",
                       formatter_class=fmt, epilog=_EPILOG_PENETAPAN,
                       description="Read a calibration workbook (from `kinerja eval --calibration`) whose "
                                   "predikat_ditetapkan and alasan columns the unit's leader filled, and write the "
                                   "group data with each unit's penetapan, for the population run that decides it.")
    p.add_argument("sheet", metavar="SHEET.xlsx", help="the filled calibration workbook")
    p.add_argument("--groups", required=True, metavar="FILE", help="the group data the run used (groups.json)")
    p.add_argument("--nomor", required=True, type=_bounded_text, help="the penetapan's number")
    p.add_argument("--tanggal", required=True, type=_date, metavar="YYYY-MM-DD", help="the day it was signed")
    p.add_argument("--oleh", required=True, type=_nip, metavar="NIP", help="the NIP of the leader who signed it")
    p.add_argument("--output", "-o", metavar="FILE", help="where to write the group data (default: standard output)")
    p.set_defaults(run=cmd_penetapan)

    p = sub.add_parser("keberatan", help="an employee's keberatan against a recorded decision, and its putusan",
                       epilog=_EPILOG_KEBERATAN, formatter_class=fmt,
                       description="Keep when a recorded decision reached its employee (beritahu), file the "
                                   "employee's keberatan against it within its deadline (ajukan), give the final "
                                   "putusan (putus), and read them (list, show).")
    p.add_argument("action", choices=("beritahu", "ajukan", "putus", "list", "show"),
                   help="beritahu and ajukan name a decision; putus and show a keberatan")
    p.add_argument("id", nargs="?", metavar="ID", help="the decision_id (beritahu, ajukan) or keberatan_id (putus, "
                                                       "show); or find it with --nip")
    _person_options(p, "the person's latest decision (or keberatan), or list theirs", _nip,
                    "with --nip, or for list: under this policy")
    p.add_argument("--tanggal", type=_date, metavar="YYYY-MM-DD", help="the day of the step (default: today; for "
                                                                       "beritahu, the day the decision was recorded)")
    p.add_argument("--oleh", type=_nip, metavar="NIP", help="ajukan: the employee filing; putus: who decides")
    p.add_argument("--alasan", type=_reason, help="ajukan, putus: the reason")
    p.add_argument("--bukti", action="append", type=_reason, metavar="TEXT", help="ajukan: a piece of evidence "
                                                                                  "(repeatable)")
    p.add_argument("--hasil", choices=("ditolak", "diterima", "diubah"), help="putus: the outcome")
    p.add_argument("--set", action="append", type=_assignment, metavar="FIELD=VALUE",
                   help="putus diterima or diubah: a value the putusan changes (repeatable)")
    p.add_argument("--status", choices=("diajukan", "ditolak", "diterima", "diubah"), help="list: only these")
    p.add_argument("--limit", type=int, default=1000, help="list: at most this many (default: 1000)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="list: a table, or JSON lines")
    _store_options(p)
    p.set_defaults(run=cmd_keberatan)

    p = sub.add_parser("surat", help="the letter explaining a decision to its employee (HTML or PDF)",
                       epilog=_EPILOG_SURAT, formatter_class=fmt,
                       description="Write the letter (surat penjelasan) that explains one decision to the employee "
                                   "it is for, in plain Indonesian (--lang en: English): the predikat and why, the "
                                   "TPP line by line with each cut and its article, what is withheld, the follow-ups "
                                   "and until when to object. A PDF is printed by Chromium.")
    p.add_argument("target", nargs="?", metavar="ID|POLICY", help="a recorded decision's id, or a policy (with "
                                                                  "--input); or find the decision with --nip")
    _person_options(p, "the person's latest recorded decision (with --periode, --policy)", _nip)
    p.add_argument("--input", "-i", metavar="FILE", help="with a POLICY: the record (one JSON object)")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="with a POLICY: decide as of this day")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR", help="where policies are found")
    p.add_argument("--output", "-o", metavar="FILE", help="surat.html or surat.pdf (default: HTML on standard output)")
    p.add_argument("--format", choices=("html", "pdf"), help="html or pdf (default: from --output's suffix)")
    p.add_argument("--lang", choices=("id", "en"), default="id", help="the letter's language (default: id)")
    p.add_argument("--what-if-seconds", type=_what_if_seconds, default=1.0, metavar="SECONDS",
                   help="the time budget of the search for the nearest better result (default: 1)")
    _store_options(p)
    p.set_defaults(run=cmd_surat)

    p = sub.add_parser("template", help="the form (a workbook) an HR office fills for kinerja eval",
                       epilog=_EPILOG_TEMPLATE, formatter_class=fmt,
                       description="Write an input workbook for a policy: a column per field in order, headed by "
                                   "its label, with drop-downs of the enumerations' labels, number ranges and dates; "
                                   "a sheet per list of records (the SKP indicators); and the instructions.")
    p.add_argument("policy", metavar="POLICY", help="a policy id in the policies folder, a policy file or a folder")
    p.add_argument("--output", "-o", required=True, metavar="FILE.xlsx", help="where to write the form")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR", help="where policies are found")
    p.add_argument("--lang", choices=("id", "en"), default="id", help="the form's language (default: id)")
    p.set_defaults(run=cmd_template)

    p = sub.add_parser("what-if", help="what would it take: the nearest change that reaches a goal",
                       epilog=_EPILOG_WHAT_IF, formatter_class=fmt,
                       description="Search, exactly, for the fewest and smallest changes to the inputs the policy "
                                   "says a person can change (dapat_diubah:) that reach a goal: an ordered "
                                   "enumeration at least a value, or a number at least an amount. Exit code 1 when "
                                   "the goal is not reachable within the bounds, or not found within the budget.")
    p.add_argument("policy", metavar="POLICY", help="a policy id in the policies folder, a policy file or a folder")
    p.add_argument("--input", "-i", required=True, metavar="FILE", help="the record (one JSON object)")
    p.add_argument("--goal", required=True, type=_goal, metavar="OUTPUT=VALUE",
                   help="such as evaluasi.predikat=baik or tpp.diterima=4500000 (at least that)")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="decide as of this day")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR", help="where policies are found")
    p.add_argument("--what-if-seconds", type=_what_if_seconds, default=1.0, metavar="SECONDS",
                   help="the search's time budget (default: 1, at most 60); past it: unknown, or not optimal")
    p.set_defaults(run=cmd_what_if)

    p = sub.add_parser("replay", help="decide a recorded decision again, or appeal it", epilog=_EPILOG_REPLAY,
                       formatter_class=fmt, description="Decide a recorded decision again with the policy archived "
                       "with it and the same as_of, and say whether it comes out identical (exit code 1 when not). "
                       "With --set, an appeal: the record amended, decided again, and kept as a new decision "
                       "naming the original.")
    p.add_argument("id", nargs="?", metavar="ID", help="the decision_id (or find it with --nip)")
    _person_options(p, "the latest decision of this NIP (with --periode, --policy)", str)
    p.add_argument("--set", action="append", type=_assignment, metavar="FIELD=VALUE",
                   help="an amended input (repeatable), such as perilaku.atasan=85; also the value of a redacted field")
    p.add_argument("--explain", action="store_true", help="decide with a trace")
    p.add_argument("--alasan", type=_reason, help="with --set: why the decision is appealed (kept with it)")
    _store_options(p)
    p.set_defaults(run=cmd_replay)

    p = sub.add_parser("impact", help="what a policy change does: who moves, what it costs", epilog=_EPILOG_IMPACT,
                       formatter_class=fmt, description="Decide the same records under the base and the proposed "
                       "version of a policy and report the predikat transitions, TPP totals before and after per "
                       "unit, per kelas and overall, who is paid more, less or the same, the largest changes, and per "
                       "person each output that differs.")
    p.add_argument("--base", required=True, metavar="DIR|DIGEST",
                   help="the policies folder in force, or the digest of a version archived in the decision store")
    p.add_argument("--proposed", required=True, metavar="DIR", help="the policies folder with the change")
    p.add_argument("--policy", required=True, metavar="ID", help="the policy compared (such as nasional)")
    p.add_argument("--input", "-i", metavar="FILE",
                   help="the records: JSON, a JSON array or JSON Lines ('-': standard input)")
    p.add_argument("--groups", metavar="FILE", help="group data: the records are decided as a population")
    p.add_argument("--seats", metavar="FILE", help="seats of an assignment")
    p.add_argument("--as-of", type=_date, metavar="DATE", help="decide as of this date (default: each record's period)")
    p.add_argument("--format", choices=("json", "csv", "html"),
                   help="json (for services), csv (one row per person) or html (a report with charts, offline); "
                        "default: from --output's extension, else json")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")
    p.add_argument("--explain", action="store_true", help="per person, both traces of each output that differs")
    _store_options(p)
    p.set_defaults(run=cmd_impact)

    p = sub.add_parser("rapel", help="back pay owed under a policy signed late", epilog=_EPILOG_RAPEL,
                       formatter_class=fmt, description="Take the recorded decisions of the months given (the latest "
                       "of each person and month), decide them again under the proposed policy, and report per "
                       "person and month the TPP paid, due and the difference (whole rupiah), with totals per unit.")
    p.add_argument("--policy", required=True, metavar="ID", help="the policy whose decisions are taken")
    p.add_argument("--proposed", required=True, metavar="DIR", help="the policies folder with the new rule")
    p.add_argument("--from", dest="since", required=True, type=_month, metavar="YYYY-MM", help="the first month")
    p.add_argument("--to", required=True, type=_month, metavar="YYYY-MM", help="the last month")
    p.add_argument("--format", choices=("json", "csv"), help="json or csv (default: from --output, else json)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here (default: standard output)")
    _store_options(p)
    p.set_defaults(run=cmd_rapel)

    p = sub.add_parser("test", help="run the test cases policies carry", epilog=_EPILOG_TEST, formatter_class=fmt,
                       description="Run policy test cases; print a diff and the trace of each failure.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="policy files or folders (default: policies/)")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR",
                   help="where the parents of the policies tested are found (default: policies/)")
    p.add_argument("--verbose", "-v", action="store_true", help="list passing tests too")
    p.set_defaults(run=cmd_test)

    p = sub.add_parser("new", help="start a region's policy folder", formatter_class=fmt,
                       epilog="examples:\n  kinerja new contoh\n  kinerja new pesisir --title \"Kabupaten Pesisir\"\n",
                       description="Write policies/REGION/policy.yaml and tests.yaml, extending nasional, with "
                                   "comments showing how to override; they check and pass as written.")
    p.add_argument("region", metavar="REGION", help="the new policy id (lower case letters, digits, '-', '_')")
    p.add_argument("--title", help="the region's name as written in the title (default: from REGION)")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR",
                   help="the policies folder holding nasional (default: policies/)")
    p.set_defaults(run=cmd_new)

    p = sub.add_parser("plugins", help="list plugins and the functions and indicators they add",
                       formatter_class=fmt,
                       epilog="examples:\n  kinerja plugins\n  kinerja plugins --plugins examples/plugins\n",
                       description="List the loaded plugins, their versions, and every function and indicator.")
    p.set_defaults(run=cmd_plugins)
    p = sub.add_parser("serve", help="serve decisions over HTTP", formatter_class=fmt, epilog=_EPILOG_SERVE,
                       description="Serve the policies over HTTP (Litestar on uvicorn) until stopped (Ctrl-C or "
                                   "SIGTERM finish the requests in flight first).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_whole(0, 65535), default=8000, help="port to bind (default: 8000)")
    p.add_argument("--policies", default=str(DEFAULT_POLICIES), metavar="DIR",
                   help="the policies folder, re-read on reload (default: policies/)")
    p.add_argument("--workers", type=_positive, default=1, metavar="N", help="worker processes (default: 1)")
    p.add_argument("--keys", metavar="FILE", help="API key file (default: $KINERJA_API_KEYS_FILE or "
                                                   "$KINERJA_API_KEYS; none: no authentication, loopback only)")
    p.add_argument("--allow-unauthenticated", action="store_true",
                   help="serve on a non-loopback address without API keys")
    p.add_argument("--cors-origin", action="append", type=_origin, default=[], metavar="URL",
                   help="a browser origin allowed to call the service, such as https://portal.example.go.id "
                        "(repeatable; default: none)")
    p.add_argument("--public-metrics", action="store_true",
                   help="with keys, serve /metrics without an admin key (it names every policy and digest)")
    p.add_argument("--batch-processes", type=_whole(0), default=None, metavar="N",
                   help="processes that decide large batches on the other cores, and every record of a policy "
                        "that runs plugin code (default: one per CPU with one worker; with several, one if a policy "
                        "runs plugin code; 0: off, and plugin calls are not bounded in time)")
    p.add_argument("--plugin-call-seconds", type=_seconds, default=2.0, metavar="SECONDS",
                   help="time budget of one plugin call (default: 2); a call past it is that record's error")
    p.add_argument("--no-access-log", action="store_true", help="do not log each request")
    p.add_argument("--graceful-timeout", type=_positive, default=30, metavar="SECONDS",
                   help="how long in-flight requests may take to finish at shutdown (default: 30)")
    p.add_argument("--max-body-bytes", type=_positive, default=16 * 1024 * 1024, metavar="N",
                   help="largest request body (default: 16 MiB); larger gets 413")
    p.add_argument("--max-batch", type=_positive, default=10_000, metavar="N",
                   help="most records in one batch request (default: 10000)")
    p.add_argument("--max-depth", type=_positive, default=32, metavar="N",
                   help="deepest nesting inside a record (default: 32)")
    p.add_argument("--max-list-items", type=_positive, default=10_000, metavar="N",
                   help="longest list inside a record (default: 10000)")
    p.add_argument("--max-response-bytes", type=_whole(1024 * 1024), default=64 * 1024 * 1024, metavar="N",
                   help="largest answer (default: 64 MiB); larger gets 422 response-too-large, and the work stops")
    p.add_argument("--max-explain-batch", type=_positive, default=1_000, metavar="N",
                   help="most records in one batch with explain: true (default: 1000)")
    _unknown_fields_option(p)
    p.add_argument("--validate-processes", type=_whole(0, 64), default=1, metavar="N",
                   help="processes that check documents sent to /v1/validate (default: 1; 0: a thread)")
    p.add_argument("--validate-seconds", type=_seconds, default=30.0, metavar="SECONDS",
                   help="time budget of one /v1/validate check (default: 30); half of it for table analysis")
    p.add_argument("--store-timeout", type=_seconds, default=5.0, metavar="SECONDS",
                   help="how long a request waits for the decision store (default: 5); past it the answer is 503 "
                        "not-recorded, and /ready is 503 until the store answers again")
    p.add_argument("--what-if-seconds", type=_what_if_seconds, default=1.0, metavar="SECONDS",
                   help="time budget of one what-if search (POST /v1/policies/{id}/what-if, a letter's nearest "
                        "goal; default: 1, at most 60); past it the answer is unknown, or not optimal")
    p.add_argument("--work-seconds", type=_seconds, default=30.0, metavar="SECONDS",
                   help="time budget of one expensive request (a population run, an impact report, a replay, an "
                        "appeal; default: 30); past it the work stops and the answer is 422 work-timeout")
    p.add_argument("--max-work", type=_whole(1, 256), default=4, metavar="N",
                   help="expensive requests run at once by a worker (default: 4); more get 503 work-busy")
    p.add_argument("--max-header-bytes", type=_whole(1024, 1024 * 1024), default=32 * 1024, metavar="N",
                   help="largest request line and headers (default: 32 KiB); larger gets 431")
    p.add_argument("--max-headers", type=_whole(8, 1000), default=100, metavar="N",
                   help="most headers in one request (default: 100); more gets 431")
    p.add_argument("--header-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                   help="time for the request line and headers to arrive (default: 10); later gets 408")
    p.add_argument("--body-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="longest pause while a request body arrives (default: 30); longer gets 408")
    p.add_argument("--max-connections", type=_whole(1, 1_000_000), default=1000, metavar="N",
                   help="open connections per worker process (default: 1000); more get 503 at once")
    _store_options(p, serving=True)
    p.add_argument("--redact", action="extend", nargs="+", default=[], metavar="FIELD",
                   help="input fields (dotted names, such as nip) kept in decision records as a keyed hash, not "
                        "their value; look-ups hash the query the same way, and a replay asks for them again")
    p.add_argument("--retention-days", type=_whole(1, 36_500), default=None, metavar="N",
                   help="delete decision records older than N days (checked hourly; default: keep them)")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("key", help="make an API key and its key-file entry", formatter_class=fmt,
                       epilog="examples:\n  kinerja key --name payroll --policies nasional,sawahlunto >> keys.yaml\n"
                              "  kinerja key --name ops --policies '*' --admin\n",
                       description="Make a random API key. The key goes to standard error, once; the entry for the "
                                   "key file (with only its SHA-256) goes to standard output.")
    p.add_argument("--name", required=True, help="who holds the key (shown in access logs)")
    p.add_argument("--policies", metavar="IDS", help="comma-separated policy ids the key may use, or '*'")
    p.add_argument("--admin", action="store_true", help="the key may also reload policies")
    p.set_defaults(run=cmd_key)

    for name, command in sub.choices.items():
        if name == "eval":  # its workbook is for people: Indonesian unless --lang says otherwise
            command.add_argument("--lang", choices=LANGUAGES, default=None, type=str.lower,
                                 help="language of diagnostics and record errors (default: $KINERJA_LANG, else en) "
                                      "and of an .xlsx workbook's headers and values (default: id)")
        elif name not in ("surat", "template"):  # for people: Indonesian unless asked, their own --lang
            command.add_argument("--lang", choices=LANGUAGES, default=language(), type=str.lower,
                                 help="language of diagnostics and record errors: en or id (default: $KINERJA_LANG, "
                                      "else en)")
        if name in ("key", "new"):
            continue
        command.add_argument("--plugins", action="append", metavar="DIR",
                             help="also load plugins from this folder (repeatable); installed plugins always load")
    return top


def _asked_language(argv: Sequence[str]) -> str:
    """The language the command line is read and helped in: its `--lang` (before the command
    reads it), else $KINERJA_LANG, else English."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return language(argv[i + 1][:10])
        if arg.startswith("--lang="):
            return language(arg.split("=", 1)[1][:10])
    return language()


def _in_language(top: argparse.ArgumentParser, lang: str) -> None:
    """Every description, epilog and option's help of the parser in `lang`, from the catalogue (a
    text it lacks stays English)."""
    said = help_texts(lang)
    if not said:
        return
    parsers = [top]
    while parsers:
        current = parsers.pop()
        current.description = said.get(current.description or "", current.description)
        current.epilog = said.get(current.epilog or "", current.epilog)
        for action in current._actions:
            if action.help:
                action.help = said.get(action.help, action.help)
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    choice.help = said.get(choice.help or "", choice.help)
                parsers += list(action.choices.values())


@contextlib.contextmanager
def _argparse_speaks(lang: str) -> Iterator[None]:
    """argparse's own words (`usage:`, `options`, its errors) in `lang` while the command line is read."""
    words = argparse_words(lang)
    if not words:
        yield
        return
    saved = argparse._  # type: ignore[attr-defined]
    argparse._ = lambda text: words.get(text, text)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = saved  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    lang = _asked_language(argv)
    with _argparse_speaks(lang):
        top = parser()
        _in_language(top, lang)
        args = top.parse_args(argv)
    if args.lang_before is not None and "--lang" not in argv[argv.index(args.command) + 1:]:
        args.lang = args.lang_before  # `kinerja --lang id COMMAND …`: the command speaks it too
    try:
        return int(args.run(args))
    except PolicyError as exc:
        print(PolicyError([translate(d, args.lang) for d in exc.diagnostics]).render(severities(args.lang)),
              file=sys.stderr)
        return 1
    except PluginError as exc:
        print(f"plugin error: {exc}", file=sys.stderr)
        return 1
    except KinerjaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
