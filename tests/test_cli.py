from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_RECORD, POLICIES, ROOT


def kinerja(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT, timeout=60)


def test_check_ok() -> None:
    result = kinerja("check")
    assert result.returncode == 0, result.stderr
    assert "ok  nasional 2024.1" in result.stdout
    assert all(line.startswith("ok  ") for line in result.stdout.splitlines())


def test_check_reports_errors_with_nonzero_exit() -> None:
    result = kinerja("check", str(POLICIES), "tests/broken/unknown_name.yaml")
    assert result.returncode == 1
    assert "tests/broken/unknown_name.yaml:6:14: error[E105]: unknown name 'kelass'" in result.stderr
    assert "^^^^^^" in result.stderr


def test_eval_one_record() -> None:
    result = kinerja("eval", "nasional", stdin=json.dumps(BASE_RECORD, indent=2))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"subject", "policy", "as_of", "outputs", "population"}
    assert out["subject"] == {"nip": BASE_RECORD["nip"], "periode": BASE_RECORD["periode"]}  # whom it is for
    assert out["population"] is None  # decided alone: no population rule was applied
    assert out["policy"]["id"] == "nasional" and out["outputs"]["tpp"]["diterima"] == 4500000


def test_eval_json_lines_in_order_with_bad_records(tmp_path: Path) -> None:
    good = json.dumps(BASE_RECORD)
    bad: dict[str, Any] = {**BASE_RECORD, "jabatan": {"jenis": "pelaksana", "kelas": 99}}
    data = tmp_path / "batch.jsonl"
    data.write_text("\n".join([good, json.dumps(bad), "{not json", good]) + "\n")
    result = kinerja("eval", "nasional", "--input", str(data))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    assert "outputs" in lines[0] and "outputs" in lines[3]
    assert lines[1]["error"]["fields"][0]["path"] == "jabatan.kelas" and lines[1]["error"]["line"] == 2
    assert lines[2]["error"]["kind"] == "input" and lines[2]["error"]["line"] == 3


def test_eval_array_and_policy_file_and_as_of(tmp_path: Path) -> None:
    data = tmp_path / "records.json"
    data.write_text(json.dumps([BASE_RECORD, BASE_RECORD]))
    result = kinerja("eval", "policies/nasional.yaml", "-i", str(data), "--as-of", "2025-07-01")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["as_of"] for line in lines] == ["2025-07-01", "2025-07-01"]


def test_eval_explain_json_and_text() -> None:
    result = kinerja("eval", "nasional", "--explain", stdin=json.dumps(BASE_RECORD))
    trace = json.loads(result.stdout)["trace"]
    assert trace["tables"]["matriks_predikat"]["hits"][0]["row"] == "sesuai_sesuai"
    text = kinerja("eval", "nasional", "--explain-text", stdin=json.dumps(BASE_RECORD)).stdout
    assert "table matriks_predikat(hasil=sesuai_ekspektasi, perilaku=sesuai_ekspektasi) → row sesuai_sesuai" in text
    assert "parameter pagu_tpp[7] = 4500000 (in force since 2024-01-01)" in text


def test_eval_unknown_policy_and_bad_date() -> None:
    result = kinerja("eval", "nasionl", stdin="{}")
    assert result.returncode == 1 and "did you mean 'nasional'" in result.stderr
    result = kinerja("eval", "nasional", "--as-of", "2025-13-01", stdin="{}")
    assert result.returncode == 2 and "not a date" in result.stderr


