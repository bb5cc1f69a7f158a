"""The HTTP service, through Litestar's TestClient: every endpoint and every error it answers."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine, ErrorResult, to_json
from kinerja_rules.server import KeyRing, Limits, PolicyService, create_app, hash_key
from kinerja_rules.server.service import Shared
from tests.conftest import BASE_RECORD, POLICIES, metric
from tests.test_evaluate import FAULTY

PROBLEM = "application/problem+json"
_JSON = msgspec.json.Encoder(decimal_format="number")


@pytest.fixture(scope="module")
def app(engine: Engine) -> Litestar:
    return create_app(engine)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as c:
        yield c


def evaluate(client: TestClient[Litestar], body: Any, policy: str = "nasional", **kw: Any) -> Any:
    content = body if isinstance(body, bytes) else _JSON.encode(body)
    return client.post(f"/v1/policies/{policy}/evaluate", content=content,
                       headers={"content-type": "application/json", **kw.pop("headers", {})}, **kw)


def exact(content: bytes) -> Any:
    """JSON with its decimals kept exact, so `100.00` stays distinct from `100.0`."""
    return msgspec.json.Decoder(float_hook=Decimal).decode(content)


def assert_problem(response: Any, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{name}" and problem["status"] == status and problem["title"]
    return problem


# ---- evaluate -------------------------------------------------------------------

def test_evaluate_gives_the_decision_kinerja_eval_prints(client: TestClient[Litestar], engine: Engine) -> None:
    response = evaluate(client, {"record": BASE_RECORD})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == to_json(engine.evaluate("nasional", BASE_RECORD))
    assert response.json()["outputs"]["tpp"]["diterima"] == 4_500_000


def test_evaluate_keeps_decimals_exact(client: TestClient[Litestar]) -> None:
    body = json.dumps({"record": BASE_RECORD}).replace('"perilaku": {"atasan": 80}', '"perilaku": {"atasan": 89.995}')
    assert "89.995" in body
    response = evaluate(client, body.encode())
    assert response.status_code == 200, response.text
    assert '"skor_perilaku":90.00' in response.text


def test_evaluate_explain_and_as_of(client: TestClient[Litestar]) -> None:
    response = evaluate(client, {"record": BASE_RECORD, "as_of": "2025-07-01", "explain": True})
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["as_of"] == "2025-07-01"
    assert decision["trace"]["outputs"]["tpp.diterima"]["value"] == decision["outputs"]["tpp"]["diterima"]


def test_invalid_record_is_422_naming_every_path(client: TestClient[Litestar]) -> None:
    record = copy.deepcopy(BASE_RECORD)
    record["jabatan"]["kelas"] = 20
    record["status"] = "honorer"
    del record["perilaku"]
    problem = assert_problem(evaluate(client, {"record": record}), 422, "invalid-record")
    assert {e["path"] for e in problem["errors"]} == {"jabatan.kelas", "status", "perilaku"}
    assert problem["instance"] == "/v1/policies/nasional/evaluate"


def test_record_outside_the_policy_dates_is_422(client: TestClient[Litestar]) -> None:
    problem = assert_problem(evaluate(client, {"record": BASE_RECORD, "as_of": "2001-01-01"}), 422, "invalid-record")
    assert problem["errors"][0]["path"] == "as_of"


def test_evaluation_fault_is_422_naming_where(tmp_path: Path) -> None:
    (tmp_path / "rapuh.yaml").write_text(FAULTY)
    with TestClient(create_app(Engine.from_paths([tmp_path]))) as client:
        problem = assert_problem(evaluate(client, {"record": {"a": 1, "b": 0}, "as_of": "2024-05-01"}, "rapuh"),
                                 422, "evaluation-failed")
    assert problem["detail"] == "division by zero"
    assert problem["where"] == "definition 'rasio'" and problem["paths"] == ["a", "b"]
    assert set(problem["policy"]) == {"id", "version", "digest"} and problem["policy"]["id"] == "rapuh"


def test_a_client_pins_the_policy_it_was_promised(client: TestClient[Litestar], engine: Engine) -> None:
    digest = engine.policy("nasional").digest
    answer = evaluate(client, {"record": BASE_RECORD}, headers={"if-match": f'"{digest}"'})
    assert answer.status_code == 200 and answer.headers["etag"] == f'"{digest}"'
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content) and answer.headers["x-request-id"]
    other = "0" * 64
    problem = assert_problem(evaluate(client, {"record": BASE_RECORD}, headers={"if-match": f'"{other}"'}), 412,
                             "policy-changed")
    assert other in problem["detail"] and digest in problem["detail"]
    batch = client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD]},
                        headers={"if-match": f'"{other}", "{digest}"'})
    assert batch.status_code == 200 and batch.headers["etag"] == f'"{digest}"'
    assert evaluate(client, {"record": BASE_RECORD}, headers={"if-match": "*"}).status_code == 200
    assert_problem(evaluate(client, {"record": BASE_RECORD}, headers={"if-match": "nasional"}), 400, "bad-request")
    assert client.get("/v1/policies/nasional").headers["etag"] == f'"{digest}"'


def test_a_request_id_is_kept_or_made_and_logged(engine: Engine) -> None:
    stream = io.BytesIO()
    with TestClient(create_app(engine, access_log=stream)) as client:
        given = client.get("/health", headers={"x-request-id": "ekinerja-42"})
        made = client.get("/health", headers={"x-request-id": "a b\u0000" * 50})
    assert given.headers["x-request-id"] == "ekinerja-42"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])  # an id that is not plain is replaced
    logged = [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()]
    assert logged == ["ekinerja-42", made.headers["x-request-id"]]


def test_cors_is_off_unless_an_origin_is_named(engine: Engine) -> None:
    portal = "https://portal.example.go.id"
    preflight = {"origin": portal, "access-control-request-method": "POST",
                 "access-control-request-headers": "authorization, content-type, if-match"}
    with TestClient(create_app(engine)) as client:
        answer = client.options("/v1/policies/nasional/evaluate", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    with TestClient(create_app(engine, cors_origins=[portal])) as client:
        answer = client.options("/v1/policies/nasional/evaluate", headers=preflight)
        assert answer.status_code in (200, 204) and answer.headers["access-control-allow-origin"] == portal
        assert "if-match" in answer.headers["access-control-allow-headers"].lower()
        stranger = client.options("/v1/policies/nasional/evaluate",
                                  headers={**preflight, "origin": "https://elsewhere.example"})
        assert stranger.headers.get("access-control-allow-origin") != "https://elsewhere.example"
        real = evaluate(client, {"record": BASE_RECORD}, headers={"origin": portal})
        assert real.headers["access-control-allow-origin"] == portal
        assert "etag" in real.headers["access-control-expose-headers"].lower()


def test_the_published_schema_anchors_patterns_as_the_server_matches_them(client: TestClient[Litestar]) -> None:
    import jsonschema

    schema = client.get("/v1/policies/nasional").json()["input_schema"]
    for nip, accepted in (("198507122010011003", True), ("1985071220100110031", False), ("x198507122010011003", False)):
        record = {**BASE_RECORD, "nip": nip}
        by_schema = jsonschema.Draft202012Validator(schema).is_valid(record)
        by_server = evaluate(client, {"record": record}).status_code == 200
        assert by_schema == by_server == accepted, nip


def test_unknown_policy_is_404_with_a_suggestion(client: TestClient[Litestar]) -> None:
    problem = assert_problem(evaluate(client, {"record": BASE_RECORD}, "nasionall"), 404, "unknown-policy")
    assert "did you mean 'nasional'" in problem["detail"] and problem["policy"] == "nasionall"
    assert_problem(client.get("/v1/policies/nope"), 404, "unknown-policy")


@pytest.mark.parametrize(("body", "status", "name", "path"), [
    (b'{"record": ', 400, "malformed-json", None),
    (b"", 400, "missing-body", None),
    (b"[1, 2]", 422, "invalid-body", ""),
    (b'{"record": [1]}', 422, "invalid-body", "record"),
    (b'{"record": {}, "as_of": "2025-13-01"}', 422, "invalid-body", "as_of"),
    (b'{"record": {}, "explain": "yes"}', 422, "invalid-body", "explain"),
    (b'{"records": []}', 422, "invalid-body", "records"),
    (b'{"as_of": "2025-01-01"}', 422, "invalid-body", "record"),
])
def test_bad_bodies_name_the_field(client: TestClient[Litestar], body: bytes, status: int, name: str,
                                   path: str | None) -> None:
    problem = assert_problem(evaluate(client, body), status, name)
    if path is not None:
        assert problem["errors"][0]["path"] == path


def test_non_json_content_type_is_415(client: TestClient[Litestar]) -> None:
    response = client.post("/v1/policies/nasional/evaluate", content=b"record=1",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415, "unsupported-media-type")


def test_body_larger_than_the_limit_is_413(engine: Engine) -> None:
    with TestClient(create_app(engine, limits=Limits(max_body_bytes=1000))) as client:
        assert evaluate(client, {"record": BASE_RECORD}).status_code == 200
        padded = {"record": {**BASE_RECORD, "catatan": "x" * 2000}}
        assert_problem(evaluate(client, padded), 413, "body-too-large")


def test_depth_and_list_limits(engine: Engine) -> None:
    deep: Any = 1
    for _ in range(10):
        deep = [deep]
    with TestClient(create_app(engine, limits=Limits(max_depth=8, max_list_items=5))) as client:
        problem = assert_problem(evaluate(client, {"record": {**BASE_RECORD, "lampiran": deep}}), 422, "too-deep")
        assert problem["errors"][0]["path"].startswith("record.lampiran[0]")
        long = {**BASE_RECORD, "riwayat_predikat": ["baik"] * 6}
        problem = assert_problem(evaluate(client, {"record": long}), 422, "list-too-long")
        assert problem["errors"][0]["path"] == "record.riwayat_predikat"
        response = client.post("/v1/policies/nasional/evaluate/batch",
                               json={"records": [BASE_RECORD, {**BASE_RECORD, "lampiran": deep}, long]})
        results = response.json()["results"]
        assert "outputs" in results[0]
        assert results[1]["error"]["kind"] == "input" and results[1]["error"]["fields"][0]["path"].startswith(
            "records[1].lampiran")
        assert results[2]["error"]["fields"][0]["path"] == "records[2].riwayat_predikat"


def test_nesting_past_the_decoder_is_refused(client: TestClient[Litestar]) -> None:
    body = b'{"record": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    assert_problem(evaluate(client, body), 422, "too-deep")


# ---- batch ----------------------------------------------------------------------

def test_batch_in_order_and_one_bad_record_fails_alone(client: TestClient[Litestar], engine: Engine) -> None:
    bad = {**BASE_RECORD, "jabatan": {"jenis": "pelaksana", "kelas": 99}}
    other = {**BASE_RECORD, "perilaku": {"atasan": 95}}
    response = client.post("/v1/policies/nasional/evaluate/batch",
                           json={"records": [BASE_RECORD, bad, 5, other], "as_of": "2025-07-01"})
    assert response.status_code == 200
    results = exact(response.content)["results"]
    assert len(results) == 4
    assert results[0] == {"result": "decision",
                          **exact(to_json(engine.evaluate("nasional", BASE_RECORD, as_of=dt.date(2025, 7, 1))))}
    assert [r["result"] for r in results] == ["decision", "error", "error", "decision"]
    assert results[1]["error"]["fields"] == [{"path": "jabatan.kelas", "message": results[1]["error"]["fields"][0]
                                              ["message"]}]
    assert results[2]["error"]["fields"][0]["message"] == "a record must be a JSON object"
    assert results[3]["outputs"]["evaluasi"]["skor_perilaku"] == 95
    assert results[3]["outputs"] != results[0]["outputs"]


def test_batch_longer_than_the_limit_is_422(engine: Engine) -> None:
    with TestClient(create_app(engine, limits=Limits(max_batch=2))) as client:
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD] * 3})
        problem = assert_problem(response, 422, "batch-too-long")
        assert problem["errors"][0]["path"] == "records"


def test_large_batch_is_decided_off_the_event_loop(client: TestClient[Litestar],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules.server import app as app_module

    offloaded: list[Any] = []
    run_sync = app_module.to_thread.run_sync

    async def spy(fn: Any, *args: Any, **kwargs: Any) -> Any:
        offloaded.append(fn)
        return await run_sync(fn, *args, **kwargs)

    monkeypatch.setattr(app_module.to_thread, "run_sync", spy)
    records = [{**BASE_RECORD, "nip": f"{198507122010011000 + i}"} for i in range(100)]
    results = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records}).json()["results"]
    assert [r["outputs"]["tpp"]["diterima"] for r in results] == [4_500_000] * 100
    assert len(offloaded) == 1
    client.post("/v1/policies/nasional/evaluate/batch", json={"records": records[:10]})
    assert len(offloaded) == 1  # a small batch is quicker decided on the loop than handed to a thread


# ---- policies, validate ---------------------------------------------------------

def test_list_policies(client: TestClient[Litestar], engine: Engine) -> None:
    listed = client.get("/v1/policies").json()["policies"]
    assert [p["id"] for p in listed] == engine.ids
    sawahlunto = next(p for p in listed if p["id"] == "sawahlunto")
    assert sawahlunto["extends"] == "nasional" and len(sawahlunto["digest"]) == 64
    assert sawahlunto["effective"] == "2024-01-01" and "2025-07-01" in sawahlunto["effective_dates"]


def test_describe_policy(client: TestClient[Litestar]) -> None:
    policy = client.get("/v1/policies/sawahlunto").json()
    schema = policy["input_schema"]
    assert schema["type"] == "object" and "skp" in schema["required"]
    assert schema["properties"]["jabatan"]["properties"]["kelas"] == {"type": "integer", "minimum": 1, "maximum": 17}
    assert policy["outputs"]["tpp.diterima"]["type"] == "money"
    dated = [p for p in policy["parameters"].values() if len(p["values"]) > 1]
    assert dated and all(v["effective"] for p in dated for v in p["values"])
    assert policy["references"]


def test_validate_reports_diagnostics_and_loads_nothing(client: TestClient[Litestar], engine: Engine) -> None:
    text = "policy: coba\nextends: nasionall\n"
    response = client.post("/v1/validate?name=coba.yaml", content=text, headers={"content-type": "application/yaml"})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    diagnostic = body["diagnostics"][0]
    assert (diagnostic["file"], diagnostic["line"], diagnostic["column"], diagnostic["code"]) == \
           ("coba.yaml", 2, 10, "E024")
    assert "did you mean 'nasional'" in diagnostic["message"]
    assert "coba" not in client.get("/ready").json()["policies"]


def test_validate_accepts_a_valid_region(client: TestClient[Litestar]) -> None:
    text = (POLICIES / "sawahlunto" / "policy.yaml").read_text().replace("policy: sawahlunto", "policy: coba")
    body = client.post("/v1/validate", content=text, headers={"content-type": "text/plain"}).json()
    assert body == {"valid": True, "policies": ["coba"], "diagnostics": [], "warnings": body["warnings"]}


@pytest.mark.parametrize(("content", "ctype", "status", "name"), [
    (b"", "application/yaml", 400, "missing-body"),
    (b"\xff\xfe", "application/yaml", 400, "bad-request"),
    (b'{"files": {"a.yaml": "policy: \xff"}}', "application/json", 400, "bad-request"),
    (b"policy: x", "image/png", 415, "unsupported-media-type"),
])
def test_validate_bad_bodies(client: TestClient[Litestar], content: bytes, ctype: str, status: int,
                             name: str) -> None:
    assert_problem(client.post("/v1/validate", content=content, headers={"content-type": ctype}), status, name)


def test_validate_yaml_errors_have_positions(client: TestClient[Litestar]) -> None:
    body = client.post("/v1/validate", content="policy: x\n  bad: [", headers={"content-type": "text/yaml"}).json()
    assert body["valid"] is False and body["diagnostics"][0]["line"] >= 1


def _big_table(rows: int, extends: str = "nasional") -> str:
    cells = "\n".join(f'      r{i}: ["[{i}..{i + 1})", "{i}"]' for i in range(rows))
    return (f'policy: besar\nversion: "1"\nextends: {extends}\neffective: 2025-01-01\ntables:\n  besar:\n'
            f'    inputs: {{x: decimal}}\n    output: integer\n    hit: unique\n    default: "0"\n    rows:\n{cells}\n')


def test_table_analysis_scales_and_says_what_its_budget_left_out(engine: Engine) -> None:
    from kinerja_rules.server.validation import analysis_budget

    overlapping = _big_table(3000).replace('r2999: ["[2999..3000)"', 'r2999: ["[2998..3000)"')
    report = engine.validate_text(overlapping, "besar.yaml")  # minutes when every row ran on every sample
    assert [(d.code, d.message) for d in report.errors] == [
        ("E202", "rows 'r2998' and 'r2999' of unique table 'besar' overlap: both match x = 2998")]
    with analysis_budget(0):  # a budget already spent: the answer says which table was not analysed
        report = engine.validate_text(overlapping, "besar.yaml")
    assert not report.errors
    assert [d.message for d in report.warnings if d.code == "W201" and "'besar'" in d.message] == [
        "table 'besar' was not analysed within the time limit (0 of 6003 input combinations)"]


def test_validation_runs_in_its_own_process_within_a_hard_time_limit(engine: Engine) -> None:
    from kinerja_rules.server.validation import Validator

    validator = Validator(processes=1, seconds=0.4)
    with TestClient(create_app(engine, validator=validator)) as client:
        slow = client.post("/v1/validate", content=_big_table(4000), headers={"content-type": "text/yaml"})
        assert "0.4 s" in assert_problem(slow, 422, "validation-timeout")["detail"]
        validator.seconds = 60  # a fresh process checks the next document
        body = client.post("/v1/validate", content=_big_table(20), headers={"content-type": "text/yaml"}).json()
        assert body["valid"] is True and body["policies"] == ["besar"]
        wrong = client.post("/v1/validate", content="policy: coba\nextends: nasionall\n",
                            headers={"content-type": "text/yaml"}).json()
        assert "did you mean 'nasional'" in wrong["diagnostics"][0]["message"]


def test_validation_waits_in_a_bounded_queue(engine: Engine) -> None:
    from kinerja_rules.server.validation import Validator

    validator = Validator(processes=0)
    validator.waiting = 4  # as many as may wait
    with TestClient(create_app(engine, validator=validator)) as client:
        busy = client.post("/v1/validate", content=_big_table(5), headers={"content-type": "text/yaml"})
        assert_problem(busy, 503, "validation-busy")


# ---- reload ---------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def _bump(path: Path, version: str) -> None:
    text = path.read_text()
    old = re.search(r'^version: "?([0-9.]+)"?$', text, re.M)
    assert old is not None
    path.write_text(text.replace(old.group(0), f'version: "{version}"', 1))


def _break(path: Path) -> None:
    path.write_text(path.read_text().replace("outputs:", "outputs:\n  rusak: {type: integer, expr: \"tidak_ada\"}", 1))


def test_reload_that_compiles_replaces_the_set(folder: Path) -> None:
    app = create_app(Engine.from_paths([folder]), policies=[folder])
    with TestClient(app) as client:
        assert client.get("/ready").json()["generation"] == 0
        _bump(folder / "makassar" / "policy.yaml", "2099.1")
        response = client.post("/v1/admin/reload")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["generation"] == 1 and answer["failed"] == [] and answer["removed"] == []
        assert answer["reloaded"] == ["kotalama", "makassar", "nasional", "plaju", "sawahlunto"]
        assert client.get("/v1/policies/makassar").json()["version"] == "2099.1"
        assert client.get("/ready").json()["generation"] == 1
        text = client.get("/metrics").text
        assert metric(text, "kinerja_reloads_total", outcome="ok") == 1
        stages = {s: metric(text, "kinerja_policy_stage_seconds", stage=s)
                  for s in ("load", "documents", "assemble", "check", "compile")}
        assert all(seconds is not None and seconds > 0 for seconds in stages.values()), stages


def test_one_regions_mistake_never_takes_another_down(folder: Path) -> None:
    app = create_app(Engine.from_paths([folder]), policies=[folder])
    with TestClient(app) as client:
        makassar = client.get("/v1/policies/makassar").json()
        _break(folder / "makassar" / "policy.yaml")
        _bump(folder / "sawahlunto" / "policy.yaml", "2099.2")
        answer = client.post("/v1/admin/reload").json()
        assert answer["generation"] == 1 and "makassar" not in answer["reloaded"] and "sawahlunto" in answer["reloaded"]
        [failed] = answer["failed"]
        assert failed["policy"] == "makassar"
        assert [(d["code"], Path(d["file"]).name) for d in failed["diagnostics"]] == [("E105", "policy.yaml")]
        assert client.get("/v1/policies/sawahlunto").json()["version"] == "2099.2"
        assert client.get("/v1/policies/makassar").json()["digest"] == makassar["digest"]  # its last good version
        assert evaluate(client, {"record": BASE_RECORD}, "makassar").status_code == 200
        ready = client.get("/ready").json()
        assert ready["generation"] == 1 and [f["policy"] for f in ready["failed"]] == ["makassar"]
        assert metric(client.get("/metrics").text, "kinerja_reloads_total", outcome="partial") == 1


def test_a_failing_parent_keeps_its_children_at_their_last_good_version(folder: Path) -> None:
    app = create_app(Engine.from_paths([folder]), policies=[folder])
    with TestClient(app) as client:
        digests = {p["id"]: p["digest"] for p in client.get("/v1/policies").json()["policies"]}
        _break(folder / "nasional.yaml")
        _bump(folder / "makassar" / "policy.yaml", "2099.1")
        answer = client.post("/v1/admin/reload").json()
        assert answer["reloaded"] == [] and [f["policy"] for f in answer["failed"]] == sorted(digests)
        for failed in answer["failed"]:  # each names the parent's mistake that holds it back
            assert [Path(d["file"]).name for d in failed["diagnostics"]] == ["nasional.yaml"]
        assert {p["id"]: p["digest"] for p in client.get("/v1/policies").json()["policies"]} == digests


def test_a_new_policy_that_fails_stays_out_with_its_children(folder: Path) -> None:
    app = create_app(Engine.from_paths([folder]), policies=[folder])
    with TestClient(app) as client:
        (folder / "baru.yaml").write_text('policy: baru\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'
                                          'outputs:\n  rusak: {type: integer, expr: "tidak_ada"}\n')
        (folder / "anak.yaml").write_text('policy: anak\nversion: "1"\nextends: baru\neffective: 2025-01-01\n')
        (folder / "lain.yaml").write_text('policy: lain\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n')
        answer = client.post("/v1/admin/reload").json()
        assert "lain" in answer["reloaded"] and {f["policy"] for f in answer["failed"]} == {"anak", "baru"}
        ids = [p["id"] for p in client.get("/v1/policies").json()["policies"]]
        assert "lain" in ids and "baru" not in ids and "anak" not in ids
        (folder / "lain.yaml").unlink()  # a policy taken out of the folder leaves service
        assert client.post("/v1/admin/reload").json()["removed"] == ["lain"]


def test_a_folder_that_cannot_be_read_as_a_whole_changes_nothing(folder: Path) -> None:
    app = create_app(Engine.from_paths([folder]), policies=[folder])
    with TestClient(app) as client:
        digest = client.get("/v1/policies/nasional").json()["digest"]
        (folder / "tanpa-id.yaml").write_text("outputs: [\n")  # no policy can be named for it
        problem = assert_problem(client.post("/v1/admin/reload"), 422, "reload-failed")
        where = problem["diagnostics"][0]
        assert where["file"].endswith("tanpa-id.yaml") and where["line"] > 0 and where["code"]
        assert client.get("/v1/policies/nasional").json()["digest"] == digest
        assert client.get("/ready").json()["generation"] == 0
        assert metric(client.get("/metrics").text, "kinerja_reloads_total", outcome="failed") == 1


def test_another_worker_takes_up_the_generation_from_its_files(folder: Path, tmp_path: Path) -> None:
    shared = Shared(tmp_path / "shared", workers=2)
    first = PolicyService(Engine.from_paths([folder]), [folder], shared=shared)
    second = PolicyService(Engine.from_paths([folder]), [folder], shared=shared)
    _break(folder / "makassar" / "policy.yaml")
    _bump(folder / "nasional.yaml", "2099.3")
    assert not first.reload().refused and first.generation == 1
    (folder / "nasional.yaml").write_text("policy: nasional\n")  # the folder changes again: the others never read it
    assert second._catch_up() and second.generation == 1
    assert [f.policy for f in second.failed] == ["makassar"]
    assert {p.id: p.digest for p in second.engine.policies()} == {p.id: p.digest for p in first.engine.policies()}
    assert second.engine.policy("nasional").version == "2099.3"
    assert second.engine.policy("makassar").version == first.engine.policy("makassar").version


def test_a_worker_that_starts_after_a_reload_takes_up_the_generation(folder: Path, tmp_path: Path) -> None:
    import asyncio

    shared = Shared(tmp_path / "shared", workers=2)
    first = PolicyService(Engine.from_paths([folder]), [folder], shared=shared)
    late = PolicyService(Engine.from_paths([folder]), [folder], shared=shared)  # compiled, not yet started
    _bump(folder / "nasional.yaml", "2099.4")
    assert not first.reload().refused and first.generation == 1  # published before the late one watches

    async def started() -> int:
        await late.start()
        try:
            for _ in range(200):  # its watcher looks every WATCH_SECONDS
                if late.generation == 1:
                    break
                await asyncio.sleep(0.05)
            return late.generation
        finally:
            await late.stop()

    assert asyncio.run(started()) == 1
    assert late.engine.policy("nasional").version == "2099.4"


def test_reload_without_a_folder_is_409(client: TestClient[Litestar]) -> None:
    assert_problem(client.post("/v1/admin/reload"), 409, "reload-unavailable")


def test_a_request_keeps_the_engine_it_started_with(folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder])
    started = service.current()
    (folder / "makassar" / "policy.yaml").unlink()
    (folder / "makassar" / "tests.yaml").unlink()
    assert service.reload().removed == ("makassar",)
    assert "makassar" in started.ids and "makassar" not in service.current().ids
    assert started.evaluate("makassar", BASE_RECORD).policy.id == "makassar"


# ---- probes, docs, routing errors -------------------------------------------------

def test_health_ready_and_draining(engine: Engine) -> None:
    service = PolicyService(engine)
    with TestClient(create_app(service)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json()["policies"] == engine.ids
        service.draining = True
        assert_problem(client.get("/ready"), 503, "not-ready")
    empty = PolicyService(Engine({}))
    with TestClient(create_app(empty)) as client:
        assert_problem(client.get("/ready"), 503, "not-ready")


def test_metrics_count_requests_decisions_and_policies(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        evaluate(client, {"record": BASE_RECORD})
        evaluate(client, {"record": {}})
        client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD, {}]})
        client.get("/nowhere")
        response = client.get("/metrics")
        text = response.text
    assert response.headers["content-type"].count("charset") == 1
    route = "/v1/policies/{policy_id}/evaluate"
    assert metric(text, "kinerja_http_requests_total", endpoint=route, method="POST", status="200") == 1
    assert metric(text, "kinerja_http_requests_total", endpoint=route, method="POST", status="422") == 1
    assert metric(text, "kinerja_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert metric(text, "kinerja_decisions_total", policy="nasional", outcome="decided") == 2
    assert metric(text, "kinerja_decisions_total", policy="nasional", outcome="error") == 2
    assert metric(text, "kinerja_http_request_duration_seconds_count", endpoint=route, method="POST",
                  status="422") == 1
    assert metric(text, "kinerja_http_request_duration_seconds_bucket", endpoint=route, method="POST",
                  status="422", le="+Inf") == 1
    assert metric(text, "kinerja_batch_records_total", decided_in="service") == 2
    digest = engine.policy("nasional").digest
    assert metric(text, "kinerja_policy_info", policy="nasional", version="2024.1", digest=digest) == 1
    assert metric(text, "kinerja_policy_generation") == 0


def test_openapi_documents_the_bodies(client: TestClient[Litestar]) -> None:
    spec = client.get("/docs/openapi.json").json()
    post = spec["paths"]["/v1/policies/{policy_id}/evaluate"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/EvaluateRequest"}
    assert spec["components"]["schemas"]["EvaluateRequest"]["required"] == ["record"]
    assert "422" in post["responses"] and "404" in post["responses"]
    assert {"/v1/policies", "/v1/validate", "/v1/admin/reload", "/health", "/ready", "/metrics"} <= set(spec["paths"])
    listed = spec["paths"]["/v1/policies"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/PolicyList"}
    summary = spec["components"]["schemas"]["PolicySummary"]["properties"]
    assert set(summary) == set(client.get("/v1/policies").json()["policies"][0])
    detail = spec["components"]["schemas"]["PolicyDetail"]["properties"]
    assert set(detail) == set(client.get("/v1/policies/nasional").json())
    assert client.get("/docs").status_code == 200


def test_the_api_reference_works_offline(client: TestClient[Litestar]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    hosts = re.findall(r"""(?:src|href)=["']((?:https?:)?//[^"']+)""", page.text)
    assert hosts == [], hosts  # every script, style and icon comes from this service
    assets = re.findall(r"""(?:src|href)=["'](/assets/[^"']+)""", page.text)
    assert len(assets) == 4
    for path in assets:
        asset = client.get(path)
        assert asset.status_code == 200 and len(asset.content) > 500, path
        assert "max-age" in asset.headers["cache-control"]
    assert "openapi" in page.text and '"/v1/policies/{policy_id}/evaluate"' in page.text


def test_problem_types_are_documented(client: TestClient[Litestar]) -> None:
    about = client.get("/problems/invalid-record").json()
    assert about["status"] == 422 and about["description"]
    assert_problem(client.get("/problems/nope"), 404, "unknown-problem")


def test_unknown_route_and_wrong_method(client: TestClient[Litestar]) -> None:
    assert_problem(client.get("/v2/nothing"), 404, "not-found")
    assert_problem(client.get("/v1/policies/nasional/evaluate"), 405, "method-not-allowed")


def test_access_log_is_one_json_line_per_request(engine: Engine) -> None:
    stream = io.BytesIO()
    with TestClient(create_app(engine, access_log=stream)) as client:
        evaluate(client, {"record": BASE_RECORD})
        client.get("/nowhere")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/v1/policies/nasional/evaluate", 200), ("GET", "/nowhere", 404)]
    assert entries[0]["policy"] == "nasional" and entries[0]["ms"] > 0 and entries[0]["time"]


def test_a_broken_access_log_loses_lines_not_requests(engine: Engine) -> None:
    stream = io.BytesIO()
    stream.close()
    with TestClient(create_app(engine, access_log=stream)) as client:
        assert evaluate(client, {"record": BASE_RECORD}).status_code == 200


# ---- API keys -------------------------------------------------------------------

KEYS = {"payroll": "kr_payroll_key", "ops": "kr_ops_key"}


@pytest.fixture
def secured(engine: Engine, folder: Path) -> Iterator[TestClient[Litestar]]:
    ring = KeyRing.parse(json.dumps({"keys": [
        {"name": "payroll", "sha256": hash_key(KEYS["payroll"]), "policies": ["nasional", "sawahlunto"]},
        {"name": "ops", "sha256": hash_key(KEYS["ops"]), "policies": ["*"], "admin": True}]}), "test keys")
    with TestClient(create_app(Engine.from_paths([folder]), policies=[folder], keys=ring)) as client:
        yield client


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[name]}"}


