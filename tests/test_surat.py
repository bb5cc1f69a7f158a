"""The letter (surat penjelasan): one decision explained in plain Indonesian (or English), looked at
in Debian's Chromium, over HTTP and the CLI."""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.keberatan import deadline
from kinerja_rules.server import create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore, uuid7
from kinerja_rules.surat import Letter, render
from kinerja_rules.types import Kind
from tests.conftest import BASE_RECORD, POLICIES, ROOT
from tests.test_server import assert_problem


def _troubled() -> dict[str, Any]:
    """A month with unexcused absence, a running sedang penalty and an asset report not filed."""
    record = copy.deepcopy(BASE_RECORD)
    record["presensi"]["tanpa_keterangan_hari"] = 2
    record["hukuman_disiplin"] = {"tingkat": "sedang", "mulai": "2025-01", "bulan": 6}
    record["lhkpn_dilaporkan"] = False
    return record


def _rupiah(amount: int) -> str:
    return "Rp " + f"{amount:,}".replace(",", ".")


def _money(engine: Engine, outputs: dict[str, Any]) -> list[int]:
    """Every rupiah amount of a decision: its money outputs and the money fields of its lists."""
    found = []
    for name, output in engine.policy("nasional").checked.outputs.items():
        value: Any = outputs
        for part in name.split("."):
            value = value[part]
        if output.type.kind == Kind.MONEY:
            found.append(value)
        elif output.type.kind == Kind.LIST and output.type.item is not None and output.type.item.kind == Kind.RECORD:
            money = [f for f, t in output.type.item.fields if t.kind == Kind.MONEY]
            found.extend(row[f] for row in value for f in money)
    return found


