"""The plugin system: every hook, discovery, and every way a plugin can be broken."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules import Engine, EvaluationError, check_paths, hookspecs
from kinerja_rules.engine import discover

WHEN = dt.date(2024, 5, 1)
POLICY = """
policy: pakai
effective: 2024-01-01
inputs:
  x: decimal
  survei: {type: list of integer, default: []}
outputs:
  ganda: {type: decimal, expr: gandakan(x)}
  jumlah: {type: integer, expr: jumlah_jawaban}
"""
PLUGIN = '''
from kinerja_rules import FunctionSpec, IndicatorSpec
from kinerja_rules.hookspecs import hookimpl

__version__ = "1.2.3"
SEEN = []

def _gandakan(x):
    if x < 0:
        raise ValueError("negative input")
    if x == 1234.5:  # a bug in a plugin, for the fault test
        return {}["missing"]
    return x * 2

@hookimpl
def kinerja_register_functions():
    return [FunctionSpec(name="gandakan", params=(("x", "decimal"),), returns="decimal", impl=_gandakan,
                         description="Twice the value.")]

@hookimpl
def kinerja_register_indicators():
    return [IndicatorSpec(name="jumlah_jawaban", source="survei", source_type="list of integer",
                          returns="integer", impl=lambda answers: len(answers or []), description="Answers.")]

@hookimpl
def kinerja_observe_decision(policy_id, decision):
    SEEN.append((policy_id, decision.outputs))
'''


def _plugin_dir(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / f"plugins_{name}"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    sys.modules.pop(name, None)
    return folder


@pytest.fixture
def contoh(tmp_path: Path) -> tuple[Engine, Any]:
    plugins = _plugin_dir(tmp_path, "contoh_plugin", PLUGIN)
    (tmp_path / "pakai.yaml").write_text(POLICY)
    registry = discover([plugins], entry_points=False)
    engine = Engine.from_paths([tmp_path / "pakai.yaml"], registry)
    return engine, sys.modules["contoh_plugin"]


def test_hook_kinerja_register_functions(contoh: tuple[Engine, Any], tmp_path: Path) -> None:
    engine, _ = contoh
    assert engine.evaluate("pakai", {"x": 1.5}, as_of=WHEN).outputs["ganda"] == 3
    spec = engine.registry.functions["gandakan"]
    assert spec.plugin == "contoh_plugin" and spec.version == "1.2.3"
    (tmp_path / "salah.yaml").write_text(POLICY.replace("pakai", "salah").replace("gandakan(x)", 'gandakan("x")'))
    report = check_paths([tmp_path / "salah.yaml"], engine.registry)
    assert "argument 'x' of gandakan() must be decimal, not text" in report.errors[0].message


def test_hook_kinerja_register_indicators(contoh: tuple[Engine, Any]) -> None:
    engine, _ = contoh
    assert engine.evaluate("pakai", {"x": 1, "survei": [4, 3, 2]}, as_of=WHEN).outputs["jumlah"] == 3


def test_hook_kinerja_observe_decision(contoh: tuple[Engine, Any]) -> None:
    engine, module = contoh
    engine.evaluate("pakai", {"x": 2}, as_of=WHEN)
    list(engine.evaluate_many("pakai", [{"x": 3}, {"x": "bad"}], as_of=WHEN))
    plain = engine.read_plain("pakai", b'{"x": 5}')  # a record read in C, as the service reads one
    assert plain is not None
    engine.evaluate_plain("pakai", plain, as_of=WHEN)
    assert [outputs["ganda"] for _, outputs in module.SEEN] == [4, 6, 10]
    assert all(pid == "pakai" for pid, _ in module.SEEN)


def test_every_hook_has_a_test() -> None:
    hooks = {name for name in vars(hookspecs) if name.startswith("kinerja_")}
    tests = {name.removeprefix("test_hook_") for name in globals() if name.startswith("test_hook_")}
    assert hooks <= tests, f"hooks without a test: {sorted(hooks - tests)}"


def test_no_observer_means_no_call(tmp_path: Path) -> None:
    registry = discover([], entry_points=False)
    assert registry.observe is None


def test_plugin_fault_names_plugin_and_function(contoh: tuple[Engine, Any]) -> None:
    engine, _ = contoh
    with pytest.raises(EvaluationError) as err:
        engine.evaluate("pakai", {"x": -1}, as_of=WHEN)
    assert "function 'gandakan' of plugin 'contoh_plugin'" in err.value.where
    assert "negative input" in str(err.value)
    with pytest.raises(EvaluationError) as err:
        engine.evaluate("pakai", {"x": 1234.5}, as_of=WHEN)
    assert err.value.detail == "the plugin looked up 'missing', which is not there (KeyError)"


def test_digest_includes_plugin_versions(contoh: tuple[Engine, Any], tmp_path: Path) -> None:
    engine, _ = contoh
    first = engine.policy("pakai").digest
    plugins = _plugin_dir(tmp_path, "contoh_plugin2", PLUGIN.replace("1.2.3", "1.2.4"))
    sys.modules.pop("contoh_plugin", None)
    registry = discover([plugins], entry_points=False)
    assert Engine.from_paths([tmp_path / "pakai.yaml"], registry).policy("pakai").digest != first


def test_entry_point_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path, "ep_plugin", PLUGIN)
    monkeypatch.syspath_prepend(str(folder))

    class FakeDist:
        version = "9.9"
        entry_points = [importlib.metadata.EntryPoint(name="ep_plugin", value="ep_plugin", group="kinerja_rules")]

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [FakeDist()])
    registry = discover([])
    assert registry.plugins["ep_plugin"] == "9.9"
    assert registry.functions["gandakan"].plugin == "ep_plugin"


@pytest.mark.parametrize("body,message,line", [
    ("from kinerja_rules.hookspecs import hookimpl\n@hookimpl\ndef kinerja_register_functionz():\n    return []\n",
     "unknown hook 'kinerja_register_functionz'; did you mean 'kinerja_register_functions'?", 2),
    ("import not_a_module_anywhere\n", "failed to import ModuleNotFoundError", 2),
    ("from kinerja_rules import FunctionSpec\nfrom kinerja_rules.hookspecs import hookimpl\n@hookimpl\n"
     "def kinerja_register_functions():\n    return [FunctionSpec(name='f', params=(('x', 'desimal'),), "
     "returns='decimal', impl=abs, description='')]\n", "parameter 'x' of function 'f' has an invalid type", 3),
    ("from kinerja_rules import FunctionSpec\nfrom kinerja_rules.hookspecs import hookimpl\n@hookimpl\n"
     "def kinerja_register_functions():\n    return [FunctionSpec(name='round', params=(('x', 'decimal'),), "
     "returns='decimal', impl=abs, description='')]\n", "both register function 'round'", 3),
    ("from kinerja_rules.hookspecs import hookimpl\n@hookimpl\ndef kinerja_register_functions():\n"
     "    return 'nope'\n", "must return a list of FunctionSpec", 2),
    ("from kinerja_rules.hookspecs import hookimpl\n@hookimpl\ndef kinerja_register_functions():\n"
     "    raise RuntimeError('no config')\n", "kinerja_register_functions raised RuntimeError: no config", 2),
])
def test_a_broken_plugin_is_left_out_with_its_file_line_and_reason(tmp_path: Path, body: str, message: str,
                                                                    line: int) -> None:
    name = f"rusak_{abs(hash(body)) % 10**8}"
    folder = _plugin_dir(tmp_path, name, "from kinerja_rules.hookspecs import hookimpl\n" + body
                         if "import not_a_module" in body else body)
    good = _plugin_dir(tmp_path, "utuh_plugin", PLUGIN)
    registry = discover([folder, good], entry_points=False)
    [broken] = registry.broken
    assert broken.plugin == name and message in broken.reason, broken
    assert broken.file == str(folder / f"{name}.py") and broken.line == line, broken
    assert name not in registry.plugins and "utuh_plugin" in registry.plugins  # the others still load
    assert "gandakan" in registry.functions and registry.functions["round"].plugin == "builtins"


def test_cli_lists_plugins(tmp_path: Path) -> None:
    import subprocess

    folder = _plugin_dir(tmp_path, "daftar_plugin", PLUGIN)
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "plugins", "--plugins", str(folder)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "daftar_plugin 1.2.3" in result.stdout
    assert "function  gandakan(x: decimal) -> decimal" in result.stdout
    assert "indicator jumlah_jawaban: integer  (from survei: list of integer)" in result.stdout
    assert "cites: PermenPANRB 14/2017" in result.stdout  # the bundled survey plugin's citation
    broken = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "plugins", "--plugins", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "plugin error" in broken.stderr and "Traceback" not in broken.stderr


def test_indicator_source_must_match_the_policy_inputs(contoh: tuple[Engine, Any], tmp_path: Path) -> None:
    engine, _ = contoh
    (tmp_path / "lain.yaml").write_text(POLICY.replace("pakai", "lain").replace(
        "survei: {type: list of integer, default: []}", "survei: text"))
    report = check_paths([tmp_path / "lain.yaml"], engine.registry)
    assert any("indicator 'jumlah_jawaban' of plugin 'contoh_plugin' reads input 'survei'" in d.message
               for d in report.errors)


def test_cli_eval_decisions_reach_observers(tmp_path: Path) -> None:
    import json
    import subprocess

    folder = _plugin_dir(tmp_path, "saksi_plugin", '''
from kinerja_rules.hookspecs import hookimpl

@hookimpl
def kinerja_observe_decision(policy_id, decision):
    import sys
    print(f"observed {policy_id} {decision.outputs['ganda']}", file=sys.stderr)
''' + PLUGIN.replace("def kinerja_observe_decision", "def _unused"))
    (tmp_path / "pakai.yaml").write_text(POLICY)
    result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "eval", str(tmp_path / "pakai.yaml"),
                             "--plugins", str(folder), "--as-of", "2024-05-01"],
                            input=json.dumps({"x": 4}), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "observed pakai 8" in result.stderr


LIAR = '''
from decimal import Decimal
from kinerja_rules import FunctionSpec, IndicatorSpec
from kinerja_rules.hookspecs import hookimpl

__version__ = "0.9.1"

def _jumlah(x):
    return {1: "12.5", 2: 3, 3: None, 4: True, 5: 7}[int(x)]

@hookimpl
def kinerja_register_functions():
    return [FunctionSpec(name="jumlah_bulat", params=(("x", "decimal"),), returns="integer", impl=_jumlah,
                         description="Says integer."),
            FunctionSpec(name="rasio_tepat", params=(("x", "decimal"),), returns="decimal",
                         impl=lambda x: {1: Decimal("0.5"), 2: 0.1}[int(x)], description="Says decimal.")]

@hookimpl
def kinerja_register_indicators():
    return [IndicatorSpec(name="indeks", source="survei", source_type="list of integer", returns="decimal",
                          impl=lambda answers: 0.25 if answers else Decimal("0.5"), description="Says decimal.")]
'''
LIAR_POLICY = """
policy: jujur
effective: 2024-01-01
inputs:
  x: decimal
  survei: {type: list of integer, default: []}
