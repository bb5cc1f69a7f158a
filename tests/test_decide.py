"""One route for a record decided alone: `Engine.decide` / `decide_many`, whatever brings it."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from kinerja_rules import CompiledPolicy, Decision, Engine, ErrorResult, RecordError, bulk
from kinerja_rules.evaluation import decide as deciding
from kinerja_rules.server import create_app
from kinerja_rules.server.batch import decide as batch_decide
from kinerja_rules.server.bodies import Limits
from tests.conftest import BASE_RECORD

NUMBERS = msgspec.json.Encoder(decimal_format="number")
BAD = {**BASE_RECORD, "jabatan": {"jenis": "pelaksana", "kelas": 40}}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The nip of every record that reaches `evaluation.decide.decide`, the one place records are decided."""
    seen: list[str] = []
    real = deciding.decide

    def counted(policy: CompiledPolicy, clean: dict[str, Any], *args: Any) -> Decision:
        seen.append(clean["nip"])
        return real(policy, clean, *args)

    monkeypatch.setattr(deciding, "decide", counted)
    return seen


def _nip(i: int) -> str:
    return f"{198507122010011000 + i}"


def test_decide_and_its_first_names_are_one_method(engine: Engine) -> None:
    decided = engine.decide("nasional", BASE_RECORD, explain=True)
    assert engine.evaluate("nasional", BASE_RECORD, explain=True) == decided
    assert engine.evaluate_safely("nasional", BASE_RECORD, explain=True) == decided
    plain = engine.read_plain("nasional", NUMBERS.encode(BASE_RECORD))
    assert plain is not None
    assert engine.decide("nasional", plain, explain=True, plain=True) == decided
    assert engine.evaluate_plain("nasional", plain, explain=True) == decided
    assert engine.evaluate_plain_safely("nasional", plain, explain=True) == decided
    assert list(engine.evaluate_many("nasional", [BASE_RECORD])) == [engine.decide("nasional", BASE_RECORD)]


def test_decide_raises_and_decide_many_answers_each_record(engine: Engine) -> None:
    with pytest.raises(RecordError) as caught:
        engine.decide("nasional", BAD)
    assert [f.path for f in caught.value.errors] == ["jabatan.kelas"]
    results = list(engine.decide_many("nasional", [BASE_RECORD, BAD, "not a record", BASE_RECORD]))
    assert [type(r) for r in results] == [Decision, ErrorResult, ErrorResult, Decision]
    assert results[1].error.fields[0].path == "jabatan.kelas"  # type: ignore[union-attr]
    assert results[2].error.message == "invalid record"  # type: ignore[union-attr]


def test_read_plain_leaves_anything_not_plainly_valid_to_decide(engine: Engine) -> None:
    assert engine.read_plain("nasional", NUMBERS.encode(BAD)) is None
    assert engine.read_plain("nasional", b'{"nip": "1", "nip": "2"}') is None
    assert engine.read_plain("nasional", b"\xff") is None


def test_every_way_in_decides_through_the_one_route(engine: Engine, taken: list[str]) -> None:
    records = [{**copy.deepcopy(BASE_RECORD), "nip": _nip(i)} for i in range(6)]
    engine.decide("nasional", records[0])
    list(engine.decide_many("nasional", [records[1]]))
    plain = engine.read_plain("nasional", NUMBERS.encode(records[2]))
    engine.evaluate_plain_safely("nasional", plain)  # type: ignore[arg-type]
    bulk.decide_block(engine, bulk.Task("nasional"), [(1, NUMBERS.encode(records[3]), "")])
    batch_decide(engine, "nasional", [msgspec.Raw(NUMBERS.encode(records[4]))], None, False, Limits())
    with TestClient(create_app(engine)) as client:
        answer = client.post("/v1/policies/nasional/evaluate", content=json.dumps({"record": records[5]}),
                             headers={"content-type": "application/json"})
        assert answer.status_code == 200
    assert taken == [_nip(i) for i in range(6)]


def test_a_compiled_policy_holds_what_was_compiled_and_decides_nothing() -> None:
    for gone in ("evaluate", "evaluate_safely", "evaluate_plain", "evaluate_plain_safely", "evaluate_many",
                 "evaluate_population", "plain_record", "check_record", "validate", "fast_validator"):
        assert not hasattr(CompiledPolicy, gone), gone
    for kept in ("code", "params_for", "as_of_for", "metadata", "describe", "expressions"):
        assert hasattr(CompiledPolicy, kept), kept
