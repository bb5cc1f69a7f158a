"""Many records on every core: the same output for any --jobs, arrays streamed, only the policy asked
for compiled, a worker that dies costs nothing."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine, bulk
from kinerja_rules.decision import ErrorInfo
from tests.conftest import BASE_RECORD, POLICIES, ROOT, bundled


def kinerja(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=300)


def _people(count: int) -> list[dict[str, Any]]:
    people = []
    for i in range(count):
        record = copy.deepcopy(BASE_RECORD)
        record["nip"] = f"19850712201001{i:04d}"
        record["perilaku"]["atasan"] = 60 + i % 40
        record["skp"]["indikator"][0]["realisasi"] = 700 + i % 400
        people.append(record)
    return people


def _lines_with_mistakes(count: int) -> bytes:
    """JSON Lines with a mistake of each kind here and there, and blank lines."""
    lines = [json.dumps(r).encode() for r in _people(count)]
    lines[3] = b'{"nip": "1", "nip": "2"}'  # a key twice
    lines[300] = b"{not json"
    lines[555] = json.dumps({**_people(1)[0], "status": "bukan_status"}).encode()  # a record the policy refuses
    lines[901] = b""
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("flags", [[], ["--explain"], ["--lang", "id"]])
def test_any_number_of_jobs_gives_the_same_bytes_in_input_order(tmp_path: Path, flags: list[str]) -> None:
    given = tmp_path / "records.jsonl"
    given.write_bytes(_lines_with_mistakes(1200))
    outputs = {jobs: kinerja("eval", "nasional", "-i", str(given), "--jobs", str(jobs), *flags) for jobs in (1, 2, 3)}
    assert {r.returncode for r in outputs.values()} == {1}  # some records failed
    assert outputs[1].stdout == outputs[2].stdout == outputs[3].stdout
    lines = outputs[1].stdout.splitlines()
    assert len(lines) == 1199  # the blank line is no record
    errors = {json.loads(line)["error"]["line"]: json.loads(line)["error"] for line in lines if b'"error"' in line}
    assert sorted(errors) == [4, 301, 556]  # each in its place, by its line
    said = "lebih dari sekali" if "--lang" in flags else "more than once"  # each worker speaks the language asked
    assert said in errors[4]["message"] and errors[301]["kind"] == "input"
    assert json.loads(lines[5])["policy"]["id"] == "nasional"


def test_a_json_array_is_streamed_and_decided_like_json_lines(tmp_path: Path) -> None:
    people = _people(700)
    array = tmp_path / "records.json"
    array.write_bytes(b"[\n" + b",\n".join(json.dumps(r).encode() for r in people) + b"\n]\n")
    lines = tmp_path / "records.jsonl"
    lines.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in people))
    one = kinerja("eval", "nasional", "-i", str(array), "--jobs", "1")
    assert one.returncode == 0, one.stderr
    assert one.stdout == kinerja("eval", "nasional", "-i", str(array), "--jobs", "2").stdout
    assert one.stdout == kinerja("eval", "nasional", "-i", str(lines)).stdout


def _items(text: bytes) -> list[tuple[int, Any, str]]:
    return list(bulk.Source(io.BytesIO(text)).items())


def test_array_elements_are_found_whatever_their_text_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_READ_BYTES", 16)  # every element spans several reads
    tricky = [{"a": "}, {", "b": [1, {"c": ",]"}], "d": "\\\",\""}, {"e": []}, 7, "x,y", None,
              {"f": {"g": {"h": "}}}},"}}}]
    text = json.dumps(tricky, indent=1).encode()
    found = _items(text)
    assert [json.loads(item) for _, item, _ in found] == tricky
    assert [(line, where) for line, _, where in found] == [(i, f" in record {i - 1}") for i in range(1, 7)]
    assert _items(b"  \n [ ]  ") == [] and _items(b"[]") == []


def test_an_array_that_breaks_is_decided_up_to_the_break(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_READ_BYTES", 16)
    found = _items(b'[{"a": 1}, {"b": 2}, {"c": 3 oops}, {"d": 4}]')
    assert [item for _, item, _ in found[:2]] == [b'{"a": 1}', b'{"b": 2}']
    line, error, _ = found[-1]
    assert isinstance(error, ErrorInfo) and line == 3 and error.message.startswith("invalid JSON after record 1:")
    deep = _items(b'[{"a": 1}, ' + b"[" * 100_000 + b"]" * 100_000 + b', {"b": 2}]')
    assert isinstance(deep[-1][1], ErrorInfo) and "recursion" in deep[-1][1].message
    monkeypatch.setattr(bulk, "MAX_RECORD_BYTES", 64)
    huge = _items(b'[{"a": 1}, {"b": "' + b"x" * 200 + b'"}, {"c": 3}]')
    assert huge[0][1] == b'{"a": 1}' and isinstance(huge[1][1], ErrorInfo)
    assert "a record is longer than 64 bytes" in huge[1][1].message
    assert [item for _, item, _ in huge[2:]] == [b'{"c": 3}']  # a record past the limit is its own error, and on
    never_closed = _items(b'[{"a": 1}, {"b": 2}')
    assert never_closed[0][1] == b'{"a": 1}' and len(never_closed) == 2  # the second is the one never closed
    assert isinstance(never_closed[1][1], ErrorInfo) and never_closed[1][0] == 2


def test_only_the_policy_asked_for_and_its_parents_are_compiled(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(POLICIES, folder)
    (folder / "rusak.yaml").write_text("policy: rusak\nversion: '1'\noutputs:\n  x: tidak_ada + 1\n")
    plaju = Engine.for_policy("plaju", folder)
    assert plaju.ids == ["plaju"]  # nasional, which it extends, is in it, not beside it
    assert plaju.evaluate("plaju", BASE_RECORD).outputs == bundled().evaluate("plaju", BASE_RECORD).outputs
    result = kinerja("eval", "nasional", "--policies", str(folder), stdin=json.dumps(BASE_RECORD).encode())
    assert result.returncode == 0, result.stderr  # another policy's mistake does not stop this one
    broken = kinerja("eval", "rusak", "--policies", str(folder), stdin=json.dumps(BASE_RECORD).encode())
    assert broken.returncode == 1 and b"rusak.yaml" in broken.stderr
    unknown = kinerja("eval", "nasionl", "--policies", str(folder), stdin=b"{}")
    assert unknown.returncode == 1 and b"did you mean 'nasional'" in unknown.stderr


_REAL_WORKER = bulk._decide_in_worker


def _dies_on_line_600(items: list[Any]) -> tuple[bytes, int]:
    if any(line == 600 for line, _, _ in items):
        os._exit(3)
    return _REAL_WORKER(items)


def test_a_worker_that_dies_costs_no_record(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    engine = bundled()
    items = [(i, json.dumps(r).encode(), f" on line {i}") for i, r in enumerate(_people(1500), start=1)]
    task = bulk.Task("nasional")
    alone: list[bytes] = []
    assert bulk.run(engine, task, items, alone.append, jobs=1) == 0
    monkeypatch.setattr(bulk, "_decide_in_worker", _dies_on_line_600)  # forked workers (Linux) have it too
    shared: list[bytes] = []
    assert bulk.run(engine, task, items, shared.append, jobs=2) == 0
    assert b"".join(shared) == b"".join(alone)
    assert "a worker process stopped" in capsys.readouterr().err


def test_progress_shows_records_rate_and_time_left_on_a_terminal() -> None:
    screen = io.StringIO()
    source = bulk.Source(io.BytesIO(b"x" * 100))
    source.read(25)
    progress = bulk.Progress(screen, 100, source, after=0)
    progress.started -= 10  # ten seconds in, a quarter read
    progress.add(2_000)
    progress.done(3)
    text = screen.getvalue()
    assert "2,000 records, 200/s, 0:30 left" in text
    assert "2,000 records, 3 failed, in 0:10" in text
    silent = bulk.Progress(None, 100, source, after=0)
    silent.add(5)
    silent.done(0)  # nothing to show, nowhere to show it


def test_jobs_is_a_whole_number_of_processes() -> None:
    for bad in ("0", "many", "9" * 5000):
        result = kinerja("eval", "nasional", "--jobs", bad, stdin=b"{}")
        assert result.returncode == 2 and b"--jobs" in result.stderr


def test_a_record_decoded_in_a_block_is_what_one_process_decides() -> None:
    engine = bundled()
    record = _people(1)[0]
    data, failed = bulk.decide_block(engine, bulk.Task("nasional"), [(1, json.dumps(record).encode(), "")])
    assert failed == 0
    from kinerja_rules.decision import to_json

    assert data == to_json(engine.evaluate("nasional", record)) + b"\n"


@pytest.mark.slow
def test_a_json_lines_line_past_the_limit_is_its_own_error_and_the_lines_after_it_are_decided(
        tmp_path: Path) -> None:
    good = json.dumps(_people(1)[0])
    path = tmp_path / "x.jsonl"
    with open(path, "w") as out:
        out.write(good + "\n")
        out.write('{"nip": "' + "9" * (bulk.MAX_RECORD_BYTES + 10) + '"}\n')
        out.write((good + "\n") * 10)
    for jobs in ("1", "2"):
        result = kinerja("eval", "nasional", "-i", str(path), "--jobs", jobs)
        lines = result.stdout.decode().splitlines()
        assert result.returncode == 1 and len(lines) == 12, result.stderr
        assert json.loads(lines[1])["error"]["message"] == \
            f"invalid JSON on line 2: the line is longer than {bulk.MAX_RECORD_BYTES:,} bytes"
        assert all('"outputs"' in line for line in lines[2:])


@pytest.mark.parametrize("tail", [b"", b'"', b'\\"', b'\\\\', b"[", b"{", b"]", b"}", b","])
def test_an_array_record_past_the_limit_is_skipped_whole_whatever_it_holds(monkeypatch: pytest.MonkeyPatch,
                                                                         tail: bytes) -> None:
    monkeypatch.setattr(bulk, "MAX_RECORD_BYTES", 64)
    monkeypatch.setattr(bulk, "_READ_BYTES", 7)  # pieces that cut strings, escapes and brackets anywhere
    inner = json.dumps({"s": "x" * 100 + tail.decode(), "l": [[1, {"k": "]},"}]] * 3}).encode()
    items = _items(b'[{"a": 1}, ' + inner + b', {"c": 3},\n {"d": [4]}]')
    assert [item for _, item, _ in items if isinstance(item, bytes)] == [b'{"a": 1}', b'{"c": 3}', b'{"d": [4]}']
    assert [line for line, _, _ in items] == [1, 2, 3, 4] and isinstance(items[1][1], ErrorInfo)


def test_a_document_over_lines_past_the_limit_is_refused_without_being_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_RECORD_BYTES", 64)
    text = b'{"a":\n' + b'  "x",\n' * 40 + b'"end": 1}\n'
    items = list(bulk.Source(io.BytesIO(text)).items())
    assert len(items) == 1 and isinstance(items[0][1], ErrorInfo) and "longer than 64 bytes" in items[0][1].message
