"""One written-type language: one reader and one representation of types, wherever a type is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kinerja_rules import Engine, RecordError, checker
from kinerja_rules.types import Kind, Type, parse_type
from tests.conftest import bundled

WHEN = dt.date(2024, 3, 1)


def standalone(tmp_path: Path, body: str) -> Engine:
    (tmp_path / "jenis.yaml").write_text("policy: jenis\neffective: 2024-01-01\n" + body)
    return Engine.from_paths([tmp_path])


def test_an_inline_record_type_is_an_input_type_too(tmp_path: Path) -> None:
    engine = standalone(tmp_path, "inputs:\n  alamat: {type: 'record {kota: text, rt: integer}'}\n"
                                  "outputs:\n  kota: {type: text, expr: alamat.kota}\n")
    assert engine.evaluate("jenis", {"alamat": {"kota": "Padang", "rt": 3}}, as_of=WHEN).outputs == {"kota": "Padang"}
    with pytest.raises(RecordError) as err:
        engine.evaluate("jenis", {"alamat": {"kota": "Padang", "rt": "tiga"}}, as_of=WHEN)
    assert [e.path for e in err.value.errors] == ["alamat.rt"]


def test_an_inline_enumeration_works_in_every_section(tmp_path: Path) -> None:
    engine = standalone(tmp_path, """inputs:
  zona: {type: 'enum {kota, desa, terpencil}'}
parameters:
  tunjangan: {type: money, key: 'enum {kota, desa, terpencil}',
              values: {2024-01-01: {kota: 0, desa: 100_000, terpencil: 300_000}}}
definitions:
  kategori: {type: 'enum {biasa, khusus}', expr: 'if zona = terpencil then khusus else biasa'}
tables:
  kode:
    inputs: {k: 'enum {biasa, khusus}'}
    output: text
    rows: {a: [biasa, '"B"'], b: [khusus, '"K"']}
outputs:
  tunjangan: {type: money, expr: 'tunjangan[zona]'}
  kode: {type: text, expr: kode(kategori)}
""")
    outputs = engine.evaluate("jenis", {"zona": "terpencil"}, as_of=WHEN).outputs
    assert outputs == {"tunjangan": 300_000, "kode": "K"}
    with pytest.raises(RecordError):
        engine.evaluate("jenis", {"zona": "kota besar"}, as_of=WHEN)


@pytest.mark.parametrize("text, message", [
    ("enum", "'enum' needs its parts: write e.g. 'enum {a, b}'"),
    ("record", "'record' needs its parts"),
    ("enum {a, a}", "write distinct names"),
    ("enum {a, b", "close the braces"),
    ("record {x integer}", "cannot read record field 'x integer'"),
    ("decimel", "unknown type 'decimel'; did you mean 'decimal'?"),
])
def test_a_written_type_that_cannot_be_read_is_named(text: str, message: str) -> None:
    report = bundled().validate_text(
        f"policy: c\nextends: nasional\ndefinitions:\n  x: {{type: '{text}', expr: '1'}}\n", "c.yaml")
    assert [d.code for d in report.errors] == ["E050"] and message in report.errors[0].message


def test_the_spelled_out_input_forms_still_read() -> None:
    named = {"predikat": Type(kind=Kind.ENUM, name="predikat", values=("baik", "kurang"))}
    assert parse_type("optional list of predikat", named).item == named["predikat"]
    assert str(parse_type("list of optional decimal", {})) == "list of optional decimal"
    assert str(parse_type("enum {a, b}", {})) == "enum {a, b}"


def test_every_type_is_a_kind(engine: Engine) -> None:
    seen = 0

    def walk(kind: Type) -> None:
        nonlocal seen
        assert isinstance(kind.kind, Kind), kind
        seen += 1
        if kind.item is not None:
            walk(kind.item)
        for _, sub in kind.fields:
            walk(sub)

    for policy in engine.policies():
        checked = policy.checked
        walk(checked.input.type)
        for item in (*checked.definitions.values(), *checked.outputs.values(), *checked.params.values()):
            walk(item.type)
        for kind in checked.notes.types.values():
            walk(kind)
    assert seen > 1000


def test_check_runs_every_stage_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    stages = tuple((name, (lambda stage, named: lambda w: (calls.append(named), stage(w))[1])(fn, name))
                   for name, fn in checker.STAGES)
    monkeypatch.setattr(checker, "STAGES", stages)
    report = bundled().validate_text("policy: c\nextends: nasional\n", "c.yaml")
    assert report.ok and calls == [name for name, _ in stages]
    assert calls.index("table signatures") < calls.index("definitions") < calls.index("tables") \
        < calls.index("outputs and rules") < calls.index("exactness")
