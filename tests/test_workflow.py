"""One region at a time: its folder checked, tested, evaluated and validated with its parents
found in the policies folder, a new region scaffolded, and every --help example run."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules import Engine, check_paths
from kinerja_rules.cli import parser
from kinerja_rules.server import create_app
from tests.conftest import POLICIES, ROOT

pytestmark = pytest.mark.slow  # real servers and subprocesses


def kinerja(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kinerja_rules.cli", *args], text=True, capture_output=True,
                          cwd=cwd, timeout=120)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the bundled policies and examples, where commands may write."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "examples" / "keys.yaml").chmod(0o600)  # whatever the umask: a key file others may write is refused
    return tmp_path


# ---- one region's folder -------------------------------------------------------------------

def test_check_one_region_finds_its_parent_in_the_policies_folder() -> None:
    result = kinerja("check", "policies/sawahlunto")
    assert result.returncode == 0, result.stderr
    assert "ok  sawahlunto 2025.1 (extends nasional)" in result.stdout


@pytest.mark.parametrize("args, only_region", [(("test", "policies/sawahlunto"), True),
                                               (("test", "--policies", "policies", "policies/sawahlunto"), True),
                                               (("test", "policies", "policies/sawahlunto"), False)])
def test_test_one_region_loads_each_file_once(args: tuple[str, ...], only_region: bool) -> None:
    result = kinerja(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "defined twice" not in result.stderr
    passed = int(re.search(r"(\d+) passed, 0 failed", result.stdout).group(1))  # type: ignore[union-attr]
    policies = check_paths([POLICIES]).policies
    own = {(p.id, c.name) for p in policies.values() for c in p.checked.cases.values() if p.id in c.origin.file
           or p.id == "nasional" and "nasional" in c.origin.file}
    assert passed == (sum(pid == "sawahlunto" for pid, _ in own) if only_region else len(own)), own


def test_eval_a_region_by_its_folder() -> None:
    result = kinerja("eval", "policies/makassar", "-i", "examples/pegawai.json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["policy"]["id"] == "makassar"


def test_a_region_elsewhere_with_its_parents_from_policies(tmp_path: Path) -> None:
    folder = tmp_path / "pesisir"
    folder.mkdir()
    (folder / "policy.yaml").write_text("policy: pesisir\nextends: nasional\nversion: '2025.1'\n")
    (folder / "tests.yaml").write_text("policy: pesisir\ntests:\n  dasar:\n    record: pns_baik\n"
                                       "    expect: {tpp.diterima: 4_500_000}\n")
    for args in (("check", str(folder)), ("test", str(folder)), ("eval", str(folder), "-i", "examples/pegawai.json")):
        result = kinerja(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "1 passed, 0 failed" in kinerja("test", str(folder)).stdout


def test_an_unknown_parent_says_where_parents_are_found(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("policy: p\nextends: nasionall\n")
    result = kinerja("check", str(tmp_path))
    assert result.returncode == 1
    assert "extends unknown policy 'nasionall'; did you mean 'nasional'?" in result.stderr
    assert "--policies DIR" in result.stderr


# ---- tests never take a policy out of service ---------------------------------------------------

def test_a_mistake_in_a_tests_file_fails_check_but_not_service(workspace: Path) -> None:
    tests = workspace / "policies" / "makassar" / "tests.yaml"
    tests.write_text(tests.read_text().replace("record: pns_baik", "record: pns_baikk", 1))
    engine = Engine.from_paths([workspace / "policies"])
    assert "makassar" in engine.ids and any(w.code == "E151" for w in engine.warnings)
    result = kinerja("check", cwd=workspace)
    assert result.returncode == 1 and "error[E151]: test 'tpp_tanpa_laporan_aktivitas' uses unknown fixture" \
        in result.stderr


def test_a_tests_file_that_does_not_parse_fails_check_but_not_service(workspace: Path) -> None:
    tests = workspace / "policies" / "sawahlunto" / "tests.yaml"
    tests.write_text(tests.read_text() + "\n  rusak: [\n")
    engine = Engine.from_paths([workspace / "policies"])
    assert "sawahlunto" in engine.ids
    report = check_paths([workspace / "policies"])
    assert [d.code for d in report.problems] == ["E002"] and not report.errors


# ---- a new region ----------------------------------------------------------------------------

def test_new_region_checks_and_passes_as_written(workspace: Path) -> None:
    result = kinerja("new", "pesisir", "--title", "Kabupaten Pesisir", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "policies/pesisir/policy.yaml" in result.stdout
    text = (workspace / "policies" / "pesisir" / "policy.yaml").read_text()
    assert "extends: nasional" in text and "Kabupaten Pesisir" in text and "# " in text
    assert kinerja("check", "policies/pesisir", cwd=workspace).returncode == 0
    tested = kinerja("test", "policies/pesisir", cwd=workspace)
    assert tested.returncode == 0 and "2 passed, 0 failed" in tested.stdout, tested.stdout + tested.stderr


@pytest.mark.parametrize("args, message", [(("new", "nasional"), "already exists"),
                                           (("new", "Bad Name"), "is not a policy id"),
                                           (("new", "baru", "--policies", "nowhere"), "holds no nasional policy")])
def test_new_region_refuses_clearly(workspace: Path, args: tuple[str, ...], message: str) -> None:
    (workspace / "policies" / "nasional").mkdir()
    result = kinerja(*args, cwd=workspace)
    assert result.returncode == 2 and message in result.stderr, result.stderr


# ---- every example in --help works ------------------------------------------------------------

def _help_examples() -> list[tuple[str, str]]:
    top = parser()
    found = [("kinerja", line.strip()) for line in (top.epilog or "").splitlines() if line.startswith("  kinerja ")]
    for action in top._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            for line in (sub.epilog or "").splitlines():
                if line.startswith("  kinerja "):
                    found.append((name, line.split("   ")[0].strip()))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(command: list[str], cwd: Path) -> None:
    port = _free_port()
    command = [*command, "--port", str(port)] if "--port" not in command else \
        [str(port) if i and command[i - 1] == "--port" else c for i, c in enumerate(command)]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                assert time.monotonic() < deadline, "not ready in 60 s"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


EXAMPLES = _help_examples()


@pytest.mark.parametrize("command, example", EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_every_help_example_works(workspace: Path, command: str, example: str) -> None:
    kinerja_cmd = f"{shlex.quote(sys.executable)} -m kinerja_rules.cli"
    line = re.sub(r"(^|\| |&& )kinerja ", lambda m: m.group(1) + kinerja_cmd + " ", example)
    if command == "serve":
        _serve(shlex.split(line), workspace)
        return
    result = subprocess.run(line, shell=True, cwd=workspace, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, (example, result.stdout[-2000:], result.stderr[-2000:])


def test_the_examples_cover_every_command() -> None:
    assert {c for c, _ in EXAMPLES} >= {"kinerja", "check", "eval", "test", "new", "plugins", "serve", "key"}


# ---- /v1/validate with a region's files ------------------------------------------------------------

@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(engine)) as c:
        yield c


def _validate(client: TestClient[Litestar], body: object) -> dict[str, object]:
    response = client.post("/v1/validate", content=json.dumps(body), headers={"content-type": "application/json"})
    return {"status": response.status_code, **response.json()}


def test_validate_a_regions_files_together(client: TestClient[Litestar]) -> None:
    files = {name: (POLICIES / "sawahlunto" / name).read_text() for name in ("policy.yaml", "tests.yaml")}
    answer = _validate(client, {"files": files})
    assert answer["status"] == 200 and answer["valid"] is True and answer["policies"] == ["sawahlunto"]
    files["tests.yaml"] = files["tests.yaml"].replace("record: pns_baik", "record: pns_baikk", 1)
    answer = _validate(client, {"files": files})
    assert answer["valid"] is False
    [problem] = answer["diagnostics"]  # type: ignore[misc]
    assert problem["code"] == "E151" and problem["file"] == "tests.yaml"


def test_validate_names_a_broken_file_once(client: TestClient[Litestar]) -> None:
    policy = (POLICIES / "makassar" / "policy.yaml").read_text().replace("  bobot_aktivitas:", "   bobot_aktivitas:")
    answer = _validate(client, {"files": {"policy.yaml": policy,
                                          "tests.yaml": (POLICIES / "makassar" / "tests.yaml").read_text()}})
    assert [(d["code"], d["file"]) for d in answer["diagnostics"]] == [("E002", "policy.yaml")]  # type: ignore[index,union-attr]


@pytest.mark.parametrize("body, path", [
    ({"files": {}}, "files"),
    ({"files": {"../../etc/passwd": "x"}}, "files"),
    ({"files": {f"f{i}.yaml": "policy: x\n" for i in range(65)}}, "files"),
    ({"files": {"a.yaml": 5}}, "files"),
    ({"files": {"a.yaml": "x"}, "extra": 1}, "extra"),
])
def test_validate_refuses_a_bad_set_of_files_clearly(client: TestClient[Litestar], body: object, path: str) -> None:
    response = client.post("/v1/validate", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["path"].startswith(path), response.json()


def test_a_json_policy_document_is_still_a_single_document(client: TestClient[Litestar]) -> None:
    answer = _validate(client, {"policy": "coba", "extends": "nasional"})
    assert answer["status"] == 200 and answer["valid"] is True and answer["policies"] == ["coba"]


@pytest.mark.parametrize("args, message", [
    (("check", "--lang", "fr"), "invalid choice: 'fr'"),
    (("eval", "examples", "-i", "examples/pegawai.json"), "must hold exactly one policy ('policy:' key), not none"),
    (("eval", "policies", "-i", "examples/pegawai.json"), "must hold exactly one policy ('policy:' key), not "),
])
def test_bad_arguments_get_a_clear_error(args: tuple[str, ...], message: str) -> None:
    result = kinerja(*args)
    assert result.returncode in (1, 2) and message in result.stderr, result.stderr
