"""Every diagnostic code is catalogued, in English and Indonesian, with an example that really triggers it."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.catalogue import catalogued, entries, language, markdown, translate_message
from kinerja_rules.cli import main
from kinerja_rules.engine import discover, validate_files
from kinerja_rules.errors import Diagnostic
from kinerja_rules.server import create_app
from tests.conftest import POLICIES, ROOT, bundled

PACKAGE = ROOT / "kinerja_rules"
REGION = "policy: contoh\nextends: nasional\n"


def _emitted_codes() -> set[str]:
    codes: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        codes |= set(re.findall(r'"([EW]\d{3})"', path.read_text()))
    return codes


def test_every_code_the_checker_can_emit_is_catalogued_and_no_other() -> None:
    assert _emitted_codes() == set(entries())


@functools.cache
def _parents() -> tuple[Any, ...]:
    return tuple(bundled().sources())


def _trigger(code: str, capsys: pytest.CaptureFixture[str]) -> list[Diagnostic]:
    entry = entries()[code]
    if entry.example_command:
        main(list(entry.example_command))
        err = capsys.readouterr().err
        return [Diagnostic(code=c, message=m) for c, m in re.findall(r"(?:error|warning)\[(\w+)\]: (.*)", err)]
    if entry.example_files:
        texts = dict(entry.example_files)
    else:
        assert entry.example is not None, code
        text = entry.example if entry.example.startswith("policy:") else REGION + entry.example
        if entry.example_size:
            line = "# " + "padding " * 10 + "\n"
            text += line * (entry.example_size // len(line) + 1)
        texts = {"contoh.yaml": text}
    registry = discover([ROOT / entry.example_plugins]) if entry.example_plugins else None
    report = validate_files(texts, (), registry, base_sources=_parents())  # the folder as parsed once
    return [*report.problems, *report.warnings]


@pytest.mark.parametrize("code", sorted(entries()))
def test_the_example_triggers_its_code_with_a_catalogued_message(code: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    found = _trigger(code, capsys)
    mine = [d for d in found if d.code == code]
    assert mine, (code, [(d.code, d.message) for d in found])
    for d in mine:
        assert catalogued(code, d.message), (code, d.message)
        assert translate_message(code, d.message, "id") != d.message or code in ("E041", "E010", "E025")


def test_every_entry_speaks_both_languages() -> None:
    for code, entry in entries().items():
        assert entry.title["en"] and entry.title["id"] and entry.help["en"] and entry.help["id"], code
        for template in entry.messages:
            assert set(re.findall(r"\{(\w+)\}", template["en"])) == set(re.findall(r"\{(\w+)\}", template["id"])), \
                (code, template)


def test_docs_diagnostics_is_generated_from_the_catalogue() -> None:
    assert (ROOT / "docs" / "diagnostics.md").read_text() == markdown(), \
        "regenerate: python -m kinerja_rules.catalogue > docs/diagnostics.md"


@pytest.mark.parametrize("value, expected", [("id", "id"), ("en", "en"), ("id-ID,id;q=0.9,en;q=0.8", "id"),
                                             ("en-US,id;q=0.5", "en"), ("fr, id;q=0.2", "id"), ("xx", "en"),
                                             ("id;q=abc", "id"), ("", "en")])
def test_language_from_a_code_or_accept_language(value: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINERJA_LANG", raising=False)
    assert language(value) == expected


def test_check_speaks_indonesian_with_lang_or_env(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(REGION + "definitions:\n  x: {expr: kelass + 1}\n")
    for extra, env in ((["--lang", "id"], {}), ([], {"KINERJA_LANG": "id"})):
        result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "check", *extra, str(tmp_path)],
                                capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ, **env})
        assert "galat[E105]: nama 'kelass' tidak dikenal; maksud Anda 'jabatan.kelas'?" in result.stderr
        assert "1 galat" in result.stderr


def test_eval_translates_record_errors_on_output_only(tmp_path: Path) -> None:
    record = json.loads((ROOT / "examples" / "pegawai.json").read_text())
    record["jabatan"]["kelas"] = 99
    del record["status"]
    command = [sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional"]
    english = json.loads(subprocess.run(command, input=json.dumps(record), capture_output=True, text=True,
                                        cwd=ROOT).stdout)
    indonesian = json.loads(subprocess.run([*command, "--lang", "id"], input=json.dumps(record), capture_output=True,
                                           text=True, cwd=ROOT).stdout)
    assert english["error"]["fields"] == [{"path": "status", "message": "is required"},
                                          {"path": "jabatan.kelas", "message": "must be <= 17, not 99"}]
    assert indonesian["error"]["message"] == "rekaman tidak sah"
    assert indonesian["error"]["fields"] == [{"path": "status", "message": "wajib diisi"},
                                             {"path": "jabatan.kelas", "message": "harus <= 17, bukan 99"}]


def test_validate_honours_accept_language(engine: Engine) -> None:
    text = REGION + "definitions:\n  x: {expr: kelass + 1}\n"
    with TestClient(create_app(engine)) as client:
        answers = {lang: client.post("/v1/validate", content=text, headers={"content-type": "application/yaml",
                                                                            "accept-language": lang}).json()
                   for lang in ("id-ID,id;q=0.9", "en")}
    assert answers["id-ID,id;q=0.9"]["diagnostics"][0]["message"] == \
        "nama 'kelass' tidak dikenal; maksud Anda 'jabatan.kelas'?"
    assert answers["en"]["diagnostics"][0]["message"] == "unknown name 'kelass'; did you mean 'jabatan.kelas'?"


def test_an_uncatalogued_message_keeps_its_english_after_the_title() -> None:
    assert translate_message("E105", "something new", "id") == "Nama tidak dikenal: something new"


# ---- the policy file format, as JSON Schema -------------------------------------------------

def test_docs_policy_schema_is_generated_from_the_document_structs() -> None:
    from kinerja_rules.documents import policy_schema

    assert json.loads((ROOT / "docs" / "policy.schema.json").read_text()) == policy_schema(), \
        "regenerate docs/policy.schema.json from kinerja_rules.documents.policy_schema()"


def test_the_schema_covers_every_top_level_key_and_accepts_every_bundled_policy() -> None:
    import datetime as dt

    import jsonschema

    from kinerja_rules.documents import TOP_KEYS, policy_schema
    from kinerja_rules.loader import iter_policy_files, load_file

    schema = policy_schema()
    assert set(schema["$defs"]["PolicyDocument"]["properties"]) == set(TOP_KEYS)

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.isoformat() if isinstance(value, dt.date) else value

    validator = jsonschema.Draft202012Validator(schema)
    for path in iter_policy_files(POLICIES):
        assert not list(validator.iter_errors(plain(load_file(path).data))), path
    wrong = {"policy": "contoh", "definitons": {"x": {"expr": "1"}}, "parameters": {"y": {"type": "decimal"}}}
    messages = sorted(e.message for e in validator.iter_errors(wrong))
    assert any("definitons" in m for m in messages) and any("'values' is a required property" in m for m in messages)


def test_the_service_publishes_the_schema(engine: Engine) -> None:
    from kinerja_rules.documents import policy_schema

    with TestClient(create_app(engine)) as client:
        response = client.get("/v1/schema/policy")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/schema+json")
    assert response.json() == json.loads(json.dumps(policy_schema()))


# ---- one language rule: record errors, the runtime's messages and problem details ----

_SAMPLE = {"value": "'x'", "field_path": "skp.indikator[0].target", "line": "7", "count": "3", "limit": "100"}


def _sample(template: str) -> str:
    """An English message a template reads, its placeholders filled with plain values."""
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE.get(m.group(1), "7"), template)


def _fragments(template: str) -> list[str]:
    """The English words of a template that a translation must not keep (runs of 2 words or more)."""
    return [part.strip() for part in re.split(r"\{\w+\}", template) if len(part.strip().split()) >= 2]


ALLOWED_SAME = {"{field_path}: {message}"}  # a place and a message: nothing of its own to translate


def test_every_runtime_record_and_problem_text_has_its_own_indonesian() -> None:
    from kinerja_rules.catalogue import _data
    from kinerja_rules.server.problems import PROBLEMS

    for section in ("record", "runtime"):
        for template in _data()[section]:
            assert template["id"] and (template["id"] != template["en"] or template["en"] in ALLOWED_SAME), template
            assert set(re.findall(r"\{(\w+)\}", template["en"])) == set(re.findall(r"\{(\w+)\}", template["id"]))
    titles = _data()["problems"]
    assert set(titles) == set(PROBLEMS)
    assert all(titles[name]["id"] and titles[name]["id"] != title for name, (_, title, _) in PROBLEMS.items())


def test_each_record_and_runtime_message_in_indonesian_keeps_no_english_template() -> None:
    from kinerja_rules.catalogue import _data, record_catalogued, translate_record_message

    english = [fragment for section in ("record", "runtime") for t in _data()[section]
               for fragment in _fragments(t["en"]) if t["en"] not in ALLOWED_SAME]
    for section in ("record", "runtime"):
        for template in _data()[section]:
            message = _sample(template["en"])
            assert record_catalogued(message), message
            said = translate_record_message(message, "id")
            kept = [fragment for fragment in english if fragment in said and fragment not in template["id"]]
            assert not kept, (message, said, kept)


def test_the_most_particular_template_reads_a_message() -> None:
    from kinerja_rules.catalogue import translate_record_message

    assert translate_record_message("must be a number, not '85,5'", "id") == "harus angka, bukan '85,5'"
    assert (translate_record_message("must be a whole number, not 'tujuh'", "id")
            == "harus bilangan bulat, bukan 'tujuh'")
    assert translate_record_message("must be <= 17, not 99", "id") == "harus <= 17, bukan 99"
    assert (translate_record_message("invalid JSON on line 2: $ gives the key 'a' more than once", "id")
            == "JSON tidak sah pada baris 2: $ memberikan kunci 'a' lebih dari sekali")
    assert (translate_record_message("2 invalid fields: nip: must be text, not 123; status: is required", "id")
            == "2 isian tidak sah: nip: harus teks, bukan 123; status: wajib diisi")


def _bad_record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads((ROOT / "examples" / "pegawai.json").read_text())
    record["perilaku"]["atasan"] = "85,5"
    record["skp"] = {"indikator": []}
    return record


def test_a_policys_check_speaks_its_own_indonesian_on_the_cli(tmp_path: Path) -> None:
    record = _bad_record()
    record["perilaku"]["atasan"] = 85
    command = [sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional"]
    english = json.loads(subprocess.run(command, input=json.dumps(record), capture_output=True, text=True,
                                        cwd=ROOT).stdout)
    indonesian = json.loads(subprocess.run(command, input=json.dumps(record), capture_output=True, text=True,
                                           cwd=ROOT, env={**__import__("os").environ, "KINERJA_LANG": "id"}).stdout)
    assert english["error"]["fields"][0]["message"].startswith("must have at least 1 item, or give skp.segmen")
    assert indonesian["error"]["fields"][0]["message"].startswith("harus memiliki paling sedikit 1 butir, atau")


def test_every_evaluate_endpoint_answers_in_the_language_asked(engine: Engine) -> None:
    record = _bad_record()
    with TestClient(create_app(engine)) as client:
        def post(path: str, body: Any, lang: str = "id-ID,id;q=0.9") -> Any:
            return client.post(path, json=body, headers={"accept-language": lang})

        one = post("/v1/policies/nasional/evaluate", {"record": record})
        assert one.status_code == 422 and one.headers["content-language"] == "id"
        assert one.json()["title"] == "Rekaman tidak sah" and one.json()["type"] == "/problems/invalid-record"
        assert one.json()["errors"] == [{"path": "perilaku.atasan", "message": "harus angka, bukan '85,5'"}]
        english = post("/v1/policies/nasional/evaluate", {"record": record}, "en")
        assert english.json()["title"] == "Invalid record" and "content-language" not in english.headers
        batch = post("/v1/policies/nasional/evaluate/batch", {"records": [record, json.loads(
            (ROOT / "examples" / "pegawai.json").read_text())]})
        failed, decided = batch.json()["results"]
        assert failed["error"]["fields"] == [{"path": "perilaku.atasan", "message": "harus angka, bukan '85,5'"}]
        assert decided["result"] == "decision"
        record["perilaku"]["atasan"] = 85
        population = post("/v1/policies/nasional/evaluate/population", {
            "records": [record], "groups": {"Dinas Kesehatan": {"predikat_organisasi": "baik"}}})
        [failed] = population.json()["results"]
        assert failed["error"]["fields"][0]["message"].startswith("harus memiliki paling sedikit 1 butir")
        unknown = post("/v1/policies/nasionall/evaluate", {"record": record})
        assert unknown.status_code == 404 and unknown.json()["title"] == "Kebijakan tidak dikenal"
        assert unknown.json()["detail"] == "kebijakan tidak dikenal: 'nasionall'; maksud Anda 'nasional'?"
        hostile = client.post("/v1/policies/nasional/evaluate", content=b"{", headers={
            "accept-language": "id;q=" + "9" * 100_000, "content-type": "application/json"})
        assert hostile.status_code == 400 and hostile.json()["type"] == "/problems/malformed-json"


ALLOWED_SAME_WORDS = {"explain.usulan"}  # `usulan` is the regulation's own word in both languages


def test_every_word_has_its_own_indonesian_with_the_same_placeholders() -> None:
    from kinerja_rules.catalogue import _data

    for key, said in _data()["words"].items():
        assert said["id"] and (said["id"] != said["en"] or key in ALLOWED_SAME_WORDS), key
        assert set(re.findall(r"\{(\w+)\}", said["en"])) == set(re.findall(r"\{(\w+)\}", said["id"])), key


def test_test_reports_and_explain_text_speak_indonesian(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(POLICIES, tmp_path / "policies")
    cases = tmp_path / "policies" / "nasional-tests.yaml"
    cases.write_text(cases.read_text().replace("tpp.diterima: 4_500_000}", "tpp.diterima: 4_500_001}", 1))
    command = [sys.executable, "-m", "kinerja_rules.cli", "test", "--policies", str(tmp_path / "policies"),
               str(cases)]
    english = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    indonesian = subprocess.run([*command, "--lang", "id"], capture_output=True, text=True, cwd=ROOT)
    assert english.returncode == indonesian.returncode == 1
    assert "outputs differ:" in english.stdout and english.stdout.rstrip().endswith("passed, 1 failed")
    said = indonesian.stdout
    assert "GAGAL nasional::" in said and "keluaran berbeda:" in said and "diharapkan 4500001" in said
    assert "sebenarnya 4500000" in said and "(berlaku sejak 2024-01-01)" in said and "per 2025-03-01" in said
    assert said.rstrip().endswith("lulus, 1 gagal")
    for english_words in ("outputs differ", "expected ", "actual ", "in force since", "as of ", "passed", "failed",
                          "inputs read", "population: none"):
        assert english_words not in said, english_words
    explained = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional", "-i",
                                str(ROOT / "examples" / "pegawai.json"), "--explain-text", "--lang", "id"],
                               capture_output=True, text=True, cwd=ROOT)
    assert explained.returncode == 0 and "masukan yang dibaca:" in explained.stdout
    assert "aturan " in explained.stdout and "inputs read" not in explained.stdout


def _help_texts() -> list[str]:
    import argparse

    from kinerja_rules.cli import parser

    texts, parsers = [], [parser()]
    while parsers:
        current = parsers.pop()
        texts += [t for t in (current.description, current.epilog) if t]
        for action in current._actions:
            if action.help and action.help != argparse.SUPPRESS:
                texts.append(action.help)
            if isinstance(action, argparse._SubParsersAction):
                texts += [choice.help for choice in action._choices_actions if choice.help]
                parsers += list(action.choices.values())
    return texts


def test_every_help_text_of_the_command_line_has_its_indonesian() -> None:
    from kinerja_rules.catalogue import help_texts

    said = help_texts("id")
    lacking = [text for text in _help_texts() if text not in said]
    assert not lacking, lacking  # a new option's help goes into the catalogue's `help:` with its Indonesian
    assert all(said[text] != text for text in _help_texts())


def test_help_and_argparse_speak_the_language_asked() -> None:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], capture_output=True, text=True,
                              cwd=ROOT, env={**__import__("os").environ, **(env or {})})

    helped = run("eval", "--help", "--lang", "id")
    assert helped.returncode == 0 and helped.stdout.startswith("penggunaan: kinerja eval")
    assert "Nilai rekaman pegawai dan cetak satu keputusan per rekaman." in helped.stdout
    assert "opsi:" in helped.stdout and "options:" not in helped.stdout
    for english in _help_texts():
        first = english.split("\n", 1)[0]
        if len(first) > 30 and not first.startswith(("examples", "kinerja ")):
            assert first[:30] not in helped.stdout, first
    assert run("--help", env={"KINERJA_LANG": "id"}).stdout.startswith("penggunaan: kinerja")
    refused = run("--lang", "id", "eval", "nasional", "--bogus")
    assert refused.returncode == 2 and "kinerja: galat: argumen tidak dikenal: --bogus" in refused.stderr
    assert run("eval", "--help").stdout.startswith("usage: kinerja eval")  # English unless asked
    hostile = run("--help", "--lang", "x" * 100_000)
    assert hostile.returncode == 0 and hostile.stdout.startswith("usage: kinerja")


def test_a_new_region_in_indonesian_checks_and_passes_as_written(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(POLICIES, tmp_path / "policies")
    for lang in ("id", "en"):
        made = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "new", f"daerah_{lang}", "--policies",
                               str(tmp_path / "policies"), "--lang", lang], capture_output=True, text=True, cwd=ROOT)
        assert made.returncode == 0, made.stderr
        policy = (tmp_path / "policies" / f"daerah_{lang}" / "policy.yaml").read_text()
        said = "Semua yang tidak ditulis di sini diwarisi" in policy
        assert said is (lang == "id") and ("ditulis " in made.stdout) is (lang == "id")
        tested = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "test", "--policies",
                                 str(tmp_path / "policies"), str(tmp_path / "policies" / f"daerah_{lang}"),
                                 "--lang", lang], capture_output=True, text=True, cwd=ROOT)
        assert tested.returncode == 0 and tested.stdout.strip() == ("2 lulus, 0 gagal" if lang == "id"
                                                                      else "2 passed, 0 failed"), tested.stdout


def test_the_indonesian_guide_s_policy_and_tests_check_and_pass(tmp_path: Path) -> None:
    """docs/id's guide shows a policy and its tests: they are what `kinerja check` and `kinerja test`
    accept, so the guide cannot drift from the language."""
    import shutil

    guide = (ROOT / "docs" / "id" / "panduan-penulis-kebijakan.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, re.S)
    policy = next(b for b in blocks if b.startswith("policy: contoh"))
    tests = next(b for b in blocks if b.startswith("tests:"))
    shutil.copytree(POLICIES, tmp_path / "policies")
    region = tmp_path / "policies" / "contoh"
    region.mkdir()
    (region / "policy.yaml").write_text(policy)
    (region / "tests.yaml").write_text("policy: contoh\n" + tests)
    run = [sys.executable, "-m", "kinerja_rules.cli"]
    checked = subprocess.run([*run, "check", "--policies", str(tmp_path / "policies"), str(region)],
                             capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 0, checked.stderr
    tested = subprocess.run([*run, "test", "--policies", str(tmp_path / "policies"), str(region), "--lang", "id"],
                            capture_output=True, text=True, cwd=ROOT)
    assert tested.returncode == 0 and tested.stdout.strip() == "2 lulus, 0 gagal", tested.stdout
