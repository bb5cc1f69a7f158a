"""Decision records from the command line: eval --record, replay and appeal, impact, rapel; and a
server killed right after answering keeps every decision it answered."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine
from kinerja_rules.cli import main
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, POLICIES, ROOT

CHANGE = ("baik: 1.00, butuh_perbaikan: 0.75", "baik: 0.90, butuh_perbaikan: 0.75")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The bundled policies, a proposed change of nasional's TPP factor for baik, and records."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    shutil.copytree(POLICIES, tmp_path / "proposed")
    nasional = tmp_path / "proposed" / "nasional.yaml"
    text = nasional.read_text()
    assert CHANGE[0] in text
    nasional.write_text(text.replace(*CHANGE).replace('version: "2024.1"', 'version: "2025.1"'))
    units = ["Dinas Kesehatan", "Dinas Pendidikan", "Bappeda"]
    with (tmp_path / "records.jsonl").open("w") as out:
        for i in range(30):
            record = copy.deepcopy(BASE_RECORD)
            record.update(nip=f"19850712201001{i:04d}", unit_kerja=units[i % 3], periode=f"2025-0{1 + i % 3}")
            record["jabatan"]["kelas"] = 5 + i % 4
            record["perilaku"]["atasan"] = 55 + (i * 7) % 45
            out.write(json.dumps(record) + "\n")
        out.write('{"nip": "bukan"}\n')
    return tmp_path


def _run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], cwd=cwd, capture_output=True,
                          text=True, input=stdin, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_eval_record_then_replay_and_appeal(work: Path) -> None:
    decided = _run(["eval", "nasional", "-i", "records.jsonl", "--record", "data"], work)
    assert decided.returncode == 1  # the last record is bad: it fails alone and is not recorded
    results = _lines(decided.stdout)
    assert all("decision_id" in r for r in results[:-1]) and "error" in results[-1]
    store = SQLiteStore(work / "data" / "decisions.sqlite3")
    assert len(store.find(limit=1000)) == 30
    store.close()
    first = results[0]["decision_id"]
    (work / "policies" / "nasional.yaml").write_text((work / "proposed" / "nasional.yaml").read_text())
    replay = _run(["replay", first, "--data", "data"], work)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout) == {"decision_id": first, "identical": True}
    by_nip = _run(["replay", "--nip", "198507122010010000", "--periode", "2025-01", "--data", "data"], work)
    assert json.loads(by_nip.stdout)["decision_id"] == first
    appeal = _run(["replay", first, "--set", "perilaku.atasan=99", "--data", "data"], work)
    assert appeal.returncode == 0, appeal.stderr
    answer = json.loads(appeal.stdout)
    assert answer["appeal_of"] == first and {d["output"] for d in answer["differences"]} >= {"evaluasi.skor_perilaku"}
    assert set(answer["traces"]) == {d["output"] for d in answer["differences"]}
    store = SQLiteStore(work / "data" / "decisions.sqlite3")
    kept = store.get(answer["decision_id"])
    assert kept is not None and kept.appeal_of == first and kept.input["perilaku"]["atasan"] == 99
    store.close()


@pytest.mark.parametrize("args, said", [
    (["replay", "0190b1a4-7c1e-7d2a-9f00-3b1c2d4e5f60", "--data", "data"], "no decision"),
    (["replay", "--data", "data"], "name the decision"),
    (["replay", "x", "--set", "perilaku.atasan", "--data", "data"], "FIELD=VALUE"),
    (["replay", "--nip", "1", "--periode", "2025-13", "--data", "data"], "not a month"),
    (["replay", "x", "--store", "mysql://x"], "PostgreSQL DSN"),
    (["impact", "--base", "nowhere", "--proposed", "policies", "--policy", "nasional", "-i", "records.jsonl"],
     "not a policies folder"),
    (["impact", "--base", "a" * 64, "--proposed", "policies", "--policy", "nasional", "-i", "records.jsonl",
      "--data", "data"], "no policy version with digest"),
    (["impact", "--base", "policies", "--proposed", "policies", "--policy", "tidak_ada", "-i", "records.jsonl"],
     "tidak_ada"),
    (["rapel", "--policy", "nasional", "--proposed", "proposed", "--from", "2025-03", "--to", "2025-01",
      "--data", "data"], "before --from"),
])
def test_bad_arguments_are_refused_clearly(work: Path, args: list[str], said: str) -> None:
    result = _run(args, work)
    assert result.returncode in (1, 2) and said in result.stderr, result.stderr


def _decide(policies: Path, records: list[dict[str, Any]]) -> list[Any]:
    engine = Engine.from_paths([policies])
    return [engine.evaluate_safely("nasional", r) for r in records]


def test_impact_reports_transitions_and_exact_totals(work: Path) -> None:
    records = [json.loads(line) for line in (work / "records.jsonl").read_text().splitlines()]
    before, after = _decide(work / "policies", records), _decide(work / "proposed", records)
    result = _run(["impact", "--base", "policies", "--proposed", "proposed", "--policy", "nasional",
                   "-i", "records.jsonl", "--explain"], work)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if hasattr(b, "outputs") and hasattr(a, "outputs")]
    paid = [(b.get("tpp.diterima"), a.get("tpp.diterima")) for b, a in pairs]
    tpp = report["tpp"]
    assert (tpp["before"], tpp["after"]) == (sum(b for b, _ in paid), sum(a for _, a in paid))
    assert tpp["difference"] == tpp["after"] - tpp["before"] < 0
    assert (tpp["up"], tpp["down"], tpp["unchanged"]) == (sum(a > b for b, a in paid), sum(a < b for b, a in paid),
                                                          sum(a == b for b, a in paid))
    assert sum(u["difference"] for u in tpp["by_unit"]) == tpp["difference"] \
        == sum(k["difference"] for k in tpp["by_kelas"])
    assert sum(c["count"] for c in report["predikat"]["matrix"]) == len(pairs) == 30
    assert report["records"] == 31 and report["errors"] == {"base": 1, "proposed": 1}
    assert report["base"]["version"] == "2024.1" and report["proposed"]["version"] == "2025.1"
    assert sum(h["count"] for h in tpp["histogram"]) == tpp["up"] + tpp["down"]
    biggest = tpp["largest_changes"][0]
    assert abs(biggest["difference"]) == max(abs(a - b) for b, a in paid)
    person = next(p for p in report["people"] if "differences" in p)
    assert {d["output"] for d in person["differences"]} >= {"tpp.diterima"}
    assert person["traces"]["tpp.diterima"]["before"]["value"] != person["traces"]["tpp.diterima"]["after"]["value"]
    spreadsheet = _run(["impact", "--base", "policies", "--proposed", "proposed", "--policy", "nasional",
                        "-i", "records.jsonl", "-o", "dampak.csv"], work)
    assert spreadsheet.returncode == 0, spreadsheet.stderr
    rows = list(csv.DictReader(io.StringIO((work / "dampak.csv").read_text())))
    assert len(rows) == 31 and sum(int(r["tpp_difference"] or 0) for r in rows) == tpp["difference"]


def test_an_impact_spreadsheet_never_holds_a_formula() -> None:
    from kinerja_rules.impact import CSV_COLUMNS, to_csv

    row = {"line": 1, "nip": "198507122010011003", "unit_kerja": '=HYPERLINK("http://x","klik")', "kelas": "@9",
           "tpp_before": 4_500_000, "tpp_after": 4_275_000, "tpp_difference": -225_000, "changed": "tpp.diterima"}
    cells = next(csv.DictReader(io.StringIO(to_csv([row], CSV_COLUMNS))))
    assert cells["unit_kerja"] == "'" + row["unit_kerja"] and cells["kelas"] == "'@9"  # text, not a formula
    assert cells["tpp_difference"] == "-225000" and cells["predikat_before"] == ""  # numbers stay numbers


def test_impact_html_renders_its_charts_and_totals_in_a_real_browser(work: Path) -> None:
    result = _run(["impact", "--base", "policies", "--proposed", "proposed", "--policy", "nasional",
                   "-i", "records.jsonl", "-o", "dampak.html"], work)
    assert result.returncode == 0, result.stderr
    report = json.loads(_run(["impact", "--base", "policies", "--proposed", "proposed", "--policy", "nasional",
                              "-i", "records.jsonl"], work).stdout)
    html = (work / "dampak.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # offline
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "the HTML report is checked in Debian's chromium: make test installs it"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", (work / "dampak.html").as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert 'data-rendered="yes"' in dom  # the page's script ran to its end
    shown = dict(re.findall(r'id="total-(before|after|difference)"[^>]*data-value="(-?\d+)"', dom))
    assert shown == {"before": str(report["tpp"]["before"]), "after": str(report["tpp"]["after"]),
                     "difference": str(report["tpp"]["difference"])}
    assert dom.count('id="histogram-chart"') == dom.count('id="units-chart"') == 1
    bars = re.findall(r'class="bar" data-value="(-?\d+)"', dom)
    units = report["tpp"]["by_unit"]
    assert len(bars) == len(report["tpp"]["histogram"]) + 2 * len(units)
    assert [int(v) for v in bars[-2 * len(units):]] == [x for u in units for x in (u["before"], u["after"])]
    assert dom.count("<td") >= len({c["from"] for c in report["predikat"]["matrix"]}) ** 2


def test_impact_base_from_an_archived_digest(work: Path) -> None:
    decided = _lines(_run(["eval", "nasional", "-i", "records.jsonl", "--record", "data"], work).stdout)
    digest = decided[0]["policy"]["digest"]
    shutil.rmtree(work / "policies")  # the base is gone from disk, not from the store
    result = _run(["impact", "--base", digest, "--proposed", "proposed", "--policy", "nasional",
                   "-i", "records.jsonl", "--data", "data"], work)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["base"]["digest"] == digest


def test_rapel_owes_the_difference_per_person_and_month(work: Path) -> None:
    decided = _lines(_run(["eval", "nasional", "-i", "records.jsonl", "--record", "data"], work).stdout)
    records = [json.loads(line) for line in (work / "records.jsonl").read_text().splitlines()][:-1]
    due = {(r["nip"], r["periode"]): d for r, d in zip(records, _decide(work / "proposed", records), strict=True)}
    result = _run(["rapel", "--policy", "nasional", "--proposed", "proposed", "--from", "2025-01", "--to", "2025-02",
                   "--data", "data"], work)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    paid = {(r["nip"], r["periode"]): d["outputs"]["tpp"]["diterima"] for r, d in zip(records, decided, strict=False)}
    wanted = {k for k in paid if k[1] <= "2025-02"}
    assert {(p["nip"], p["periode"]) for p in report["people"]} == wanted and len(wanted) == 20
    for person in report["people"]:
        key = (person["nip"], person["periode"])
        assert person["paid"] == paid[key] and person["due"] == due[key].get("tpp.diterima")
        assert person["difference"] == person["due"] - person["paid"]
        assert person["due_dibayar"] == due[key].get("tpp.dibayar")  # what payroll pays, beside the entitlement
        assert person["difference_dibayar"] == person["due_dibayar"] - person["paid_dibayar"]
    assert report["difference"] == sum(p["difference"] for p in report["people"]) < 0
    assert report["overpaid"] == -report["difference"] and report["owed"] == 0
    assert sum(u["difference"] for u in report["by_unit"]) == report["difference"]
    spreadsheet = _run(["rapel", "--policy", "nasional", "--proposed", "proposed", "--from", "2025-01", "--to",
                        "2025-02", "--data", "data", "--format", "csv"], work)
    rows = list(csv.DictReader(io.StringIO(spreadsheet.stdout)))
    assert len(rows) == 20 and sum(int(r["difference"]) for r in rows) == report["difference"]
    assert report["dibayar"]["difference"] == sum(int(r["difference_dibayar"]) for r in rows)


def test_an_appeal_counts_over_what_it_appealed_in_rapel(work: Path) -> None:
    decided = _lines(_run(["eval", "nasional", "-i", "records.jsonl", "--record", "data"], work).stdout)
    appeal = json.loads(_run(["replay", decided[0]["decision_id"], "--set", "perilaku.atasan=30", "--data", "data"],
                             work).stdout)
    report = json.loads(_run(["rapel", "--policy", "nasional", "--proposed", "proposed", "--from", "2025-01", "--to",
                              "2025-01", "--data", "data"], work).stdout)
    mine = [p for p in report["people"] if p["nip"] == "198507122010010000"]
    assert [p["decision_id"] for p in mine] == [appeal["decision_id"]]


def test_a_population_recorded_from_the_cli_replays_with_its_run(work: Path) -> None:
    result = _run(["eval", "plaju", "-i", "records.jsonl", "--groups", str(ROOT / "examples" / "groups.json"),
                   "--seats", str(ROOT / "examples" / "seats.json"), "--record", "data"], work)
    decided = [d for d in _lines(result.stdout) if "decision_id" in d]
    assert len(decided) == 20  # Bappeda has no group data in groups.json: its ten members fail, and are not kept
    store = SQLiteStore(work / "data" / "decisions.sqlite3")
    runs = {store.get(d["decision_id"]).run_id for d in decided}  # type: ignore[union-attr]
    store.close()
    assert len(runs) == 1 and None not in runs
    for decision in decided[:3]:
        replay = _run(["replay", decision["decision_id"], "--data", "data"], work)
        assert json.loads(replay.stdout) == {"decision_id": decision["decision_id"], "identical": True}


# ---- nothing answered is lost --------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_every_decision_answered_survives_a_sigkill_of_the_server(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "kinerja_rules.cli", "serve", "--port", str(port), "--data",
                               str(tmp_path / "data"), "--no-access-log", "--batch-processes", "0"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        answered: list[str] = []
        lock = threading.Lock()

        def burst(n: int) -> None:
            for i in range(40):
                single = i % 4
                body = {"record": {**BASE_RECORD, "nip": f"1985071220100{n:01d}{i:04d}"}} if single else \
                    {"records": [{**BASE_RECORD, "nip": f"1985071220101{n:01d}{i:04d}"}] * 3}
                path = "/v1/policies/nasional/evaluate" + ("" if single else "/batch")
                request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                                 headers={"content-type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                ids = [answer["decision_id"]] if single else [r["decision_id"] for r in answer["results"]]
                with lock:
                    answered.extend(ids)

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.send_signal(signal.SIGKILL)  # no shutdown: whatever was answered must already be on disk
        server.wait()
        if server.stderr is not None:
            server.stderr.close()
    assert len(answered) == 8 * (30 + 10 * 3)
    store = SQLiteStore(tmp_path / "data" / "decisions.sqlite3")
    try:
        assert all(store.get(i) is not None for i in answered)
    finally:
        store.close()


def test_main_returns_the_exit_code_of_a_replay(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(work)
    assert main(["eval", "nasional", "-i", "records.jsonl", "--record", "data"]) == 1
    first = json.loads(capsys.readouterr().out.splitlines()[0])["decision_id"]
    store = SQLiteStore(work / "data" / "decisions.sqlite3")
    with store._reader:  # the record no longer what its policy gives: the replay says so, exit code 1
        store._reader.execute("UPDATE decisions SET outputs = json_set(outputs, '$.tpp.diterima', 7) WHERE id = ?",
                              (first,))
    store.close()
    assert main(["replay", first, "--data", "data"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["identical"] is False and answer["differences"][0]["output"] == "tpp.diterima"
