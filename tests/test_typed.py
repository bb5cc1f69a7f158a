"""Records read straight from JSON by msgspec (`Engine.read_plain`): never a record the full
validator rejects, always its normalised record, and the same decisions as the usual path."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinerja_rules import bulk
from kinerja_rules.engine import Engine
from kinerja_rules.errors import RecordError
from kinerja_rules.fastcheck import build_typed_decoder
from kinerja_rules.jsontext import duplicate_key
from kinerja_rules.schema import build_validator
from tests.conftest import BASE_RECORD, bundled
from tests.test_properties import PATHS, _set

ENGINE = bundled()
NUMBERS = msgspec.json.Encoder(decimal_format="number")
READ = msgspec.json.Decoder(float_hook=Decimal)

values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=5),
                   st.integers(-2**70, 2**70), st.sampled_from(["2025-03", "1985071220100110030", "pns", "baik"]),
                   st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
                   st.sampled_from([Decimal("1E+30"), Decimal("1E-30"), Decimal("12.5E+3"), Decimal("0.000")]),
                   st.lists(st.integers(-5, 200), max_size=3), st.lists(st.decimals(places=1, min_value=0,
                                                                                    max_value=120), max_size=2),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
EDITS = ["none", "unknown key", "key twice", "escaped colon", "drop"]


def _text(record: dict[str, Any], edit: str, path: str) -> bytes:
    raw = NUMBERS.encode(record)
    if edit == "unknown key":
        return b'{"catatan":"x",' + raw[1:] if raw != b"{}" else raw
    if edit == "key twice":
        return b'{"nip":"198507122010011003",' + raw[1:] if raw != b"{}" else raw
    if edit == "escaped colon":
        return raw.replace(b'"Dinas', b'"Dinas\\u003a', 1)
    return raw


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ENGINE.ids), st.lists(st.tuples(st.sampled_from(PATHS), values), max_size=4),
       st.sampled_from(EDITS), st.sampled_from(PATHS))
def test_a_plain_record_is_exactly_what_the_full_validator_makes(policy_id: str, changes: list[tuple[str, Any]],
                                                                  edit: str, dropped: str) -> None:
    policy = ENGINE.policy(policy_id)
    record = copy.deepcopy(BASE_RECORD)
    for path, value in changes:
        _set(record, path, value)
    if edit == "drop":
        parts = dropped.split(".")
        node = record
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node.get(part), dict) else {}
        node.pop(parts[-1], None)
    raw = _text(record, edit, dropped)
    plain = ENGINE.read_plain(policy_id, raw)
    if plain is None:
        return  # left to the usual path: always allowed
    given_value = READ.decode(raw)
    assert duplicate_key(raw, given_value) is None
    errors: list[Any] = []
    full = build_validator(policy.checked.input)(given_value, "", errors)
    assert not errors, errors  # no unknown key either: those are warnings or errors of the usual path
    assert plain == full
    assert _outcome(ENGINE.evaluate_plain, policy_id, plain) == _outcome(ENGINE.evaluate, policy_id, given_value)


def _outcome(evaluate: Any, policy_id: str, record: Any) -> Any:
    """The outputs, or the errors of a record that fails a policy's checks."""
    try:
        return evaluate(policy_id, record).outputs
    except RecordError as exc:
        return exc.errors


def test_every_bundled_policy_reads_its_records_in_c() -> None:
    for policy in ENGINE.policies():
        assert build_typed_decoder(policy.checked.input) is not None, policy.id
        assert ENGINE.read_plain(policy.id, NUMBERS.encode(BASE_RECORD)) is not None, policy.id


@pytest.mark.parametrize("text", [
    b'{"nip": "198507122010011003", "nip": "198507122010011004"}',
    b"[1, 2]", b"null", b"not json", b'{"nip": 1e999999}', b"{" * 10_000,
])
def test_hostile_or_odd_texts_are_left_to_the_usual_path(text: bytes) -> None:
    assert ENGINE.read_plain("nasional", text) is None


def _batch_texts() -> list[tuple[int, bytes, str]]:
    """300 records as JSON texts: most plainly valid, some with an unknown key, some out of range."""
    records = []
    for i in range(300):
        record = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"19850712201001{i:04d}"
        record["perilaku"]["atasan"] = Decimal(55 + i % 45) + Decimal("0.25")
        record["jabatan"]["kelas"] = 1 + i % 17
        if i % 7 == 3:
            record["catatan"] = "an unknown key: a warning"
        if i % 11 == 5:
            record["jabatan"]["kelas"] = 40  # out of range: an error
        if i % 13 == 7:
            record["presensi"]["terlambat_menit"] = [10, 0]  # an item out of range
        records.append(record)
    return [(i, NUMBERS.encode(r), f" on line {i}") for i, r in enumerate(records, start=1)]


def test_a_batch_decides_the_same_bytes_by_either_path() -> None:
    texts = _batch_texts()
    values = [(i, READ.decode(text), where) for i, text, where in texts]
    for policy_id in ENGINE.ids:
        for task in (bulk.Task(policy_id), bulk.Task(policy_id, explain=True), bulk.Task(policy_id, lang="id"),
                     bulk.Task(policy_id, unknown_fields="error")):
            fast, fast_failed = bulk.decide_block(ENGINE, task, texts)
            usual, usual_failed = bulk.decide_block(ENGINE, task, values)  # decoded already: the usual path
            assert fast == usual, policy_id
            assert fast_failed == usual_failed > 0
    assert sum(ENGINE.read_plain("nasional", text) is not None for _, text, _ in texts) > 200


