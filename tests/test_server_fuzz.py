"""Property-based requests from the service's own OpenAPI document: none may get a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from kinerja_rules import Engine
from kinerja_rules.server import create_app
from tests.conftest import POLICIES, bundled

pytestmark = pytest.mark.slow  # many generated requests

app = create_app(bundled(), policies=[Path(POLICIES)])
schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app)


@schema.exclude(path="/v1/admin/reload").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    if "policy_id" in (case.path_parameters or {}):
        case.path_parameters["policy_id"] = "nasional"  # reach the evaluation, not only the 404
    case.call_and_validate(checks=[not_a_server_error])
