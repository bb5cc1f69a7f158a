"""The engine facade: the one module that knows the whole pipeline.

load (YAML) -> documents -> assemble (extends) -> check -> compile -> CompiledPolicy.
The CLI and the server use only this module, its result types and its errors.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinerja_rules.assemble import assemble
from kinerja_rules.checker import check
from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.documents import PolicyFile, read_policy_file
from kinerja_rules.errors import Diagnostic, PolicyError, UnknownPolicyError
from kinerja_rules.functions import BUILTINS, FunctionSpec, IndicatorSpec
from kinerja_rules.loader import SourceFile, iter_policy_files, load_file, load_text
from kinerja_rules.policy import CompiledPolicy


@dataclass(frozen=True)
class Registry:
    """The functions and indicators policies may use, and the plugins that gave them."""

    functions: Mapping[str, FunctionSpec]
    indicators: Mapping[str, IndicatorSpec] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)  # plugin name -> version
    observe: Any = None  # the decision-observer hook caller, or None when no plugin observes

    @classmethod
    def builtins(cls) -> Registry:
        return cls(functions={spec.name: spec for spec in BUILTINS}, plugins={"builtins": ""})


@dataclass(frozen=True)
class CheckReport:
    """The outcome of checking a set of policy files: policies, errors and warnings."""

    policies: Mapping[str, CompiledPolicy]
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def discover(plugin_dirs: Sequence[Path] = (), entry_points: bool = True) -> Registry:
    """The registry of the built-ins, the installed plugins and the plugins in `plugin_dirs`."""
    from kinerja_rules.plugins import load_registry

    return load_registry(plugin_dirs, entry_points)


@functools.cache
def default_registry() -> Registry:
    """The built-ins and every installed plugin: what a call without a registry uses."""
    return discover()


def _read(paths: Iterable[Path], texts: Iterable[tuple[str, str]] = (),
          loaded: Iterable[SourceFile] = ()) -> tuple[list[PolicyFile], list[Diagnostic]]:
    files: list[PolicyFile] = []
    diags: list[Diagnostic] = []
    sources = list(loaded)
    for path in paths:
        if not path.exists():
            diags.append(Diagnostic(code="E000", message=f"no such file or folder: {path}"))
            continue
        for file in iter_policy_files(path):
            try:
                sources.append(load_file(file))
            except PolicyError as exc:
                diags += exc.diagnostics
    for name, text in texts:
        try:
            sources.append(load_text(text, name))
        except PolicyError as exc:
            diags += exc.diagnostics
    for source in sources:
        pf, problems = read_policy_file(source)
        diags += problems
        if pf is not None:
            files.append(pf)
    return files, diags


def build(files: list[PolicyFile], registry: Registry, only: set[str] | None = None) -> CheckReport:
    """Assemble, check and compile every policy in `files` (or only those in `only` and their parents)."""
    assembled, diags = assemble(files)
    warnings: list[Diagnostic] = []
    compiled: dict[str, CompiledPolicy] = {}
    for pid, policy in assembled.items():
        if only is not None and pid not in only:
            continue
        checked, problems = check(policy, dict(registry.functions), dict(registry.indicators))
        diags += problems
        if checked is not None:
            warnings += checked.warnings
            compiled[pid] = CompiledPolicy(checked, dict(registry.plugins))
    return CheckReport(policies=compiled, errors=tuple(_unique(diags)), warnings=tuple(_unique(warnings)))


def _unique(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        key = (d.code, d.message, str(d.span))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def check_paths(paths: Sequence[Path], registry: Registry | None = None) -> CheckReport:
    """Load, check and compile the policies under `paths`, collecting every diagnostic."""
    files, diags = _read(paths)
    report = build(files, registry or default_registry())
    return CheckReport(policies=report.policies, errors=tuple(diags) + report.errors, warnings=report.warnings)


def validate_text(text: str, name: str, base: Sequence[Path] = (), registry: Registry | None = None,
                  base_sources: Sequence[SourceFile] = ()) -> CheckReport:
    """Check one policy document given as text, against the policies under `base` for its parents.

    `base_sources` gives more parents, already loaded; nothing is loaded into service.
    """
    files, diags = _read(base, [(name, text)], [s for s in base_sources if s.name != name])
    own = [pf for pf in files if pf.source.name == name]
    ids = {pf.policy_id for pf in own}
    others = [pf for pf in files if pf.source.name != name and pf.policy_id not in ids]
    report = build(own + others, registry or default_registry(), only=ids)
    errors = [d for d in diags + list(report.errors) if d.span is None or d.span.file == name]
    return CheckReport(policies=report.policies, errors=tuple(errors),
                       warnings=tuple(w for w in report.warnings if w.span is None or w.span.file == name))


class Engine:
    """A set of compiled policies, ready to evaluate records. Immutable once built."""

    def __init__(self, policies: Mapping[str, CompiledPolicy], registry: Registry | None = None,
                 warnings: Sequence[Diagnostic] = ()) -> None:
        self._policies = dict(policies)
        self.registry = registry or default_registry()
        self.warnings = tuple(warnings)

    @classmethod
    def from_paths(cls, paths: Sequence[Path], registry: Registry | None = None) -> Engine:
        """Load every policy under `paths` with `registry` (default: built-ins and installed plugins).

        Raises PolicyError if any policy fails to compile.
        """
        registry = registry or default_registry()
        report = check_paths(paths, registry)
        if report.errors:
            raise PolicyError(report.errors)
        return cls(report.policies, registry, report.warnings)

    @property
    def ids(self) -> list[str]:
        return sorted(self._policies)

    def policies(self) -> list[CompiledPolicy]:
        return [self._policies[i] for i in self.ids]

    def sources(self) -> list[SourceFile]:
        """Every policy file behind the loaded policies, as loaded."""
        seen: dict[str, SourceFile] = {}
        for policy in self._policies.values():
            for source in policy.checked.assembled.sources:
                seen.setdefault(source.name, source)
        return [seen[name] for name in sorted(seen)]

    def validate_text(self, text: str, name: str) -> CheckReport:
        """Check a policy document against this engine's policies (its possible parents)."""
        return validate_text(text, name, registry=self.registry, base_sources=self.sources())

    def policy(self, policy_id: str) -> CompiledPolicy:
        try:
            return self._policies[policy_id]
        except KeyError:
            raise UnknownPolicyError(policy_id, self.ids) from None

    def evaluate(self, policy_id: str, record: Any, as_of: dt.date | None = None,
                 explain: bool = False) -> Decision:
        """Evaluate one record; raises RecordError or EvaluationError for that record."""
        decision = self.policy(policy_id).evaluate(record, as_of, explain)
        if self.registry.observe is not None:
            self._observe(policy_id, decision)
        return decision

    def _observe(self, policy_id: str, decision: Decision) -> None:
        try:
            self.registry.observe(policy_id=policy_id, decision=decision)
        except Exception as exc:  # an observer never changes or loses a decision
            logging.getLogger("kinerja_rules").warning("decision observer failed: %s: %s",
                                                        type(exc).__name__, exc)

    def evaluate_safely(self, policy_id: str, record: Any, as_of: dt.date | None = None,
                        explain: bool = False) -> Decision | ErrorResult:
        """Evaluate one record; a bad record gives an ErrorResult instead of raising."""
        result = self.policy(policy_id).evaluate_safely(record, as_of, explain)
        if self.registry.observe is not None and isinstance(result, Decision):
            self._observe(policy_id, result)
        return result

    def evaluate_many(self, policy_id: str, records: Iterable[Any], as_of: dt.date | None = None,
                      explain: bool = False) -> Iterator[Decision | ErrorResult]:
        """Evaluate records in order; each bad record yields an ErrorResult, the others go on."""
        policy = self.policy(policy_id)
        for result in policy.evaluate_many(records, as_of, explain):
            if self.registry.observe is not None and isinstance(result, Decision):
                self._observe(policy_id, result)
            yield result