def test_keys_required_on_v1(secured: TestClient[Litestar]) -> None:
    problem = assert_problem(evaluate(secured, {"record": BASE_RECORD}), 401, "unauthorized")
    assert "Bearer" in problem["detail"]
    response = evaluate(secured, {"record": BASE_RECORD}, headers={"authorization": "Bearer wrong"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(secured.get("/v1/policies", headers={"authorization": "Basic abc"}), 401, "unauthorized")
    assert secured.get("/health").status_code == 200 and secured.get("/ready").status_code == 200


def test_validate_resolves_only_the_policies_a_key_may_use(secured: TestClient[Litestar]) -> None:
    def diagnostics(text: str, key: str) -> list[str]:
        body = secured.post("/v1/validate", content=text, headers={"content-type": "text/yaml", **bearer(key)}).json()
        return [d["message"] for d in body["diagnostics"]]

    typo = ('policy: coba\nversion: "1"\nextends: makassar\neffective: 2025-01-01\n'
            'definitions:\n  x: {expr: "skor_aktivitass + 1"}\n')
    assert any("did you mean 'skor_aktivitas'" in m for m in diagnostics(typo, "ops"))
    hidden = diagnostics(typo, "payroll")  # makassar is not the payroll key's: it does not exist for it
    assert hidden and not any("skor_aktivitas" in m for m in hidden)
    unknown = diagnostics(typo.replace("makassar", "tidakada"), "payroll")[0]
    assert diagnostics(typo, "payroll")[0] == unknown.replace("tidakada", "makassar")  # no hint that it exists
    allowed = typo.replace("makassar", "sawahlunto").replace("skor_aktivitass", "1")
    assert diagnostics(allowed, "payroll") == []


def test_metrics_need_an_admin_key_unless_public(secured: TestClient[Litestar], engine: Engine) -> None:
    assert_problem(secured.get("/metrics"), 401, "unauthorized")
    assert_problem(secured.get("/metrics", headers=bearer("payroll")), 403, "forbidden")
    assert "kinerja_policy_info" in secured.get("/metrics", headers=bearer("ops")).text
    ring = KeyRing.parse(json.dumps({"keys": [{"name": "ops", "sha256": hash_key(KEYS["ops"]), "policies": [],
                                               "admin": True}]}), "k")
    with TestClient(create_app(engine, keys=ring, public_metrics=True)) as client:
        assert client.get("/metrics").status_code == 200


def test_key_scopes(secured: TestClient[Litestar]) -> None:
    assert evaluate(secured, {"record": BASE_RECORD}, headers=bearer("payroll")).status_code == 200
    problem = assert_problem(evaluate(secured, {"record": BASE_RECORD}, "makassar", headers=bearer("payroll")),
                             403, "forbidden")
    assert problem["policy"] == "makassar"
    assert_problem(secured.get("/v1/policies/makassar", headers=bearer("payroll")), 403, "forbidden")
    listed = [p["id"] for p in secured.get("/v1/policies", headers=bearer("payroll")).json()["policies"]]
    assert listed == ["nasional", "sawahlunto"]
    assert evaluate(secured, {"record": BASE_RECORD}, "makassar", headers=bearer("ops")).status_code == 200


def test_admin_scope_for_reload(secured: TestClient[Litestar]) -> None:
    assert_problem(secured.post("/v1/admin/reload"), 401, "unauthorized")
    assert_problem(secured.post("/v1/admin/reload", headers=bearer("payroll")), 403, "forbidden")
    assert secured.post("/v1/admin/reload", headers=bearer("ops")).status_code == 200
    assert secured.post("/v1/validate", content="policy: x\n",
                        headers={**bearer("payroll"), "content-type": "text/yaml"}).status_code == 200


@pytest.mark.parametrize(("text", "message"), [
    ("keys: [", "not valid YAML"),
    ("keys: [{name: a, sha256: abc, policies: ['*']}]", "64 lowercase hex"),
    ("keys: [{name: a, policies: ['*']}]", "missing required field `sha256`"),
    ("keys: [{name: a, sha256: '" + "0" * 64 + "', policies: []}]", "give 'policies'"),
    ("keys: [{name: a, sha256: '" + "0" * 64 + "', policies: ['*'], scope: x}]", "unknown field `scope`"),
    ("keys: [{name: a, sha256: " + "1" * 64 + ", policies: ['*']}]", "in quotes"),
    ("keys: []", "holds no keys"),
])
def test_bad_key_files_name_the_problem(text: str, message: str) -> None:
    from kinerja_rules.server import KeyFileError

    with pytest.raises(KeyFileError, match="keys.yaml") as err:
        KeyRing.parse(text, "keys.yaml")
    assert message in str(err.value)


def test_keys_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = {"keys": [{"name": "a", "sha256": hash_key("k1"), "policies": ["nasional"]}]}
    monkeypatch.setenv("KINERJA_API_KEYS", json.dumps(entry))
    ring = KeyRing.load()
    found = ring.find("k1")
    assert found is not None and found.name == "a" and ring.find("k2") is None
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: b, sha256: " + hash_key("k2") + ", policies: ['*'], admin: true}\n")
    path.chmod(0o600)  # whatever the umask: a key file others may write is refused
    monkeypatch.setenv("KINERJA_API_KEYS_FILE", str(path))
    found = KeyRing.load().find("k2")
    assert found is not None and found.admin
    monkeypatch.delenv("KINERJA_API_KEYS_FILE")
    monkeypatch.delenv("KINERJA_API_KEYS")
    assert not KeyRing.load()


def test_a_key_file_anyone_may_write_is_refused(tmp_path: Path) -> None:
    from kinerja_rules.server import KeyFileError

    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - {name: b, sha256: " + hash_key("k2") + ", policies: ['*'], admin: true}\n")
    path.chmod(0o666)
    with pytest.raises(KeyFileError, match="every user of this machine may write the key file"):
        KeyRing.load(path)
    path.chmod(0o600)
    assert KeyRing.load(path).find("k2") is not None


# ---- batch processes --------------------------------------------------------------

def _wait_for_pool(client: TestClient[Litestar], processes: int) -> None:
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["batch_processes"] < processes:
        assert time.monotonic() < deadline, "the batch processes did not start"
        time.sleep(0.05)


def test_large_batches_are_decided_by_the_batch_processes(engine: Engine, folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=2)
    records = [{**BASE_RECORD, "perilaku": {"atasan": 50 + i % 50}} for i in range(300)]
    records[7] = {"nip": 5}
    with TestClient(create_app(service, policies=[folder])) as client:
        _wait_for_pool(client, 2)
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records})
        assert service.pool is not None and service.pool.slices == 2
        results = exact(response.content)["results"]
        expected = [engine.evaluate_safely("nasional", r) for r in records]
        assert results == [{"result": "error" if isinstance(r, ErrorResult) else "decision", **exact(to_json(r))}
                           for r in expected]
        assert results[7]["error"]["kind"] == "record"
        path = folder / "makassar" / "policy.yaml"  # a reload gives the processes the new policies
        path.write_text(path.read_text().replace('version: "2025.1"', 'version: "2099.1"', 1))
        assert client.post("/v1/admin/reload").status_code == 200
        _wait_for_pool(client, 2)
        assert service.pool.digests["makassar"] == service.engine.policy("makassar").digest
    assert service.pool is None


