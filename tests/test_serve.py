"""`kinerja serve` as a real process, `kinerja key`, and HTTP decisions equal to `kinerja eval`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from kinerja_rules import Engine
from kinerja_rules.cli import main
from kinerja_rules.server import KeyRing, create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, ROOT, metric

pytestmark = pytest.mark.slow  # real servers and subprocesses

_JSON = msgspec.json.Encoder(decimal_format="number")


def test_http_decisions_equal_kinerja_eval(engine: Engine, tmp_path: Path,
                                           capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    cases = [c for c in engine.policy("nasional").checked.cases.values()
             if c.expect_error is None and c.members is None]
    assert len(cases) > 20
    by_date: dict[str, list[Any]] = defaultdict(list)
    for case in cases:
        by_date[str(case.as_of) if case.as_of else ""].append(case)
    recorder = Recorder(SQLiteStore(tmp_path / "data" / "decisions.sqlite3"))
    with TestClient(create_app(engine, recorder=recorder)) as client:  # as `kinerja serve` runs: recording
        for as_of, group in by_date.items():
            path = tmp_path / f"records{as_of}.jsonl"
            path.write_bytes(b"\n".join(_JSON.encode(c.record) for c in group) + b"\n")
            capsysbinary.readouterr()
            code = main(["eval", "nasional", "--input", str(path), "--policies", str(ROOT / "policies"),
                         *(["--as-of", as_of] if as_of else [])])
            printed = capsysbinary.readouterr().out.splitlines()
            assert code == 0 and len(printed) == len(group)
            for case, line in zip(group, printed, strict=True):
                body: dict[str, Any] = {"record": case.record, **({"as_of": as_of} if as_of else {})}
                response = client.post("/v1/policies/nasional/evaluate", content=_JSON.encode(body),
                                       headers={"content-type": "application/json"})
                assert response.status_code == 200, (case.name, response.text)
                assert _without_id(response.content) == line, case.name  # the id is metadata beside the rest
            batch = client.post("/v1/policies/nasional/evaluate/batch", content=_JSON.encode(
                {"records": [c.record for c in group], **({"as_of": as_of} if as_of else {})}),
                headers={"content-type": "application/json"})
            results = msgspec.json.decode(batch.content, type=dict[str, list[msgspec.Raw]])["results"]
            tagged = [b'{"result":"decision",' + line[1:] for line in printed]  # batch items say what they are
            assert [b'{"result":"decision",' + _without_id(b"{" + bytes(r)[len(b'{"result":"decision",'):])[1:]
                    for r in results] == tagged


_ID = re.compile(rb'^\{"decision_id":"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",')


def _without_id(answer: bytes) -> bytes:
    """The answer with its leading decision_id taken out (there must be one)."""
    found = _ID.match(answer)
    assert found is not None, answer[:80]
    return b"{" + answer[found.end():]


def test_key_command_makes_a_working_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "--name", "payroll", "--policies", "nasional,sawahlunto"]) == 0
    captured = capsys.readouterr()
    key = next(line for line in captured.err.splitlines() if line.startswith("kr_"))
    ring = KeyRing.parse("keys:\n" + captured.out, "generated")
    found = ring.find(key)
    assert found is not None and found.name == "payroll" and found.policies == ["nasional", "sawahlunto"]
    assert not found.admin and key not in captured.out
    assert main(["key", "--name", "nobody"]) == 2


def test_serve_refuses_a_public_address_without_keys(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KINERJA_API_KEYS", raising=False)
    monkeypatch.delenv("KINERJA_API_KEYS_FILE", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--policies", str(ROOT / "policies")]) == 2
    assert "only binds to loopback" in capsys.readouterr().err


def test_serve_reports_a_bad_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: [{name: a}]")
    assert main(["serve", "--keys", str(keys), "--policies", str(ROOT / "policies")]) == 2
    assert f"{keys}:" in capsys.readouterr().err


def test_serve_reports_policies_that_do_not_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rusak.yaml").write_text("policy: rusak\neffective: 2024-01-01\noutputs:\n  x: {type: integer, "
                                         "expr: \"nope\"}\n")
    assert main(["serve", "--policies", str(tmp_path), "--port", "1"]) == 1
    assert "rusak.yaml:4" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _start(*args: str, own_group: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "kinerja_rules.cli", "serve", "--port", str(port), *args],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=own_group)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if _get(base + "/ready")[0] == 200:
                return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server was not ready within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGTERM), err.decode()  # uvicorn re-raises the signal it handled
    assert b"Application shutdown complete" in err or b"Stopping parent process" in err
    return out.decode(), err.decode()


def test_serve_end_to_end(engine: Engine) -> None:
    process, base = _start()
    try:
        status, body = _get(base + "/v1/policies/nasional/evaluate", _JSON.encode({"record": BASE_RECORD}),
                            {"content-type": "application/json"})
        assert status == 200 and json.loads(body)["outputs"]["tpp"]["diterima"] == 4_500_000
        status, body = _get(base + "/v1/policies/nasional/evaluate", b'{"record": {', {"content-type":
                                                                                        "application/json"})
        assert status == 400 and json.loads(body)["type"] == "/problems/malformed-json"
    finally:
        out, err = _stop(process)
    assert "on loopback only" in err and f"serving {len(engine.ids)} policies" in err  # however many are bundled
    assert all(f"{name} {version}".rstrip() in err for name, version in engine.registry.plugins.items())
    access = [json.loads(line) for line in out.splitlines()]
    assert [(a["path"], a["status"]) for a in access if a["path"] != "/ready"] == [
        ("/v1/policies/nasional/evaluate", 200), ("/v1/policies/nasional/evaluate", 400)]


def test_serve_with_workers_answers_a_reload_once_every_worker_serves_it(tmp_path: Path) -> None:
    import shutil
    import threading

    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    process, base = _start("--workers", "2", "--policies", str(folder), "--no-access-log")
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:  # reloads land under load
        while not stop.is_set():
            statuses.append(_get(base + "/v1/policies/nasional")[0])

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for generation in (1, 2):
            (folder / f"baru{generation}.yaml").write_text(
                f'policy: baru{generation}\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n')
            status, body = _get(base + "/v1/admin/reload", b"", timeout=75)  # it may wait 60 s for the workers
            assert status == 200, body
            answer = json.loads(body)
            assert answer["generation"] == generation and f"baru{generation}" in answer["reloaded"]
            # answered: every worker serves the new set, at once (no request lands on an old worker)
            assert {_get(base + f"/v1/policies/baru{generation}")[0] for _ in range(24)} == {200}
            assert {json.loads(_get(base + "/ready")[1])["generation"] for _ in range(12)} == {generation}
        stop.set()
        for thread in threads:
            thread.join()
        # every worker's requests, added up, whichever worker answers (a request is counted once its
        # answer is sent, so the last one may be counted a moment after its client has it)
        deadline = time.monotonic() + 10
        while True:
            status, body = _get(base + "/metrics")
            counted = metric(body.decode(), "kinerja_http_requests_total", endpoint="/v1/policies/{policy_id}",
                             method="GET", status="200")
            if counted == len(statuses) + 2 * 24 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert counted == len(statuses) + 2 * 24
        assert metric(body.decode(), "kinerja_reloads_total", outcome="ok") == 2
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        _stop(process)
    assert set(statuses) == {200}


def test_serve_with_a_plugin_folder_and_batch_processes(tmp_path: Path) -> None:
    from tests.test_plugins import PLUGIN, POLICY

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "serve_plugin.py").write_text(PLUGIN)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "pakai.yaml").write_text(POLICY)
    process, base = _start("--policies", str(policies), "--plugins", str(plugins), "--batch-processes", "1",
                           "--no-access-log")
    try:
        deadline = time.monotonic() + 60
        while json.loads(_get(base + "/ready")[1])["batch_processes"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        records = [{"x": i, "survei": [1] * (i % 3)} for i in range(300)]
        status, body = _get(base + "/v1/policies/pakai/evaluate/batch",
                            json.dumps({"records": records, "as_of": "2024-06-01"}).encode(),
                            {"content-type": "application/json"})
        assert status == 200, body
        results = json.loads(body)["results"]
        assert [r["outputs"]["ganda"] for r in results] == [2 * i for i in range(300)]
        assert [r["outputs"]["jumlah"] for r in results] == [i % 3 for i in range(300)]
        metrics = _get(base + "/metrics")[1].decode()
        assert metric(metrics, "kinerja_decisions_total", policy="pakai", outcome="decided") == 300
        assert metric(metrics, "kinerja_batch_records_total", decided_in="batch_processes") == 300
    finally:
        _stop(process)


# ---- the connection guard: limits before any request reaches the service -------------------

def _raw(base: str, request: bytes, *, wait: float = 10) -> bytes:
    """Send `request` on a fresh connection and read until the server closes it."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while still sending: the answer is already there
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_the_connection_guard_refuses_what_would_hold_the_service() -> None:
    process, base = _start("--no-access-log", "--batch-processes", "0", "--header-timeout", "0.5",
                           "--body-timeout", "0.5", "--max-connections", "6", "--max-header-bytes", "4096",
                           "--max-headers", "20")
    try:
        # an Authorization header of 4 MB is refused after the first few kilobytes, never read in full
        huge = b"GET /v1/policies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * (4 << 20) + b"\r\n\r\n"
        answer = _raw(base, huge)
        assert _status(answer) == 431 and b'"/problems/headers-too-large"' in answer
        many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(30)) + b"\r\n"
        assert _status(_raw(base, many)) == 431
        within = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"X-A: b\r\n" * 10 + b"\r\n"
        assert _status(_raw(base, within)) == 200
        started = time.monotonic()  # headers that never finish: 408 after the header timeout
        answer = _raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert _status(answer) == 408 and b"headers took too long" in answer and time.monotonic() - started < 5
        answer = _raw(base, b"POST /v1/policies/nasional/evaluate HTTP/1.1\r\nHost: x\r\ncontent-type: "
                            b"application/json\r\ncontent-length: 100\r\n\r\n{\"rec")
        assert _status(answer) == 408 and b"body stopped arriving" in answer
        host, port = base.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(6)]
        try:
            time.sleep(0.1)
            answer = _raw(base, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(answer) == 503 and b"too-many-connections" in answer
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5  # the slow connections time out and the service answers everyone again
        while _get(base + "/health")[0] != 200:
            assert time.monotonic() < deadline
        metrics = _get(base + "/metrics")[1].decode()
        assert metric(metrics, "kinerja_connections_refused_total", reason="header-too-large") == 2
        assert metric(metrics, "kinerja_connections_refused_total", reason="too-many-connections") == 1
    finally:
        out, err = _stop(process)
    assert "Traceback" not in err, err


def test_a_stalled_log_reader_never_freezes_the_service_nor_stops_sigterm() -> None:
    import http.client

    port = _free_port()  # standard output and error are pipes that nobody reads until the end
    process = subprocess.Popen([sys.executable, "-m", "kinerja_rules.cli", "serve", "--port", str(port),
                                "--batch-processes", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and process.poll() is None
            try:
                if _get(f"http://127.0.0.1:{port}/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        long_path = "/nowhere/" + "x" * 2000  # each access-log line is over 2 kB: the 64 kB pipe fills quickly
        for _ in range(1500):
            connection.request("GET", long_path)
            response = connection.getresponse()
            response.read()
            assert response.status == 404
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        assert metric(metrics, "kinerja_log_lines_dropped_total", stream="stdout") is not None  # counted
        connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)  # still nobody reads the pipes
    finally:
        if process.poll() is None:
            process.kill()
        out, err = process.communicate(timeout=30)
    assert process.returncode in (0, -signal.SIGTERM)
    assert out.count(b'"path":"/nowhere/') > 0


def test_the_container_image_runs_the_service_as_documented() -> None:
    """No container engine runs in CI: check what the Dockerfile asks of the project instead."""
    from kinerja_rules.cli import parser

    text = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry[0] == "kinerja"
    args = parser().parse_args(entry[1:])  # the options it passes exist, with these values
    assert (args.host, args.port, args.policies) == ("0.0.0.0", 8000, "/policies")
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*http://127\.0\.0\.1:8000/ready", text, re.M | re.S)
    assert '"/policies"' in re.search(r"^VOLUME (.*)$", text, re.M).group(1)  # type: ignore[union-attr]
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), path
    keys = re.search(r"KINERJA_API_KEYS_FILE=(\S+)", text)
    assert keys is not None  # a public address needs keys: the image says where they are read from
    data = re.search(r"KINERJA_DATA=(\S+)", text)  # the decision store: in a volume the unprivileged user owns
    assert data is not None and f'"{data.group(1)}"' in re.search(r"^VOLUME (.*)$", text, re.M).group(1)  # type: ignore[union-attr]
    assert re.search(rf"^RUN mkdir {data.group(1)} && chown {user[-1]} {data.group(1)}", text, re.M)
    # the README offers `--store postgresql://…` to the container: the image installs its driver
    # through the locked versions (tests/test_lock.py: that lock is the `postgresql` extra's share)
    assert re.search(r"pip install [^\n]*--require-hashes -r requirements-server\.lock", text)
    assert re.search(r"pip install [^\n]*--no-deps [^\n]*\. \./plugins/\*/", text)
    assert re.search(r"^psycopg-binary==", (ROOT / "requirements-server.lock").read_text(), re.M)


def test_serve_names_a_broken_plugin_and_the_policies_it_takes_out_at_start(tmp_path: Path) -> None:
    from tests.test_plugins import MISSPELT_HOOK, POLICY

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "patah_plugin.py").write_text(MISSPELT_HOOK)
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "pakai.yaml").write_text(POLICY)
    process, base = _start("--policies", str(policies), "--plugins", str(plugins), "--batch-processes", "0",
                           "--no-access-log")
    try:
        ready = json.loads(_get(base + "/ready")[1])
        assert "pakai" not in ready["policies"] and "nasional" in ready["policies"]
    finally:
        _, err = _stop(process)
    assert f"plugin 'patah_plugin' ({plugins / 'patah_plugin.py'}:" in err
    assert "unknown hook 'kinerja_register_function'; did you mean 'kinerja_register_functions'?" in err
    assert "it is left out, and so is every policy that uses it" in err
    assert "policy 'pakai' is not in service" in err and "unknown function 'gandakan'" in err


def test_a_port_in_use_is_an_error_before_anything_says_it_started() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "kinerja_rules.cli", "serve", "--port", str(port), "--no-store"],
                                cwd=ROOT, capture_output=True, timeout=120)
    err = result.stderr.decode()
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in err, err
    assert "serving" not in err and "started" not in err.lower() and "Traceback" not in err


def test_sighup_reloads_and_sigint_stops_every_process_without_a_traceback(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    process, base = _start("--policies", str(folder), "--no-access-log", "--batch-processes", "2", "--no-store",
                           own_group=True)  # its own process group, as a terminal's Ctrl-C reaches it
    try:
        (folder / "baru.yaml").write_text('policy: baru\nversion: "1"\nextends: nasional\neffective: 2025-01-01\n')
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while _get(base + "/v1/policies/baru")[0] != 200 and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.2)
        assert _get(base + "/v1/policies/baru")[0] == 200 and process.poll() is None
        children = _children(process.pid)
        assert children  # the batch and validation processes
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: every process of the group gets it
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = err.decode()
    assert "SIGHUP: re-reading the policies folder" in text and "reloaded: generation 1" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-2000:]
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
