"""One small broken policy per failure mode; each message names the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinerja_rules import check_paths
from tests.conftest import bundled

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
POLICIES = HERE.parent / "policies"

CASES = [
    # file, code, line, text the message must contain
    ("unknown_key.yaml", "E010", 4, "unknown key 'typ'; did you mean 'type'?"),
    ("unknown_top_key.yaml", "E011", 3, "did you mean 'definitions'?"),
    ("duplicate_key.yaml", "E003", 5, 'duplicate key "a"'),
    ("alias_bomb.yaml", "E004", None, "alias bomb"),
    ("syntax_error.yaml", "E100", 4, "unexpected '*'"),
    ("unknown_name.yaml", "E105", 6, "unknown name 'kelass'; did you mean 'kelas'?"),
    ("type_error.yaml", "E117", 6, "needs numbers, not text"),
    ("when_fallthrough.yaml", "E119", 8, "can fall through"),
    ("cycle.yaml", "E120", 4, "a -> b -> a"),
    ("table_gap.yaml", "E201", 4, "no row matches menit = 30"),
    ("table_overlap.yaml", "E202", 9, "rows 'rendah' and 'tinggi'"),
    ("table_unreachable.yaml", "E203", 10, "row 'tinggi'"),
    ("param_not_in_force.yaml", "E053", 4, "no value in force on 2024-01-01"),
    ("param_missing_key.yaml", "E054", 10, "no value for c"),
    ("override_nothing.yaml", "E021", 5, "did you mean 'capaian_skp'?"),
    ("new_without_override.yaml", "E022", 4, "add 'override: true'"),
    ("unknown_enum_value.yaml", "E105", 8, "did you mean 'pns'?"),
    ("unknown_cite.yaml", "E033", 6, "unknown reference 'pp-49-2021'"),
    ("missing_effective.yaml", "E030", 1, "needs 'effective"),
    ("wrong_shape.yaml", "E010", 4, "expected a mapping"),
    ("maybe_null.yaml", "E102", 6, "may be null"),
    ("bad_input_type.yaml", "E042", 4, "did you mean 'decimal'?"),
]


def test_every_broken_file_has_a_case() -> None:
    assert {c[0] for c in CASES} == {p.name for p in BROKEN.glob("*.yaml")}


@pytest.mark.parametrize("name,code,line,fragment", CASES, ids=[c[0] for c in CASES])
def test_broken_policy_is_reported_at_its_place(name: str, code: str, line: int | None, fragment: str) -> None:
    report = bundled().validate_files({name: (BROKEN / name).read_text()})  # against the parents as loaded once
    assert not report.ok
    mine = [d for d in report.errors if d.span is not None and d.span.file.endswith(name)]
    assert mine, report.errors
    diag = mine[0]
    assert diag.code == code
    assert fragment in diag.message
    if line is not None:
        assert diag.span.line == line
    rendered = diag.render()
    assert rendered.startswith(f"{diag.span.file}:{diag.span.line}:{diag.span.column}: error[{code}]")
    assert "^" in rendered


def test_all_diagnostics_come_at_once(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "policy: many\neffective: 2024-01-01\ndefinitions:\n"
        "  a: {expr: 'nope + 1'}\n  b: {expr: '1 +'}\n  c: {expr: 'true * 2'}\n")
    report = check_paths([tmp_path])
    assert [d.span.line for d in report.errors] == [4, 5, 6]


def test_the_bundled_policies_check_clean() -> None:
    report = check_paths([POLICIES])
    assert report.ok, [d.render() for d in report.errors]
    assert "nasional" in report.policies


def test_comma_in_a_flow_mapping_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("policy: koma\neffective: 2024-01-01\ninputs:\n  x: decimal\n"
                                     "outputs:\n  y: {type: decimal, expr: round(x, 2, half_up)}\n")
    diag = check_paths([tmp_path]).errors[0]
    assert diag.code == "E010" and diag.span.line == 6
    assert "quote a value (an expression, a text) that has commas" in diag.render()


# ---- every YAML scalar is checked against what its place expects --------------------------

_SAWAHLUNTO = Path(__file__).parent.parent / "policies"
_SCALARS = {  # a place in sawahlunto's policy: (text there, what a careless author writes, code)
    "parameter date as a timestamp": ("      2024-01-01: {sangat_baik: 5", "      2024-01-01T10:00:00: {sangat_baik: 5",
                                      "E051"),
    "parameter value as a timestamp": ("values: {2024-01-01: 50%}, cite: perwako-sawahlunto-tpp}\n  bobot_disiplin",
                                       "values: {2024-01-01: 2024-01-01T10:00:00}, cite: perwako-sawahlunto-tpp}\n"
                                       "  bobot_disiplin", "E052"),
    "parameter value as binary": ("values: {2024-01-01: 50%}, cite: perwako-sawahlunto-tpp}\n  bobot_disiplin",
                                  "values: {2024-01-01: !!binary aGVsbG8=}, cite: perwako-sawahlunto-tpp}\n"
                                  "  bobot_disiplin", "E052"),
    "keyed value as a date": ("{1: 2_100_000,", "{1: 2024-01-01,", "E052"),
    "key as a timestamp": ("{1: 2_100_000,", "{2024-01-01T10:00:00: 2_100_000,", "E052"),
    "default as a timestamp": ("default: false, doc: The employee", "default: 2024-01-01T10:00:00, doc: The employee",
                               "E043"),
    "min as a timestamp": ("level: {type: integer, min: 1, max: 5}",
                           "level: {type: integer, min: 2024-01-01T10:00:00, max: 5}", "E041"),
    "min as a set": ("level: {type: integer, min: 1, max: 5}", "level: {type: integer, min: !!set {a: null}, max: 5}",
                     "E041"),
    "version as a timestamp": ('version: "2025.1"', "version: 2025-01-01T10:00:00", "E010"),
}


@pytest.mark.parametrize("case", sorted(_SCALARS))
def test_a_scalar_of_the_wrong_kind_is_one_error_at_its_place_and_never_in_service(tmp_path: Path,
                                                                                   case: str) -> None:
    import shutil

    from kinerja_rules import Engine, PolicyError

    old, new, code = _SCALARS[case]
    folder = tmp_path / "policies"  # sawahlunto and its parent: the other regions would only cost time
    shutil.copytree(_SAWAHLUNTO, folder, ignore=lambda where, names: [
        n for n in names if Path(where) == _SAWAHLUNTO and (_SAWAHLUNTO / n).is_dir() and n != "sawahlunto"])
    path = folder / "sawahlunto" / "policy.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    report = check_paths([folder])
    assert [d.code for d in report.errors] == [code], [d.render() for d in report.errors]
    [error] = report.errors
    assert error.span is not None and error.span.file.endswith("policy.yaml")
    first = text[:text.index(old)].count("\n") + 1  # the error stands on a line of the changed text
    assert first <= error.span.line <= first + new.count("\n")
    with pytest.raises(PolicyError):  # what check refuses never goes into service
        Engine.from_paths([folder])
