"""The nasional policy agrees with an independent hand-written implementation on generated records."""

from __future__ import annotations

import sys

from kinerja_rules import Engine
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from bench_engine import generate, hand_written


def test_policy_matches_hand_written_rules(engine: Engine) -> None:
    for record in generate(1500, seed=11):
        assert engine.evaluate("nasional", record).outputs == hand_written(record), record