def test_eval_missing_input_file() -> None:
    result = kinerja("eval", "nasional", "--input", "does-not-exist.json")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_test_command_passes_and_fails(tmp_path: Path) -> None:
    assert kinerja("test").returncode == 0
    (tmp_path / "salah.yaml").write_text("""
policy: salah
extends: nasional
tests:
  harapan_keliru:
    record: {nip: "198507122010011003", periode: "2025-03", status: pns, unit_kerja: x,
             jabatan: {jenis: pelaksana, kelas: 7}, skp: {indikator: [{nama: a, target: 1, realisasi: 1}]},
             perilaku: {atasan: 80}, presensi: {hari_kerja: 20}, tahun_dalam_pangkat: 1}
    expect: {tpp.diterima: 1}
""")
    result = kinerja("test", str(tmp_path), "--policies", str(POLICIES))
    assert result.returncode == 1
    assert "FAIL salah::harapan_keliru" in result.stdout
    assert "expected 1" in result.stdout and "actual   4500000" in result.stdout
    assert "tpp.diterima = 4500000" in result.stdout  # the trace of the failure


@pytest.mark.parametrize("command", [[], ["check"], ["eval"], ["test"], ["plugins"], ["serve"], ["key"]])
def test_help_everywhere(command: list[str]) -> None:
    result = kinerja(*command, "--help")
    assert result.returncode == 0 and "examples:" in result.stdout


def test_every_json_lines_line_gets_its_own_answer_whatever_it_holds(tmp_path: Path) -> None:
    good = json.dumps(BASE_RECORD)
    lines = [b"{not json", good.encode(), json.dumps({**BASE_RECORD, "periode": "0000-01"}).encode(),
             good.replace('"kelas": 7', '"kelas": 1e30000').encode(), b"[" * 100_000 + b"]" * 100_000,
             b'{"nip": "\xff"}', good.encode()]
    data = tmp_path / "rusak.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "eval", "nasional", "-i", str(data)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert ["outputs" in o for o in out] == [False, True, False, False, False, False, True]
    assert [o["error"]["line"] for o in out if "error" in o] == [1, 3, 4, 5, 6]
    assert out[2]["error"]["fields"][0]["path"] == "periode" and out[3]["error"]["fields"][0]["path"] == "jabatan.kelas"
    assert "nests too deeply" in out[4]["error"]["message"]


def test_a_record_over_several_lines_is_still_one_record() -> None:
    result = kinerja("eval", "nasional", stdin=json.dumps(BASE_RECORD, indent=2))
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1


def test_a_key_given_twice_is_that_records_error(tmp_path: Path) -> None:
    good = json.dumps(BASE_RECORD)
    twice = good.replace('"kelas": 7', '"kelas": 7, "kelas": 12')
    escaped = good.replace('"kelas": 7', '"kelas": 7, "\\u006belas": 12')  # the same key, spelled with an escape
    data = tmp_path / "dua.jsonl"
    data.write_text("\n".join([good, twice, escaped, good]) + "\n")
    result = kinerja("eval", "nasional", "-i", str(data))
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1 and ["outputs" in o for o in out] == [True, False, False, True]
    for o in out[1:3]:
        assert o["error"]["fields"] == [{"path": "jabatan", "message": "gives the key 'kelas' more than once"}]
    array = tmp_path / "dua.json"
    array.write_text("[" + ",".join([good, twice, good]) + "]")
    out = [json.loads(line) for line in kinerja("eval", "nasional", "-i", str(array)).stdout.splitlines()]
    assert ["outputs" in o for o in out] == [True, False, True] and out[1]["error"]["line"] == 2
    assert out[1]["error"]["fields"][0]["path"] == "jabatan"


@pytest.mark.parametrize(("flag", "value"), [
    ("--header-timeout", "abc"), ("--header-timeout", "1e999"), ("--body-timeout", "0"), ("--body-timeout", "nan"),
    ("--max-connections", "0"), ("--max-header-bytes", "9" * 5000), ("--max-headers", "-1"),
    ("--validate-seconds", "99999"), ("--validate-processes", "65"), ("--max-response-bytes", "10"),
    ("--cors-origin", "https://portal.example.go.id/path"), ("--cors-origin", "*"),
])
def test_serve_refuses_a_bad_limit_by_name(flag: str, value: str) -> None:
    result = kinerja("serve", flag, value)
    assert result.returncode == 2 and flag in result.stderr and "Traceback" not in result.stderr
