"""One route for a record: the one intake reads every way in alike, and the one loop decides the
CLI's, the service's and impact's records alike."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kinerja_rules import bulk
from kinerja_rules.deciding import Intake, decide_each, decide_population
from kinerja_rules.decision import ENCODER, Decision, ErrorResult
from kinerja_rules.jsontext import Bounds, Unread, read_json
from kinerja_rules.population_run import GroupReport
from kinerja_rules.server.batch import decide
from kinerja_rules.server.bodies import Limits
from tests.conftest import BASE_RECORD, bundled

HOSTILE = {
    b'{"a": 1, "a": 2}': ("duplicate-key", ""),
    b'{"x": {"a": 1, "a": 2}}': ("duplicate-key", "x"),
    b'{"nip": "\xff"}': ("malformed-json", ""),
    b'{"nip": ': ("invalid-body", ""),
    b"[" * 5 + b"]" * 5: ("too-deep", "[0][0][0]"),
    b'{"l": [1, 2, 3, 4]}': ("list-too-long", "l"),
    b"[" * 100_000 + b"]" * 100_000: ("too-deep", ""),
}


@pytest.mark.parametrize("text", list(HOSTILE), ids=range(len(HOSTILE)))
def test_the_intake_names_what_is_wrong_and_where(text: bytes) -> None:
    found = read_json(text, Bounds(max_depth=3, max_list_items=3))
    assert type(found) is Unread and (found.problem, found.path) == HOSTILE[text]


def test_the_intake_reads_numbers_exactly_and_bounds_nothing_unasked() -> None:
    assert read_json(b'{"x": 0.1, "l": [[[[1]]]]}') == {"x": Decimal("0.1"), "l": [[[[1]]]]}
    assert Unread("too-deep", "[2].a", "r").place("records[3]") == "records[3][2].a"
    assert Unread("too-deep", "a", "r").text("records[3]") == "records[3].a: r"


def _texts() -> list[bytes]:
    good = copy.deepcopy(BASE_RECORD)
    unknown = {**copy.deepcopy(BASE_RECORD), "catatan": "x"}  # not plainly valid: read the usual way
    bad = copy.deepcopy(BASE_RECORD)
    bad["perilaku"]["atasan"] = "tinggi"
    return [json.dumps(good).encode(), b'{"a": 1, "a": 2}', json.dumps(unknown).encode(), json.dumps(bad).encode(),
            b"not json"]


def test_the_cli_and_the_service_decide_each_text_alike() -> None:
    engine, texts = bundled(), _texts()
    cli, _ = bulk.decide_block(engine, bulk.Task("nasional"), [(i + 1, t, f" on line {i + 1}")
                                                                for i, t in enumerate(texts)])
    answer = decide(engine, "nasional", texts, None, False, Limits(), 0)
    assert answer is not None
    service = msgspec.json.decode(b"[" + answer[0] + b"]")
    by_cli = [json.loads(line) for line in cli.splitlines()]
    failed = [("error" in r) for r in by_cli]
    assert failed == [r["result"] == "error" for r in service] and failed[:2] + failed[3:] == [False, True,
                                                                                         True, True]
    for mine, theirs in zip(by_cli, service, strict=True):
        if "error" in mine:  # each words where the record is its own way; what is wrong is the same
            assert mine["error"]["kind"] == theirs["error"]["kind"]
            if mine["error"]["kind"] == "record":  # a record that was read: the same fields, the same words
                assert mine["error"].get("fields") == theirs["error"].get("fields")
        else:
            assert mine["outputs"] == theirs["outputs"]
    assert by_cli[1]["error"]["message"] == "invalid JSON on line 2: $ gives the key 'a' more than once"
    assert service[1]["error"]["message"] == "records[1]: gives the key 'a' more than once"


def test_decide_each_gives_each_record_as_decoded_unless_taken_the_fast_way() -> None:
    engine, texts = bundled(), _texts()
    slow = list(decide_each(engine, "nasional", texts, intake=Intake(plain=False)))
    fast = list(decide_each(engine, "nasional", texts))
    assert [ENCODER.encode(r) for _, r in slow] == [ENCODER.encode(r) for _, r in fast]
    assert slow[0][0] == json.loads(texts[0], parse_float=Decimal) and slow[1][0] is None
    assert isinstance(slow[0][1], Decision) and isinstance(slow[1][1], ErrorResult)


def test_a_population_gives_each_record_beside_its_result_in_input_order() -> None:
    engine = bundled()
    people = []
    for i in range(4):
        record: dict[str, Any] = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"1985071220100100{i:02d}"
        people.append(json.dumps(record).encode())
    people.insert(2, b"{")
    items = list(decide_population(engine, "nasional", people, {"Dinas Kesehatan": {"predikat_organisasi": "baik"}}))
    members = [item for item in items if not isinstance(item, GroupReport)]
    assert len(members) == 5 and members[2] == (None, members[2][1]) and isinstance(members[2][1], ErrorResult)
    assert [m[0]["nip"] for m in members if m[0] is not None] == [f"1985071220100100{i:02d}" for i in range(4)]
