"""Hostile requests to the endpoints the decision records brought: population runs, decision
look-ups, replays, appeals and impact reports. Whatever a client sends, the answer is a decision, a
report, or a problem of a known type: never a 500, never a traceback, and the service goes on."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.keberatan import WIT
from kinerja_rules.server import create_app
from kinerja_rules.server.bodies import Limits
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.server.problems import PROBLEMS
from kinerja_rules.server.work import Work
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_hostile import GENERATED

HOSTILE_TEXT = st.one_of(st.sampled_from(["", "\x00", "../../etc/passwd", "/etc/passwd", "<b>x</b>", "' OR 1=1 --",
                                          "%00", "x" * 5000, "\ud800".encode("utf-8", "surrogatepass").decode(
                                              "utf-8", "replace"), "nip", "periode", "perilaku.atasan",
                                          "skp.indikator.0.realisasi", "a." * 40, "0", "__proto__"]),
                         st.text(max_size=40))
BASE = json.dumps(BASE_RECORD)
VALUE = st.one_of(GENERATED, st.just(BASE))  # JSON texts, sent as they are (Python may not hold them)
KEY = HOSTILE_TEXT.map(json.dumps)
TODAY = json.dumps(dt.datetime.now(WIT).date().isoformat())
DATE = st.one_of(st.sampled_from([TODAY, '"2025-04-01"', '"2025-02-30"', '"9999-12-31"', '"0001-01-01"']), VALUE)
NIP = st.one_of(st.sampled_from([json.dumps(BASE_RECORD["nip"]), '"196501012000011001"']), VALUE)
TEXT = st.one_of(HOSTILE_TEXT.map(json.dumps), VALUE)


def _object(values: Any, size: int = 3) -> Any:
    return st.lists(st.tuples(KEY, values), max_size=size).map(
        lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")


def _array(values: Any, size: int = 4) -> Any:
    return st.lists(values, max_size=size).map(lambda items: "[" + ",".join(items) + "]")


def _post(client: TestClient[Litestar], path: str, members: dict[str, str]) -> Any:
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"
    return client.post(path, content=body.encode("utf-8", "surrogatepass"),
                       headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    folder = Path(tempfile.mkdtemp(prefix="kinerja-hostile-"))
    shutil.copytree(POLICIES, folder / "policies")
    app = create_app(Engine.from_paths([folder / "policies"]), policies=[folder / "policies"],
                     limits=Limits(max_response_bytes=2_000_000), work=Work(seconds=5.0, at_once=4),
                     recorder=Recorder(SQLiteStore(folder / "data" / "d.sqlite3")))
    try:
        with TestClient(app) as client:
            one = client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD}).json()
            groups = json.loads((ROOT / "examples" / "groups.json").read_text())
            run = client.post("/v1/policies/plaju/evaluate/population",
                              json={"records": [BASE_RECORD], "groups": groups, "seats": []}).json()
            ids = {"alone": one["decision_id"], "member": run["results"][0]["decision_id"]}
            filed = _post(client, f"/v1/decisions/{ids['member']}/keberatan", {
                "diajukan_oleh": json.dumps(BASE_RECORD["nip"]), "tanggal": TODAY, "alasan": '"Belum dinilai"'})
            assert filed.status_code == 201, filed.text
            yield client, {**ids, "keberatan": filed.json()["keberatan_id"]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _answered(response: Any) -> None:
    """A 2xx JSON answer, or a problem of a known type; never a 500."""
    assert response.status_code < 500 or response.status_code == 503, response.text[:500]
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text[:300]
        name = response.json()["type"].rsplit("/", 1)[1]
        assert name in PROBLEMS and name != "internal-error"
    else:
        json.loads(response.content)
    assert "Traceback" not in response.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_array(VALUE), st.one_of(VALUE, _object(st.one_of(VALUE, _object(VALUE, 2)), 2)),
       st.one_of(VALUE, _array(st.one_of(VALUE, _object(VALUE)), 3)))
def test_a_hostile_population_run_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                              records: str, groups: str, seats: str) -> None:
    client, _ = served
    for policy in ("plaju", "sawahlunto", "nasional"):
        _answered(_post(client, f"/v1/policies/{policy}/evaluate/population",
                        {"records": records, "groups": groups, "seats": seats}))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["policy", "nip", "periode", "limit", "cursor", "other"]), HOSTILE_TEXT,
                       max_size=4))
def test_a_hostile_decision_look_up_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                                params: dict[str, str]) -> None:
    client, ids = served
    _answered(client.get("/v1/decisions", params=params))
    _answered(client.get(f"/v1/decisions/{quote(params.get('cursor', ids['alone']), safe='')}"))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["alone", "member"]), st.sampled_from(["replay", "appeal"]),
       st.one_of(VALUE, _object(VALUE, 4)), st.one_of(st.sampled_from(["true", "false"]), VALUE))
def test_a_hostile_replay_or_appeal_is_answered(served: tuple[TestClient[Litestar], dict[str, str]], which: str,
                                                action: str, values: str, explain: str) -> None:
    client, ids = served
    body = {"set": values}
    if action == "replay":
        body["explain"] = explain
    _answered(_post(client, f"/v1/decisions/{ids[which]}/{action}", body))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(HOSTILE_TEXT, st.one_of(st.sampled_from(["policy: nasional\n", "policy: [\n", "{}"]),
                                               st.text(max_size=60)), max_size=3),
       st.one_of(st.just("nasional"), HOSTILE_TEXT), _array(VALUE, 3), st.one_of(st.none(), HOSTILE_TEXT))
def test_a_hostile_impact_request_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                              files: dict[str, str], policy: str, records: str,
                                              base: str | None) -> None:
    client, _ = served
    body = {"policy": json.dumps(policy), "proposed": json.dumps({"files": files}), "records": records}
    if base is not None:
        body["base_digest"] = json.dumps(base)
    _answered(_post(client, "/v1/impact", body))
    assert client.get("/health").status_code == 200


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["alone", "member"]), st.sampled_from(["pemberitahuan", "keberatan"]),
       st.dictionaries(st.sampled_from(["tanggal", "diajukan_oleh", "alasan", "bukti", "other"]),
                       st.one_of(DATE, NIP, TEXT, _array(TEXT, 3)), max_size=5), st.booleans())
def test_a_hostile_pemberitahuan_or_keberatan_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                                          which: str, step: str, members: dict[str, str],
                                                          plausible: bool) -> None:
    client, ids = served
    if plausible:  # the fields all there, so the values themselves are what is tried
        members = {"tanggal": TODAY, "diajukan_oleh": json.dumps(BASE_RECORD["nip"]), "alasan": '"x"', **members}
        if step == "pemberitahuan":
            members = {"tanggal": members["tanggal"]}
    _answered(_post(client, f"/v1/decisions/{ids[which]}/{step}", members))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["diputus_oleh", "tanggal", "hasil", "set", "alasan", "other"]),
                       st.one_of(DATE, NIP, TEXT, st.sampled_from(['"ditolak"', '"diterima"', '"diubah"']),
                                 _object(VALUE, 3)), max_size=6),
       st.dictionaries(st.sampled_from(["policy", "nip", "status", "limit", "cursor", "other"]), HOSTILE_TEXT,
                       max_size=4), HOSTILE_TEXT)
def test_a_hostile_putusan_or_keberatan_look_up_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                                           members: dict[str, str], params: dict[str, str],
                                                           keberatan_id: str) -> None:
    client, ids = served
    _answered(_post(client, f"/v1/keberatan/{ids['keberatan']}/putusan", members))
    _answered(client.get("/v1/keberatan", params=params))
    _answered(client.get(f"/v1/keberatan/{quote(keberatan_id, safe='')}"))
    _answered(_post(client, f"/v1/keberatan/{quote(keberatan_id, safe='')}/putusan", members))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(["format", "lang", "other"]),
                       st.one_of(st.sampled_from(["html", "pdf", "id", "en"]), HOSTILE_TEXT), max_size=3),
       st.one_of(st.sampled_from(["en-US,en;q=0.9", "id", "*", ""]), HOSTILE_TEXT.map(lambda t: t[:200])),
       st.one_of(st.sampled_from(["alone", "member"]), HOSTILE_TEXT))
def test_a_hostile_letter_request_is_answered(served: tuple[TestClient[Litestar], dict[str, str]],
                                              params: dict[str, str], accept: str, which: str) -> None:
    client, ids = served
    decision_id = ids.get(which, quote(which, safe=""))
    params = {k: v for k, v in params.items() if not (k == "format" and v == "pdf")}  # a PDF costs a browser
    headers = {"accept-language": "".join(c for c in accept if " " <= c <= "~")}  # what a header can carry
    response = client.get(f"/v1/decisions/{decision_id}/surat", params=params, headers=headers)
    if response.status_code == 200:  # the letter, in a language it names
        assert response.headers["content-type"] == "text/html; charset=utf-8" and "<h1>" in response.text
        assert response.headers["content-language"] in ("id", "en")
    else:
        _answered(response)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(VALUE, st.one_of(VALUE, _object(st.one_of(VALUE, st.sampled_from(
    ['"tpp.diterima"', '"evaluasi.predikat"', '"sangat_baik"', "4500000", "1e400", '"9e99999"'])), 3)),
    st.one_of(st.none(), VALUE))
def test_a_hostile_what_if_is_answered(served: tuple[TestClient[Litestar], dict[str, str]], record: str, goal: str,
                                       as_of: str | None) -> None:
    client, _ = served
    body = {"record": record, "goal": goal, **({"as_of": as_of} if as_of is not None else {})}
    _answered(_post(client, "/v1/policies/nasional/what-if", body))
