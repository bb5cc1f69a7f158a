from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"

BASE_RECORD: dict[str, Any] = {
    "nip": "198507122010011003",
    "periode": "2025-03",
    "status": "pns",
    "unit_kerja": "Dinas Kesehatan",
    "jabatan": {"jenis": "pelaksana", "kelas": 7},
    "skp": {"indikator": [{"nama": "Laporan", "target": 1000, "realisasi": 1000}]},
    "perilaku": {"atasan": 80},
    "presensi": {"hari_kerja": 21},
    "riwayat_predikat": ["baik", "baik"],
    "tahun_dalam_pangkat": 5,
}


@functools.cache
def bundled() -> Engine:
    """The bundled policies, compiled once per test process (every module and fixture shares them):
    the compile the pytest plugin made to collect the policies' own test cases."""
    from kinerja_rules.engine import default_registry
    from kinerja_rules.pytest_plugin import _report

    report = _report(POLICIES)
    assert not report.errors, [d.render() for d in report.errors]
    return Engine(report.policies, default_registry(), report.warnings + report.test_errors)


@pytest.fixture(scope="session")
def engine() -> Engine:
    return bundled()


@pytest.fixture
def record() -> dict[str, Any]:
    return copy.deepcopy(BASE_RECORD)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels` in Prometheus text, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
