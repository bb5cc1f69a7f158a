"""The one pipeline every way in to policies takes: its stages, in order, each timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kinerja_rules import Engine, pipeline
from kinerja_rules.engine import check_paths, default_registry, reload_paths, source_groups, validate_files
from kinerja_rules.pipeline import STAGES, Pipeline
from tests.conftest import POLICIES, ROOT


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stages the pipeline enters, in order, as they are timed."""
    entered: list[str] = []
    real = pipeline.Timings.stage

    def stage(self: pipeline.Timings, name: str):  # type: ignore[no-untyped-def]
        entered.append(name)
        return real(self, name)

    monkeypatch.setattr(pipeline.Timings, "stage", stage)
    return entered


def _ran_every_stage(calls: list[str]) -> bool:
    return set(calls) == set(STAGES) and calls.index("assemble") > max(
        i for i, s in enumerate(calls) if s in ("load", "documents")) and calls.index("compile") > calls.index("check")


def test_every_entry_point_runs_the_one_pipeline(calls: list[str]) -> None:
    registry = default_registry()
    check_paths([POLICIES / "sawahlunto"], registry, POLICIES)
    assert _ran_every_stage(calls)
    calls.clear()
    reload_paths([POLICIES], registry, {})
    assert _ran_every_stage(calls)
    calls.clear()
    validate_files({"coba.yaml": (POLICIES / "plaju" / "policy.yaml").read_text().replace("policy: plaju",
                                                                                        "policy: coba")},
                   [POLICIES], registry)
    assert _ran_every_stage(calls)
    calls.clear()
    engine = Engine.for_policy("sawahlunto", POLICIES, registry)
    assert _ran_every_stage(calls)
    calls.clear()
    Engine.from_groups(source_groups(engine.policies()), registry)
    assert _ran_every_stage(calls)


def test_a_report_says_how_long_each_stage_took() -> None:
    report = check_paths([POLICIES], library=POLICIES, generate=True)
    assert list(report.timings) == list(STAGES)
    assert all(seconds > 0 for seconds in report.timings.values()), report.timings
    reload = reload_paths([POLICIES], default_registry(), {})
    assert list(reload.timings) == list(STAGES) and reload.timings["compile"] > 0


def test_generate_compiles_the_code_in_the_compile_stage() -> None:
    pipe = Pipeline(default_registry(), generate=True)
    reading = pipe.read([POLICIES / "nasional.yaml"])
    report = pipe.build(reading.files)
    assert report.policies["nasional"]._code is not None
    lazy = Pipeline(default_registry())
    assert lazy.build(lazy.read([POLICIES / "nasional.yaml"]).files).policies["nasional"]._code is None


def test_a_policy_that_fails_still_reports_the_stages_it_reached(tmp_path: Path) -> None:
    (tmp_path / "rusak.yaml").write_text("policy: rusak\neffective: 2024-01-01\noutputs:\n  x: {type: integer, "
                                         "expr: tidak_ada}\n")
    report = check_paths([tmp_path])
    assert report.errors and not report.policies
    assert report.timings["check"] > 0 and report.timings["compile"] == 0


@pytest.mark.parametrize("lang, words", [("en", ("stage", "seconds", "total")), ("id", ("tahap", "detik", "jumlah"))])
def test_kinerja_check_timings_prints_each_stage(lang: str, words: tuple[str, str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "check", "--timings", "--lang", lang],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok  ")  # the result itself is unchanged on standard output
    lines = result.stderr.splitlines()
    assert lines[0].split() == list(words[:2])
    rows = {line.split()[0]: float(line.split()[1]) for line in lines[1:]}
    assert list(rows) == [*STAGES, words[2]]
    # each of the 5 stages and the total is printed rounded to 1 ms: they may differ by 6 half-milliseconds
    assert rows[words[2]] == pytest.approx(sum(rows[s] for s in STAGES), abs=0.0031)
    assert all(rows[s] > 0 for s in STAGES)


def test_a_shipped_policy_is_compiled_where_it_arrives_without_being_read_or_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules.engine import ship
    from tests.conftest import BASE_RECORD, bundled

    engine = bundled()
    shipment = ship(engine.policies())

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a shipped policy was read or checked again")

    monkeypatch.setattr(Pipeline, "read", refused)
    monkeypatch.setattr(Pipeline, "build", refused)
    again = Engine.from_shipment(shipment, engine.registry)
    assert [(p.id, p.digest) for p in again.policies()] == [(p.id, p.digest) for p in engine.policies()]
    for policy in engine.policies():
        mine, theirs = engine.decide(policy.id, BASE_RECORD, explain=True), again.decide(policy.id, BASE_RECORD,
                                                                                          explain=True)
        assert (mine.outputs, mine.trace) == (theirs.outputs, theirs.trace)


def test_a_shipment_that_cannot_be_unpickled_is_compiled_from_its_files_texts(calls: list[str]) -> None:
    from kinerja_rules.engine import ship
    from tests.conftest import bundled

    engine = bundled()
    shipment = ship([engine.policy("sawahlunto")])
    again = Engine.from_shipment(shipment._replace(policies=(b"not a pickle",)), engine.registry)
    assert _ran_every_stage(calls) and again.policy("sawahlunto").digest == engine.policy("sawahlunto").digest
    calls.clear()
    both = Engine.from_shipment(ship([engine.policy("plaju")])._replace(policies=(b"",)), engine.registry)
    assert _ran_every_stage(calls) and both.ids == ["plaju"]  # one that did not pickle: its texts only


def test_notes_on_a_node_outside_every_kept_expression_refuse_to_travel() -> None:
    import pickle

    from kinerja_rules.nodes import Name
    from kinerja_rules.typecheck import Annotations
    from kinerja_rules.types import INTEGER

    kept, stray = Name(pos=(1, 1, 1, 2), name="a"), Name(pos=(1, 1, 1, 2), name="b")
    notes = Annotations(types={id(kept): INTEGER, id(stray): INTEGER}, keep=[kept])
    with pytest.raises(TypeError, match="not among the nodes kept"):
        pickle.dumps(notes)
    del notes.types[id(stray)]
    back = pickle.loads(pickle.dumps(notes))
    assert back.types == {id(back.keep[0]): INTEGER} and back.keep[0] == kept