def _seen(browser: str, page: Path) -> str:
    """The text of `page` as Chromium has it once loaded (offline), tags and styles left out."""
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<body>" in dom or "<body" in dom, dom[:500]
    body = re.sub(r"<style>.*?</style>|<title>.*?</title>", "", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture(scope="module")
def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the letter is looked at in Debian's chromium: make test installs it"
    return found


def _kinerja(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], cwd=cwd, capture_output=True,
                          timeout=180, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_the_letter_of_a_recorded_decision_renders_in_chromium_with_every_amount(tmp_path: Path, engine: Engine,
                                                                                browser: str) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    (tmp_path / "pegawai.json").write_text(json.dumps(_troubled()))
    decided = _kinerja("eval", "nasional", "-i", "pegawai.json", "--record", "data", cwd=tmp_path)
    assert decided.returncode == 0, decided.stderr
    decision = json.loads(decided.stdout)
    made = _kinerja("surat", decision["decision_id"], "--data", "data", "-o", "surat.html", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    page = (tmp_path / "surat.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline, nothing fetched
    text = _seen(browser, tmp_path / "surat.html")
    assert "Predikat kinerja" in text and "Baik" in text
    outputs = decision["outputs"]
    amounts = _money(engine, outputs)
    assert outputs["tpp"]["ditangguhkan"] > 0 and len(amounts) >= 8
    for amount in amounts:
        assert _rupiah(amount) in text, (amount, text)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
    last = deadline(engine.policy("nasional"), today, "dicatat").last
    months = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
              "November", "Desember"]
    assert f"paling lambat {last.day} {months[last.month - 1]} {last.year}" in text
    # the sedang cut and the withheld month, each with its article
    cut = re.search(r"Hukuman disiplin Selama hukuman disiplin tingkat Sedang berlaku \(6 bulan sejak Januari 2025\)"
                    r", TPP dibayarkan 75% dari haknya\. Dasar hukum: ([^.]*?pasal 8)", text)
    assert cut and "PP Nomor 94 Tahun 2021" in cut.group(1), text
    withheld = re.search(r"TPP ditangguhkan TPP bulan ini sebesar (Rp [0-9.]+) ditangguhkan .*? Dasar hukum: "
                         r"(PP Nomor 94 Tahun 2021)", text)
    assert withheld and withheld.group(1) == _rupiah(outputs["tpp"]["ditangguhkan"])
    for code in ("sesuai_ekspektasi", "beban_kerja", "hukuman_disiplin", "penangguhan", "pp-94-2021", "_"):
        assert code not in text, code  # labels and reference titles, never codes
    # the nearest better result, searched in the policy: the supervisor's score that lifts the predikat
    goal = re.search(r"Yang dapat meningkatkan hasil Anda Untuk mencapai Predikat kinerja Sangat Baik: Nilai perilaku "
                     r"dari atasan: dari 80 menjadi (\d+) Realisasi indikator SKP \(butir ke-1\): dari 1\.000 menjadi "
                     r"([0-9.]+) Predikat kinerja: Sangat Baik", text)
    assert goal and 80 < int(goal.group(1)) <= 100 and 1000 < int(goal.group(2).replace(".", "")) <= 1200, text
    printed = _kinerja("surat", decision["decision_id"], "--data", "data", "-o", "surat.pdf", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert (tmp_path / "surat.pdf").read_bytes().startswith(b"%PDF-") and (tmp_path / "surat.pdf").stat().st_size > 5000


def test_the_letter_in_english_and_the_fallbacks(tmp_path: Path, browser: str) -> None:
    region = tmp_path / "daerah.yaml"
    region.write_text('policy: daerah\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'
                      "types:\n  predikat:\n    extend: true\n    label: {baik: {id: Baik menurut daerah}}\n"
                      "outputs:\n  tunjangan_daerah: {type: money, expr: \"125000\"}\n")
    engine = Engine.from_paths([POLICIES, region])
    policy = engine.policy("daerah")
    decision = engine.evaluate("daerah", BASE_RECORD, explain=True)
    page = render(policy, Letter(decision=decision, record=BASE_RECORD,
                                 deadline=deadline(policy, dt.date(2025, 4, 2), "pemberitahuan")), "en")
    (tmp_path / "letter.html").write_text(page)
    text = _seen(browser, tmp_path / "letter.html")
    assert 'lang="en"' in page and "Performance rating" in text and "TPP ceiling" in text
    assert "Baik menurut daerah" in text  # no English given: the Indonesian one
    assert "tunjangan daerah Rp 125,000" in text  # no label at all: its name, never nothing
    assert "within 14 calendar days" in text


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    app = create_app(Engine.from_paths([POLICIES]), recorder=Recorder(SQLiteStore(tmp_path / "d.sqlite3")))
    with TestClient(app) as client:
        yield client


def test_the_letter_over_http_in_both_languages_and_as_pdf(served: TestClient[Litestar]) -> None:
    decision_id = served.post("/v1/policies/nasional/evaluate", json={"record": _troubled()}).json()["decision_id"]
    path = f"/v1/decisions/{decision_id}/surat"
    indonesian = served.get(path)
    assert indonesian.status_code == 200 and indonesian.headers["content-type"] == "text/html; charset=utf-8"
    assert "Potongan presensi" in indonesian.text and indonesian.headers["content-language"] == "id"
    english = served.get(path, headers={"accept-language": "en-GB,en;q=0.8"})
    assert "Attendance deduction" in english.text and english.headers["content-language"] == "en"
    assert "Potongan presensi" in served.get(path, params={"lang": "id"}, headers={"accept-language": "en"}).text
    printed = served.get(path, params={"format": "pdf"})
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF-")
    assert_problem(served.get(path, params={"format": "docx"}), 400, "bad-request")
    assert_problem(served.get(path, params={"lang": "jv"}), 400, "bad-request")
    assert_problem(served.get(f"/v1/decisions/{uuid7(1, 1)}/surat"), 404, "unknown-decision")
    assert_problem(served.get("/v1/decisions/bukan/surat"), 404, "unknown-decision")


def test_the_letter_names_the_leaders_penetapan_and_its_reason(engine: Engine) -> None:
    import msgspec

    decision = engine.evaluate("nasional", BASE_RECORD, explain=True)
    fixed = msgspec.structs.replace(decision, population={
        "group": "Dinas Kesehatan", "penetapan": {"nomor": "800/12/DINKES/2025", "tanggal": "2025-04-02",
                                                  "ditetapkan_oleh": "197001011995031001",
                                                  "alasan": "Capaian triwulan IV melampaui target"}})
    page = render(engine.policy("nasional"), Letter(decision=fixed, record=BASE_RECORD), "id")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert ("Predikat ditetapkan oleh pimpinan unit dalam penetapan nomor 800/12/DINKES/2025 tanggal 2 April 2025 "
            "(NIP 197001011995031001). Alasan penetapan: Capaian triwulan IV melampaui target") in text