def test_a_pool_holding_other_policies_is_not_trusted(folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=1)
    with TestClient(create_app(service, policies=[folder])) as client:
        _wait_for_pool(client, 1)
        assert service.pool is not None
        service.pool.digests["nasional"] = "0" * 64  # as if a reload landed while the pool started
        stale = service.pool
        records = [BASE_RECORD] * 300
        assert not stale.usable("nasional", service.engine.policy("nasional").digest, 300)
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records})
        assert len(response.json()["results"]) == 300 and stale.slices == 0
        answer = asyncio.run(stale.decide("nasional", "0" * 64, [msgspec.Raw(b"{}")], None, False, Limits()))
        assert answer is None


# ---- hostile input ------------------------------------------------------------------

_RECORD_JSON = json.dumps(BASE_RECORD)
HOSTILE = {  # name: (record, what the evaluate endpoint answers)
    "5000-digit integer": (_RECORD_JSON.replace('"kelas": 7', '"kelas": ' + "9" * 5000), 422),
    "huge exponent": (_RECORD_JSON.replace('"target": 1000', '"target": 1e-999999999'), 422),
    "lone surrogate": ('{"\\ud800": 1}', 400),
    "NaN": (_RECORD_JSON.replace('"atasan": 80', '"atasan": NaN'), 400),
    "megabyte string": (_RECORD_JSON.replace('"Dinas Kesehatan"', '"' + "x" * 1_000_000 + '"'), 200),
    "null": ("null", 422),
    "integer with a huge exponent": (_RECORD_JSON.replace('"kelas": 7', '"kelas": 1e1000000'), 422),
    "integer just past the range": (_RECORD_JSON.replace('"kelas": 7', '"kelas": 1e30000'), 422),
    "many huge exponents": (_RECORD_JSON.replace('"hari_kerja": 21', '"hari_kerja": 21, "terlambat_menit": ['
                                                 + ", ".join(["1e100000"] * 20) + "]"), 422),
    "year zero": (_RECORD_JSON.replace('"periode": "2025-03"', '"periode": "0000-01"'), 422),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_records_get_an_answer_never_a_500(client: TestClient[Litestar], name: str) -> None:
    record, status = HOSTILE[name]
    single = evaluate(client, ('{"record": ' + record + "}").encode())
    assert single.status_code == status
    if status != 200:
        assert single.headers["content-type"].startswith(PROBLEM) and single.json()["detail"]
    batch = client.post("/v1/policies/nasional/evaluate/batch",
                        content=('{"records": [' + record + ", " + _RECORD_JSON + "]}").encode(),
                        headers={"content-type": "application/json"})
    assert batch.status_code < 500
    if batch.status_code == 200:  # the hostile record fails alone
        results = batch.json()["results"]
        assert "outputs" in results[1]


def test_a_number_out_of_range_is_named_before_anything_is_computed(client: TestClient[Litestar]) -> None:
    problem = assert_problem(evaluate(client, ('{"record": ' + HOSTILE["huge exponent"][0] + "}").encode()), 422,
                             "invalid-record")
    assert problem["errors"] == [{"path": "skp.indikator[0].target",
                                  "message": "must be 0 or between 1e-24 and 1e+25 in magnitude, not 1E-999999999"}]


def test_an_integer_python_cannot_hold_fails_one_batch_record(client: TestClient[Litestar]) -> None:
    body = '{"records": [' + HOSTILE["5000-digit integer"][0] + ", " + _RECORD_JSON + "]}"
    results = client.post("/v1/policies/nasional/evaluate/batch", content=body.encode(),
                          headers={"content-type": "application/json"}).json()["results"]
    assert results[0]["error"]["fields"][0]["path"] == "records[0]" and "outputs" in results[1]


def test_a_key_given_twice_is_refused_with_its_place(client: TestClient[Litestar]) -> None:
    twice = _RECORD_JSON.replace('"kelas": 7', '"kelas": 7, "kelas": 12')
    problem = assert_problem(evaluate(client, ('{"record": ' + twice + "}").encode()), 422, "duplicate-key")
    assert problem["errors"] == [{"path": "record.jabatan", "message": "gives the key 'kelas' more than once"}]
    escaped = _RECORD_JSON.replace('"kelas": 7', '"kelas": 7, "\\u006belas": 12')
    assert_problem(evaluate(client, ('{"record": ' + escaped + "}").encode()), 422, "duplicate-key")
    body = ('{"record": ' + _RECORD_JSON + ', "record": ' + _RECORD_JSON + "}").encode()
    assert assert_problem(evaluate(client, body), 422, "duplicate-key")["detail"].startswith("the body:")
    assert evaluate(client, ('{"record": ' + _RECORD_JSON.replace('"Dinas Kesehatan"', '"a:b:c"') + "}")
                    .encode()).status_code == 200  # colons inside texts are not keys
    results = client.post("/v1/policies/nasional/evaluate/batch", headers={"content-type": "application/json"},
                          content=('{"records": [' + twice + ", " + _RECORD_JSON + "]}").encode()).json()["results"]
    assert results[0]["error"]["fields"] == [{"path": "records[0].jabatan",
                                              "message": "gives the key 'kelas' more than once"}]
    assert "outputs" in results[1]
    files = b'{"files": {"policy.yaml": "policy: a", "policy.yaml": "policy: b"}}'
    response = client.post("/v1/validate", content=files, headers={"content-type": "application/json"})
    assert assert_problem(response, 422, "duplicate-key")["errors"][0]["path"] == "files"


def test_a_text_record_full_of_commas_is_refused_as_a_record(engine: Engine) -> None:
    with TestClient(create_app(engine, limits=Limits(max_list_items=3))) as client:
        results = client.post("/v1/policies/nasional/evaluate/batch",
                              json={"records": ["a,b,c,d,e"]}).json()["results"]
    assert results[0]["error"]["fields"][0]["message"] == "a record must be a JSON object"


def test_a_dead_batch_process_leaves_batches_to_the_service_until_new_processes_are_up(folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=1)
    with TestClient(create_app(service, policies=[folder])) as client:
        _wait_for_pool(client, 1)
        assert service.pool is not None
        broken = service.pool
        for process in service.pool._executor._processes.values():  # as the kernel's OOM killer would
            process.kill()
            process.join()
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD] * 300})
        assert response.status_code == 200 and len(response.json()["results"]) == 300
        assert metric(client.get("/metrics").text, "kinerja_batch_records_total", decided_in="service") == 300
        _wait_for_pool(client, 1)
        assert service.pool is not broken
        client.post("/v1/policies/nasional/evaluate/batch", json={"records": [BASE_RECORD] * 300})
        assert metric(client.get("/metrics").text, "kinerja_batch_records_total", decided_in="batch_processes") == 300


