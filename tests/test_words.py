"""Words for people in a policy: `label` and `penjelasan` of outputs, rules, parameters and an
enumeration's values, in Indonesian and English, with placeholders `kinerja check` checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kinerja_rules import Engine, PolicyError
from tests.conftest import POLICIES

HEAD = 'policy: daerah\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n'


def _policy(tmp_path: Path, body: str) -> Engine:
    (tmp_path / "daerah.yaml").write_text(HEAD + body)
    return Engine.from_paths([POLICIES, tmp_path / "daerah.yaml"])


def _words(engine: Engine, policy: str = "daerah") -> dict[str, dict[str, dict[str, str]]]:
    return engine.policy(policy).checked.words


def test_nasional_gives_every_predikat_and_every_money_output_a_label_in_both_languages(engine: Engine) -> None:
    words = _words(engine, "nasional")
    checked = engine.policy("nasional").checked
    for value in checked.outputs["evaluasi.predikat"].type.values:
        assert set(words[f"value:predikat.{value}"]["label"]) == {"id", "en"}
    for name, output in checked.outputs.items():
        if output.type.kind == "money":
            assert set(words[f"output:{name}"]["label"]) == {"id", "en"}, name
    assert words["value:predikat.butuh_perbaikan"]["label"]["id"] == "Butuh Perbaikan"
    assert "{evaluasi.hasil_kerja}" in words["output:evaluasi.predikat"]["penjelasan"]["id"]


def test_a_region_inherits_the_words_and_overrides_some(tmp_path: Path) -> None:
    engine = _policy(tmp_path, """
types:
  predikat:
    extend: true
    label: {baik: {id: Baik sekali}}
outputs:
  tpp.diterima:
    override: true
    type: money
    expr: tpp_diterima
    min: 0
    label: "TPP daerah {tpp.pagu}"
  tpp.pagu:
    override: true
    type: money
    expr: pagu_total
    min: 0
""")
    words = _words(engine)
    assert words["value:predikat.baik"]["label"] == {"id": "Baik sekali"}  # its own: English falls back later
    assert words["value:predikat.kurang"]["label"] == {"id": "Kurang", "en": "Poor"}  # inherited
    assert words["output:tpp.diterima"]["label"] == {"id": "TPP daerah {tpp.pagu}"}  # a text alone is Indonesian
    assert words["output:tpp.pagu"]["label"] == {"id": "Pagu TPP", "en": "TPP ceiling"}  # overridden, words kept
    assert words["rule:sebab_penangguhan"]["penjelasan"]["en"].startswith("This month's TPP")


@pytest.mark.parametrize("body, code, where", [
    ("outputs:\n  tpp.diterima:\n    override: true\n    type: money\n    expr: tpp_diterima\n"
     "    label: {id: 'TPP {tpp.diterimaa}'}\n", "E147", "did you mean 'tpp.diterima'?"),
    ("outputs:\n  tpp.diterima:\n    override: true\n    type: money\n    expr: tpp_diterima\n"
     "    penjelasan: 'Rp {{ {tpp.pagu'\n", "E146", "a lone '{'"),
    ("outputs:\n  tpp.diterima:\n    override: true\n    type: money\n    expr: tpp_diterima\n"
     "    penjelasan: 'Rp { 1 + 2 }'\n", "E146", "is not a name"),
    ("types:\n  predikat:\n    extend: true\n    label: {luar_biasa: Luar biasa}\n", "E148", "no value 'luar_biasa'"),
    ("types:\n  predikat:\n    extend: true\n    label: {baik: {id: Baik, jp: Yoi}}\n", "E010", "jp"),
    ("outputs:\n  tpp.diterima:\n    override: true\n    type: money\n    expr: tpp_diterima\n"
     f"    label: '{'x' * 2001}'\n", "E010", "2000"),
])
def test_a_bad_text_is_an_error_at_its_place(tmp_path: Path, body: str, code: str, where: str) -> None:
    with pytest.raises(PolicyError) as refused:
        _policy(tmp_path, body)
    found = [d for d in refused.value.diagnostics if d.code == code]
    assert found and where in found[0].message + found[0].hint, [d.render() for d in refused.value.diagnostics]
    assert found[0].span is not None and found[0].span.file.endswith("daerah.yaml")


def test_placeholders_reach_outputs_inputs_parameters_and_definitions(tmp_path: Path) -> None:
    engine = _policy(tmp_path, """
rules:
  catatan:
    when: "predikat = kurang"
    then: {tindak_lanjut.pembinaan: pembinaan_kinerja}
    reason: A note.
    label: {id: Catatan, en: Note}
    penjelasan: "{tpp.diterima} {presensi.tanpa_keterangan_hari} {bobot_kinerja} {potongan_presensi} {{literal}}"
""")
    assert _words(engine)["rule:catatan"]["label"] == {"id": "Catatan", "en": "Note"}