def test_a_service_batch_answers_the_same_bytes_by_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules.server import batch
    from kinerja_rules.server.bodies import Limits

    texts = [msgspec.Raw(text) for _, text, _ in _batch_texts()]
    texts.append(msgspec.Raw(b'{"nip": "1", "nip": "2"}'))  # a key twice
    texts.append(msgspec.Raw(NUMBERS.encode({**BASE_RECORD, "riwayat_predikat": ["baik"] * 40})))  # a long list
    for limits in (Limits(), Limits(max_list_items=20, unknown_fields="error")):
        for explain in (False, True):
            fast = batch.decide(ENGINE, "nasional", texts, None, explain, limits)
            with monkeypatch.context() as usual_only:
                usual_only.setattr(Engine, "read_plain", lambda self, policy_id, raw: None)
                usual = batch.decide(ENGINE, "nasional", texts, None, explain, limits)
            assert fast is not None and usual is not None
            assert fast[:2] == usual[:2] and fast[1] > 0


_PLAIN_BODY = NUMBERS.encode(BASE_RECORD).decode()
EVALUATE_BODIES = [  # what the evaluate endpoint is sent: (body, decided by the plain path?)
    ('{"record": %s}' % _PLAIN_BODY, True),
    ('{"explain": true, "record": %s, "as_of": "2025-03-15"}' % _PLAIN_BODY, True),
    ('{"record": %s, "as_of": null, "explain": false}' % _PLAIN_BODY, True),
    ('{"\\u0072ecord": %s}' % _PLAIN_BODY, True),  # a member's name escaped is still that member
    ('{"record": %s, "as_of": "2025-03-15", "as_of": "2024-01-01"}' % _PLAIN_BODY, False),  # a member twice
    ('{"explain": false, "record": %s, "explain": true}' % _PLAIN_BODY, False),
    ('{"record": %s, "record": %s}' % (_PLAIN_BODY, _PLAIN_BODY), False),
    ('{"record": %s}' % _PLAIN_BODY.replace('"nip"', '"catatan": "x", "nip"'), False),  # a warning
    ('{"record": %s}' % _PLAIN_BODY.replace('"kelas":7', '"kelas":7,"kelas":8'), False),
    ('{"record": %s}' % _PLAIN_BODY.replace('"kelas":7', '"kelas":40'), False),  # out of range
    ('{"record": %s, "extra": 1}' % _PLAIN_BODY, False),
    ('{"record": [1, 2]}', False), ('{"record": %s' % _PLAIN_BODY, False), ('[]', False), ('', False),
    ('{"record": %s, "as_of": "2025-02-30"}' % _PLAIN_BODY, False),
    ('{"record": {"nip": %s}}' % ("[" * 40 + "]" * 40), False),  # deeper than the limit
]


@pytest.mark.parametrize("body, plain", EVALUATE_BODIES)
def test_a_single_evaluate_answers_the_same_by_either_path(monkeypatch: pytest.MonkeyPatch, body: str,
                                                          plain: bool) -> None:
    """The evaluate endpoint decides a plainly valid body in C and any other the usual way: the same
    status and the same bytes either way, and only a body plainly valid takes the shortcut."""
    from litestar.testing import TestClient

    from kinerja_rules.engine import Engine
    from kinerja_rules.server import create_app

    taken: list[str] = []
    real = Engine.evaluate_plain

    def counted(self: Engine, *args: Any) -> Any:
        taken.append(args[0])
        return real(self, *args)

    monkeypatch.setattr(Engine, "evaluate_plain", counted)
    answers = []
    with TestClient(create_app(ENGINE)) as client:
        for shortcut in (True, False):
            with monkeypatch.context() as usual_only:
                if not shortcut:
                    usual_only.setattr(Engine, "read_plain", lambda self, policy_id, raw: None)
                response = client.post("/v1/policies/nasional/evaluate", content=body.encode(),
                                       headers={"content-type": "application/json"})
            answers.append((response.status_code, response.content))
    assert answers[0] == answers[1]
    assert taken == (["nasional"] if plain else [])
    assert (answers[0][0] == 200) == plain


@pytest.mark.parametrize("text", [
    b'{"record": {}, "as_of": "2025-01-01", "as_of": null}', b'{"record": {}, "explain": 1}',
    b'{"record": {}, "other": 1}', b'{"as_of": "2025-01-01"}', b'{"record": {"a": %s}}' % (b"[" * 40 + b"]" * 40),
    b'{"record": {"a": [%s]}}' % b",".join([b"1"] * 20_000), b'\xff', b"{" * 10_000, b"null",
])
def test_an_evaluate_body_not_plainly_well_formed_is_left_to_the_usual_reading(text: bytes) -> None:
    from kinerja_rules.server.bodies import Limits, plain_evaluate

    assert plain_evaluate(text, Limits()) is None