outputs:
  bulat: {type: integer, expr: "if x < 6 then jumlah_bulat(x) else 0"}
  tepat: {type: decimal, expr: "if x < 3 then rasio_tepat(x) else 0"}
  nilai: {type: decimal, expr: indeks}
"""


def test_what_a_plugin_returns_is_checked_against_its_declaration(tmp_path: Path) -> None:
    plugins = _plugin_dir(tmp_path, "liar_plugin", LIAR)
    (tmp_path / "jujur.yaml").write_text(LIAR_POLICY)
    engine = Engine.from_paths([tmp_path / "jujur.yaml"], discover([plugins], entry_points=False))
    answers = {x: engine.evaluate_safely("jujur", {"x": x}, WHEN) for x in (1, 2, 3, 4, 5)}
    messages = {x: getattr(a, "error", None) and a.error.message for x, a in answers.items()}
    assert messages[1] == ("function 'jumlah_bulat' of plugin 'liar_plugin' 0.9.1 returned str '12.5', "
                           "but declares integer")
    assert "function 'rasio_tepat' of plugin 'liar_plugin' 0.9.1 returned a binary float (0.1)" in messages[2]
    assert "returned null, but declares integer" in messages[3]
    assert "returned bool True" in messages[4]
    assert answers[5].outputs == {"bulat": 7, "tepat": 0, "nilai": Decimal("0.5")}  # type: ignore[union-attr]
    surveyed: Any = engine.evaluate_safely("jujur", {"x": 9, "survei": [1]}, WHEN)
    assert surveyed.error.message == ("indicator 'indeks' of plugin 'liar_plugin' 0.9.1 returned a binary float "
                                      "(0.25), but declares decimal")


def test_the_digest_follows_plugin_code_not_test_cases(tmp_path: Path) -> None:
    (tmp_path / "pakai.yaml").write_text(POLICY)
    digests = []
    for i, body in enumerate((PLUGIN, PLUGIN.replace("return x * 2", "return x * 2 + 0"))):
        folder = tmp_path / f"v{i}"
        folder.mkdir()
        (folder / "sama_plugin.py").write_text(textwrap.dedent(body))  # one name, one version, other code
        sys.modules.pop("sama_plugin", None)
        registry = discover([folder], entry_points=False)
        digests.append(Engine.from_paths([tmp_path / "pakai.yaml"], registry).policy("pakai").digest)
    assert digests[0] != digests[1]
    national = tmp_path / "nasional"
    national.mkdir()
    root = Path(__file__).resolve().parent.parent / "policies"
    (national / "nasional.yaml").write_text((root / "nasional.yaml").read_text())
    tests = (root / "nasional-tests.yaml").read_text()
    (national / "nasional-tests.yaml").write_text(tests)
    before = Engine.from_paths([national]).policy("nasional").digest
    changed = tests.replace("doc: The plain case every other case varies.", "doc: Kasus dasar.", 1)
    assert changed != tests
    (national / "nasional-tests.yaml").write_text(changed)
    assert Engine.from_paths([national]).policy("nasional").digest == before  # test cases never decide


MISSPELT_HOOK = PLUGIN.replace("def kinerja_register_functions", "def kinerja_register_function")


def test_a_broken_plugin_takes_out_only_the_policies_that_use_it(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from kinerja_rules.server.serve import Settings, build_app
    from tests.conftest import BASE_RECORD, POLICIES

    plugins = _plugin_dir(tmp_path, "salah_plugin", MISSPELT_HOOK)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "nasional.yaml").write_text((POLICIES / "nasional.yaml").read_text())
    (policies / "pakai.yaml").write_text(POLICY)
    app, service = build_app(Settings(policies=[str(policies)], plugins=[str(plugins)], batch_processes=0))
    with TestClient(app) as client:
        ready = client.get("/ready").json()
        assert ready["policies"] == ["nasional"]
        [failed] = ready["failed"]
        assert failed["policy"] == "pakai"
        assert "could not be loaded and may provide it" in failed["diagnostics"][0]["message"]
        [broken] = ready["broken_plugins"]
        line = MISSPELT_HOOK.splitlines().index("def kinerja_register_function():")  # the @hookimpl line above it
        assert broken == {"plugin": "salah_plugin", "version": "1.2.3", "file": str(plugins / "salah_plugin.py"),
                          "line": line,
                          "reason": "unknown hook 'kinerja_register_function'; did you mean "
                                    "'kinerja_register_functions'? (the hooks are kinerja_observe_decision, "
                                    "kinerja_register_functions, kinerja_register_indicators)"}
        assert client.get("/v1/plugins").json()["broken"] == [broken]
        answer = client.post("/v1/policies/nasional/evaluate", json={"record": BASE_RECORD})
        assert answer.status_code == 200
    listed = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "plugins", "--plugins", str(plugins)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 1
    assert "salah_plugin 1.2.3  BROKEN, left out" in listed.stdout
    assert "did you mean 'kinerja_register_functions'?" in listed.stdout
    assert f"at {plugins / 'salah_plugin.py'}:{line}" in listed.stdout


def test_serve_starts_when_only_some_policies_compile_and_not_when_none_do(tmp_path: Path) -> None:
    from kinerja_rules import PolicyError
    from kinerja_rules.server.serve import Settings, build_app

    plugins = _plugin_dir(tmp_path, "salah2_plugin", MISSPELT_HOOK)
    (tmp_path / "pakai.yaml").write_text(POLICY)
    with pytest.raises(PolicyError, match="unknown function 'gandakan'"):
        build_app(Settings(policies=[str(tmp_path / "pakai.yaml")], plugins=[str(plugins)], batch_processes=0))


def test_the_trace_names_the_plugin_version_and_citation_behind_each_value(contoh: tuple[Engine, Any]) -> None:
    from kinerja_rules.evaluation.tracing import explain_text

    engine, _ = contoh
    decision = engine.evaluate("pakai", {"x": 3, "survei": [1, 2]}, as_of=dt.date(2024, 6, 1), explain=True)
    trace = decision.trace
    assert trace is not None
    assert trace["outputs"]["ganda"]["plugins"] == [{"function": "gandakan", "plugin": "contoh_plugin",
                                                     "version": "1.2.3"}]
    assert trace["indicators"]["jumlah_jawaban"] == {"source": "survei", "plugin": "contoh_plugin",
                                                     "version": "1.2.3", "value": 2}
    assert trace["outputs"]["jumlah"]["uses"] == ["jumlah_jawaban"]
    text = explain_text(decision, policy=engine.policy("pakai"))
    assert "by function gandakan of plugin contoh_plugin 1.2.3" in text
    assert "· indicator jumlah_jawaban = 2 from survei, by plugin contoh_plugin 1.2.3" in text


def test_the_indicator_example_of_the_plugin_guide_works(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    guide = (ROOT / "docs" / "plugins.md").read_text()
    section = guide[guide.index("### An indicator"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    policy = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    head = "from decimal import ROUND_HALF_UP, Decimal\n\nfrom kinerja_rules import hookimpl\n__version__ = '1.0'\n"
    folder = _plugin_dir(tmp_path, "panduan_plugin", head + code)
    (tmp_path / "p.yaml").write_text("policy: puskesmas\neffective: 2024-01-01\n" + policy)
    engine = Engine.from_paths([tmp_path / "p.yaml"], discover([folder], entry_points=False))
    visits = [{"tempat": "rumah"}, {"tempat": "puskesmas"}, {"tempat": "puskesmas"}]
    decision = engine.evaluate("puskesmas", {"kunjungan": visits}, as_of=dt.date(2024, 2, 1), explain=True)
    assert decision.outputs == {"cukup": True}
    assert decision.trace is not None
    assert decision.trace["indicators"]["porsi_kunjungan_rumah"]["value"] == Decimal("0.3333")
    assert decision.trace["indicators"]["porsi_kunjungan_rumah"]["cite"] == "Permenkes 43/2019"