def test_a_bad_record_in_a_pool_batch_fails_alone_and_the_pool_stays(folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=1)
    records = [BASE_RECORD] * 300
    records[150] = {**BASE_RECORD, "periode": "0000-01"}
    with TestClient(create_app(service, policies=[folder])) as client:
        _wait_for_pool(client, 1)
        assert service.pool is not None
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records})
        assert response.status_code == 200 and service.pool.slices == 1
        results = response.json()["results"]
        assert results[150]["error"]["fields"][0]["path"] == "periode"
        assert all("outputs" in r for i, r in enumerate(results) if i != 150)
        # a batch the processes raise on (a policy they do not hold) is decided here; they stay in service
        answer = asyncio.run(service.pool.decide("tidak_ada", "0" * 64, [msgspec.Raw(b"{}")], None, False, Limits()))
        assert answer is None and service.pool.ready == 1
        response = client.post("/v1/policies/nasional/evaluate/batch", json={"records": records})
        assert service.pool.slices == 2 and client.get("/ready").json()["batch_processes"] == 1


def test_a_fault_of_ours_on_one_record_is_that_records_internal_error(engine: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from kinerja_rules import engine as facade

    decide_one = facade.decide_record

    def faulty(policy: Any, record: Any, *args: Any) -> Any:
        if record.get("nip") == "boom":
            raise KeyError("a bug")
        return decide_one(policy, record, *args)

    monkeypatch.setattr(facade, "decide_record", faulty)
    with TestClient(create_app(engine)) as client:
        results = client.post("/v1/policies/nasional/evaluate/batch",
                              json={"records": [{**BASE_RECORD, "nip": "boom"}, BASE_RECORD]}).json()["results"]
    assert results[0]["error"]["kind"] == "internal" and "KeyError" in results[0]["error"]["message"]
    assert "outputs" in results[1]


def _long_lists(record: dict[str, Any], n: int = 3000) -> dict[str, Any]:
    return {**record, "presensi": {"hari_kerja": 21, "terlambat_menit": [45] * n},
            "skp": {"indikator": [{"nama": "x", "target": 10, "realisasi": 9}] * n}}


def test_a_trace_shows_at_most_a_hundred_lookups_of_a_table_and_counts_the_rest(engine: Engine) -> None:
    from kinerja_rules.evaluation.tracing import TRACE_ITEMS, explain_text

    decision = engine.evaluate("makassar", _long_lists(BASE_RECORD), explain=True)
    assert decision.trace is not None
    hits = {table: entry for table, entry in decision.trace["tables"].items()}
    assert len(hits["potongan_per_kejadian"]["hits"]) == TRACE_ITEMS
    assert hits["potongan_per_kejadian"]["omitted"] == 3000 - TRACE_ITEMS
    assert all(len(entry["hits"]) <= TRACE_ITEMS for entry in hits.values())
    short = engine.evaluate("makassar", _long_lists(BASE_RECORD, 3), explain=True)
    # it was 1.6 MB: every output repeated every row; now 3,000 items cost the hundred lookups shown
    assert len(to_json(decision)) < len(to_json(short)) + 6_000, (len(to_json(decision)), len(to_json(short)))
    assert f"and {3000 - TRACE_ITEMS} more lookups of" in explain_text(decision)


def test_answers_are_bounded_before_the_work_where_it_can_be_known(engine: Engine) -> None:
    limits = Limits(max_response_bytes=100_000, max_explain_batch=50)
    with TestClient(create_app(engine, limits=limits)) as client:
        problem = assert_problem(client.post("/v1/policies/makassar/evaluate/batch",
                                             json={"records": [BASE_RECORD] * 51, "explain": True}), 422,
                                 "batch-too-long")
        assert "explain" in problem["detail"] and problem["errors"][0]["path"] == "records"
        too_large = client.post("/v1/policies/makassar/evaluate/batch",
                                json={"records": [_long_lists(BASE_RECORD)] * 10, "explain": True})
        assert "100000 bytes" in assert_problem(too_large, 422, "response-too-large")["detail"]
        assert client.post("/v1/policies/makassar/evaluate/batch",
                           json={"records": [_long_lists(BASE_RECORD)] * 2, "explain": True}).status_code == 200
    with TestClient(create_app(engine, limits=Limits(max_response_bytes=10_000))) as client:
        assert_problem(evaluate(client, {"record": _long_lists(BASE_RECORD), "explain": True}, "makassar"), 422,
                       "response-too-large")
        assert evaluate(client, {"record": _long_lists(BASE_RECORD)}, "makassar").status_code == 200


def test_the_batch_processes_keep_the_response_limit(folder: Path) -> None:
    service = PolicyService(Engine.from_paths([folder]), [folder], batch_processes=1)
    limits = Limits(max_response_bytes=2_000_000, max_explain_batch=1_000)
    with TestClient(create_app(service, policies=[folder], limits=limits)) as client:
        _wait_for_pool(client, 1)
        assert service.pool is not None
        response = client.post("/v1/policies/makassar/evaluate/batch",
                               json={"records": [_long_lists(BASE_RECORD, 300)] * 300, "explain": True})
        assert_problem(response, 422, "response-too-large")
        assert service.pool.slices == 1 and service.pool.ready == 1


def test_a_body_that_is_not_utf8_is_a_400_and_a_batch_record_fails_alone(client: TestClient[Litestar]) -> None:
    problem = assert_problem(evaluate(client, b'{"record": {"nip": "\xff\xfe"}}'), 400, "malformed-json")
    assert problem["detail"].startswith("the body is not UTF-8")
    batch = client.post("/v1/policies/nasional/evaluate/batch", headers={"content-type": "application/json"},
                        content=b'{"records": [{"nip": "\xff"}, ' + _RECORD_JSON.encode() + b"]}")
    results = batch.json()["results"]
    assert batch.status_code == 200 and results[0]["error"]["message"].startswith("records[0]: not UTF-8")
    assert "outputs" in results[1]


def test_huge_numbers_are_refused_without_converting_them(client: TestClient[Litestar]) -> None:
    record = _RECORD_JSON.replace('"kelas": 7', '"kelas": 1e1000000')
    problem = assert_problem(evaluate(client, ('{"record": ' + record + "}").encode()), 422, "invalid-record")
    assert problem["errors"] == [{"path": "jabatan.kelas",
                                  "message": "must be 0 or between 1e-24 and 1e+25 in magnitude, not 1E+1000000"}]


def test_the_service_lists_the_plugins_it_loaded(client: TestClient[Litestar], engine: Engine) -> None:
    listed = {p["name"]: p for p in client.get("/v1/plugins").json()["plugins"]}
    assert set(engine.registry.plugins) <= set(listed)
    functions = {f["name"]: (name, f) for name, p in listed.items() for f in p["functions"]}
    assert set(functions) == set(engine.registry.functions)
    for name, spec in engine.registry.functions.items():
        plugin, entry = functions[name]
        assert plugin == spec.plugin and entry["returns"] == spec.returns
    indicators = {i["name"] for p in listed.values() for i in p["indicators"]}
    assert indicators == set(engine.registry.indicators)
    for name, version in engine.registry.plugins.items():  # the bundled plugins, with their versions
        assert listed[name]["version"] == version
