"""Property-based requests from the service's own OpenAPI document: none may get a 500."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from kinerja_rules.recording import record_of, source_of, with_id
from kinerja_rules.server import create_app
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.store import SQLiteStore
from tests.conftest import BASE_RECORD, POLICIES, bundled

pytestmark = pytest.mark.slow  # many generated requests

store = SQLiteStore(Path(tempfile.mkdtemp(prefix="kinerja-fuzz-")) / "decisions.sqlite3")
_decision = with_id(bundled().evaluate("nasional", BASE_RECORD))
store.put([record_of(_decision, BASE_RECORD)], [source_of(bundled().policy("nasional"))])
app = create_app(bundled(), policies=[Path(POLICIES)], recorder=Recorder(store))  # the decisions endpoints too
schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)


@schema.exclude(path="/v1/admin/reload").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    if "policy_id" in (case.path_parameters or {}):
        case.path_parameters["policy_id"] = "nasional"  # reach the evaluation, not only the 404
    if "decision_id" in (case.path_parameters or {}):
        case.path_parameters["decision_id"] = _decision.decision_id  # reach the replay and the appeal
    case.call_and_validate(checks=[not_a_server_error])
