from __future__ import annotations

import copy
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


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.from_paths([POLICIES])


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
