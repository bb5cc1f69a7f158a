"""A client generated from the OpenAPI documents (openapi-python-client) decides records and
checks policy files: the documents are what a client team would build on."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kinerja_rules.server import KeyRing, create_app, hash_key
from tests.conftest import BASE_RECORD, bundled

pytestmark = pytest.mark.slow


def _generate(document: dict[str, Any], name: str, folder: Path) -> ModuleType:
    spec = folder / f"{name}.json"
    spec.write_text(json.dumps(document))
    tool = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run([str(tool), "generate", "--path", str(spec), "--meta", "none",
                             "--output-path", str(folder / name)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unable to process schema" not in result.stdout, result.stdout
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(bundled())) as test_client:
        yield test_client


def _sub(package: ModuleType, path: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{path}")


def test_a_client_generated_from_a_policys_document_decides_a_record_and_a_batch(
        client: TestClient[Litestar], tmp_path: Path) -> None:
    document = client.get("/v1/policies/nasional/openapi.json").json()
    package = _generate(document, "nasional_client", tmp_path)
    api = _sub(package, "client").Client(base_url=str(client.base_url))
    api.set_httpx_client(client)  # the generated calls go through the test client's transport
    models = _sub(package, "models")

    body = models.EvaluateRequest.from_dict({"record": BASE_RECORD, "explain": True})
    answer = _sub(package, "api.default.evaluate").sync_detailed(client=api, body=body)
    assert answer.status_code == 200
    decision = answer.parsed
    assert isinstance(decision, models.Decision)
    assert decision.outputs.tpp.diterima == 4_500_000 and decision.outputs.evaluasi.predikat.value == "baik"
    assert decision.trace.definitions["pagu"].value == 4_500_000  # the trace is typed too
    assert answer.headers["etag"] == f'"{bundled().policy("nasional").digest}"'

    batch = models.BatchRequest.from_dict({"records": [BASE_RECORD, {**BASE_RECORD, "nip": "12"}]})
    results = _sub(package, "api.default.evaluate_batch").sync(client=api, body=batch).results
    assert isinstance(results[0], models.BatchDecision) and isinstance(results[1], models.BatchError)
    assert results[0].outputs.tpp.diterima == 4_500_000
    assert results[1].error.fields[0].path == "nip"

    pinned = _sub(package, "api.default.evaluate").sync_detailed(client=api, body=body, if_match='"' + "0" * 64 + '"')
    assert pinned.status_code == 412 and isinstance(pinned.parsed, models.Problem)

    run = models.PopulationRequest.from_dict({"records": [BASE_RECORD, {**BASE_RECORD, "nip": "198507122010011004"}],
                                              "groups": {"Dinas Kesehatan": {"predikat_organisasi": "baik"}}})
    together = _sub(package, "api.default.evaluate_population").sync(client=api, body=run)
    first = together.results[0]
    assert isinstance(first, models.BatchDecision) and first.outputs.evaluasi.predikat_awal.value == "baik"
    assert together.groups[0].size == 2 and together.groups[0].violations  # 2 baik of 2: over 70 %


def test_a_client_generated_from_the_general_document_checks_policy_files(client: TestClient[Litestar],
                                                                          tmp_path: Path) -> None:
    package = _generate(client.get("/docs/openapi.json").json(), "kinerja_client", tmp_path)
    api = _sub(package, "client").Client(base_url=str(client.base_url))
    api.set_httpx_client(client)
    models = _sub(package, "models")
    files = models.ValidateFiles.from_dict({"files": {"coba.yaml": "policy: coba\nextends: nasionall\n"}})
    checked = _sub(package, "api.service.validate_policy").sync(client=api, body=files)
    assert checked.valid is False and checked.diagnostics[0].code == "E024"
    listed = _sub(package, "api.policies.list_policies").sync(client=api)
    assert "nasional" in [p.id for p in listed.policies]


def test_the_documents_declare_keys_problems_and_stable_operation_ids(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - name: svc\n    sha256: {hash_key('k' * 32)}\n    policies: ['*']\n")
    with TestClient(create_app(bundled(), keys=KeyRing.load(keys))) as secured:
        general = secured.get("/docs/openapi.json").json()
        ops = {op["operationId"]: (path, op) for path, item in general["paths"].items() for op in item.values()}
        assert {"evaluate", "evaluateBatch", "evaluatePopulation", "describePolicy", "listPolicies", "validatePolicy",
                "policyOpenAPI",
                "reloadPolicies", "health", "ready"} <= set(ops)
        assert ops["evaluate"][1]["security"] == [{"bearer": []}] and ops["health"][1]["security"] == []
        for path, op in ops.values():
            for status in ("400", "500"):
                assert "application/problem+json" in op["responses"][status]["content"], (path, status)
        items = general["components"]["schemas"]["BatchResult"]["properties"]["results"]["items"]
        assert items["discriminator"]["propertyName"] == "result"
        policy = secured.get("/v1/policies/nasional/openapi.json", headers={"authorization": "Bearer " + "k" * 32})
        document = policy.json()
        evaluate = document["paths"]["/v1/policies/nasional/evaluate"]["post"]
        assert evaluate["security"] == [{"bearer": []}] and "401" in evaluate["responses"]
        outputs = document["components"]["schemas"]["Outputs"]["properties"]
        assert outputs["evaluasi"]["properties"]["capaian_skp"]["format"] == "decimal"
        assert outputs["tpp"]["properties"]["diterima"]["type"] == "integer"
        assert document["components"]["schemas"]["Record"]["properties"]["nip"]["pattern"].startswith("^(?:")
        assert secured.get("/v1/policies/nasional/openapi.json").status_code == 401
