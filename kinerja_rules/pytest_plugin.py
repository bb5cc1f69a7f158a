"""pytest collects the test cases of policy files, so `pytest` runs every policy's tests.

Policy folders are listed in the ini option `kinerja_policies` (default: `policies`).
Each case becomes one test item; a failure prints the differing outputs and the trace.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kinerja_rules.engine import check_paths
from kinerja_rules.errors import PolicyError
from kinerja_rules.pipeline import CheckReport
from kinerja_rules.testing import run_case


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("kinerja_policies", "folders whose policy files carry test cases to collect",
                  type="paths", default=[])


@functools.cache
def _report(root: Path) -> CheckReport:
    return check_paths([root], library=root)


def _root_of(path: Path, config: pytest.Config) -> Path | None:
    for folder in config.getini("kinerja_policies") or []:
        folder = Path(folder).resolve()
        if folder in path.resolve().parents:
            return folder
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    root = _root_of(file_path, parent.config)
    if root is None:
        return None
    return PolicyFile.from_parent(parent, path=file_path, root=root)


class PolicyFile(pytest.File):
    def __init__(self, *, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root

    def collect(self) -> Iterator[pytest.Item]:
        report = _report(self.root)
        mine = str(self.path.resolve())
        problems = [d for d in report.problems if d.span is None or Path(d.span.file).resolve() == self.path.resolve()]
        if problems:
            yield PolicyCheckItem.from_parent(self, name="check", error=PolicyError(problems))
            return
        for policy in report.policies.values():
            for case in policy.checked.cases.values():
                if str(Path(case.origin.file).resolve()) == mine:
                    yield PolicyCaseItem.from_parent(self, name=f"{policy.id}::{case.name}", policy=policy, case=case)


class PolicyCheckItem(pytest.Item):
    def __init__(self, *, error: PolicyError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return self.error.render()


class _CaseFailed(Exception):
    pass


class PolicyCaseItem(pytest.Item):
    def __init__(self, *, policy: Any, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.case = case

    def runtest(self) -> None:
        result = run_case(self.policy, self.case)
        if not result.ok:
            raise _CaseFailed(result.report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, _CaseFailed):
            return f"{self.case.origin}: policy test {self.case.name!r} failed\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.origin.line - 1, f"policy test {self.name}"
