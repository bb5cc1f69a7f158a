"""The engine facade: the one module the CLI and the server drive policies through.

Each way in (`check_paths`, `reload_paths`, `validate_files`, `Engine.for_policy`,
`Engine.from_groups`) runs the one pipeline (`pipeline.py`: load -> documents -> assemble ->
check -> compile, each stage timed) over what it reads; the CLI and the server use this
module, its result types and its errors.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.documents import declared_id
from kinerja_rules.errors import Diagnostic, PolicyError, UnknownPolicyError
from kinerja_rules.evaluation.decide import decide_record, safely
from kinerja_rules.evaluation.intake import plain_record
from kinerja_rules.loader import SourceFile
from kinerja_rules.pipeline import CheckReport, Pipeline
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.population_run import GroupReport, run_population
from kinerja_rules.registry import Registry


def discover(plugin_dirs: Sequence[Path] = (), entry_points: bool = True) -> Registry:
    """The registry of the built-ins, the installed plugins and the plugins in `plugin_dirs`."""
    from kinerja_rules.plugins import load_registry

    return load_registry(plugin_dirs, entry_points)


@functools.cache
def default_registry() -> Registry:
    """The built-ins and every installed plugin: what a call without a registry uses."""
    return discover()


def check_paths(paths: Sequence[Path], registry: Registry | None = None, library: Path | None = None,
                generate: bool = False) -> CheckReport:
    """Load, check and compile the policies under `paths`, collecting every diagnostic.

    A policy extended but not under `paths` is loaded from `library` (a policies folder).
    `generate` compiles the evaluation code too (as an engine does), so that the compile
    stage's time is whole.
    """
    pipeline = Pipeline(registry or default_registry(), generate)
    reading = pipeline.read(paths, library=library)
    report = pipeline.build(reading.files, broken=reading.broken, known=reading.library_ids)
    return CheckReport(policies=report.policies, errors=tuple(reading.diags) + report.errors,
                       warnings=report.warnings, test_errors=tuple(reading.test_diags) + report.test_errors,
                       timings=report.timings, acknowledged=report.acknowledged)


@dataclass(frozen=True)
class Reload:
    """A folder re-read policy by policy: what goes into service, and why anything stays behind."""

    policies: Mapping[str, CompiledPolicy]  # the new set: every policy that compiled, the last good of the rest
    reloaded: tuple[str, ...]  # compiled from the folder, now in service
    failed: Mapping[str, tuple[Diagnostic, ...]]  # kept at its last good version, or left out if new
    removed: tuple[str, ...]  # no longer in the folder
    refused: tuple[Diagnostic, ...]  # mistakes no policy can be named for (an unreadable folder): nothing changes
    warnings: tuple[Diagnostic, ...]
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds by stage (pipeline.STAGES)


def reload_paths(paths: Sequence[Path], registry: Registry, previous: Mapping[str, CompiledPolicy]) -> Reload:
    """Re-read the policies under `paths`; each policy that compiles replaces its previous version.

    A policy that fails keeps its previous version (or stays out if it is new), and so do the
    policies that extend it: one region's mistake never takes another down. Its diagnostics are
    those in its own files and its parents'. A mistake no policy can be named for refuses the
    whole reload.
    """
    pipeline = Pipeline(registry, generate=True)
    reading = pipeline.read(paths)
    report = pipeline.build(reading.files, broken=reading.broken, known=reading.library_ids)
    errors = tuple(reading.diags) + report.errors
    found = reading.defined | reading.broken
    failed_ids = sorted(found - set(report.policies))

    def chain(pid: str) -> set[str]:
        seen = {pid}
        while (pid := reading.parents.get(pid, "")) and pid not in seen:
            seen.add(pid)
        return seen

    failed: dict[str, tuple[Diagnostic, ...]] = {}
    named: set[int] = set()
    for pid in failed_ids:
        mine = chain(pid)
        failed[pid] = tuple(d for d in errors if d.span is not None and reading.owners.get(d.span.file) in mine)
        named |= {id(d) for d in failed[pid]}
    refused = tuple(d for d in errors if id(d) not in named)
    policies = {**{pid: previous[pid] for pid in failed_ids if pid in previous}, **report.policies}
    return Reload(policies=policies, reloaded=tuple(sorted(report.policies)), failed=failed,
                  removed=tuple(sorted(set(previous) - found)), refused=refused,
                  warnings=report.warnings + tuple(reading.test_diags) + report.test_errors,
                  timings=report.timings)


@dataclass(frozen=True)
class SourceGroup:
    """Policy files that compile together, and the policies to take from them."""

    files: Mapping[str, str]  # name -> text
    ids: tuple[str, ...]


def source_groups(policies: Iterable[CompiledPolicy]) -> list[SourceGroup]:
    """The files behind `policies`, grouped so that no group holds two versions of a file.

    A set where a region kept its last good version beside a newer parent needs two groups;
    `Engine.from_groups` compiles them back into the same policies, digests and all.
    """
    groups: list[tuple[dict[str, str], list[str]]] = []
    for policy in sorted(policies, key=lambda p: p.id):
        files = {s.name: s.text for s in policy.checked.assembled.sources}
        for known, ids in groups:
            if all(known.get(name, text) == text for name, text in files.items()):
                known.update(files)
                ids.append(policy.id)
                break
        else:
            groups.append((files, [policy.id]))
    return [SourceGroup(files=files, ids=tuple(ids)) for files, ids in groups]


class Shipment(NamedTuple):
    """Compiled policies on their way to another process (a worker, a batch process, a cluster node)."""

    policies: tuple[bytes, ...]
    """Each checked policy, pickled (empty: one that does not pickle, such as one whose plugin made
    its function in a closure): where it arrives it is compiled, not parsed or checked again."""
    groups: tuple[SourceGroup, ...]
    """Their files' texts: what a policy is compiled from there when it cannot be unpickled (a
    plugin that imports differently there) or did not pickle."""


def ship(policies: Iterable[CompiledPolicy]) -> Shipment:
    """What `Engine.from_shipment` makes these policies from, in another process."""
    policies = list(policies)
    return Shipment(tuple(_pickled(p) for p in policies), tuple(source_groups(policies)))


def _pickled(policy: CompiledPolicy) -> bytes:
    try:
        return pickle.dumps(policy, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a plugin's function that pickles by reference only if it has a name to be found by
        logging.getLogger("kinerja_rules").info("policy %s is sent as its files' texts (%s: %s)", policy.id,
                                                type(exc).__name__, exc)
        return b""


def validate_text(text: str, name: str, base: Sequence[Path] = (), registry: Registry | None = None,
                  base_sources: Sequence[SourceFile] = ()) -> CheckReport:
    """Check one policy document given as text, against the policies under `base` for its parents.

    `base_sources` gives more parents, already loaded; nothing is loaded into service.
    """
    return validate_files({name: text}, base, registry, base_sources)


def validate_files(texts: Mapping[str, str], base: Sequence[Path] = (), registry: Registry | None = None,
                   base_sources: Sequence[SourceFile] = ()) -> CheckReport:
    """Check policy documents given as text (one region's files, say) against the policies under `base`
    and `base_sources` for their parents; diagnostics are those in the given files. Nothing is put in service.
    """
    names = set(texts)
    pipeline = Pipeline(registry or default_registry())
    reading = pipeline.read(base, list(texts.items()), [s for s in base_sources if s.name not in names])
    own = [pf for pf in reading.files if pf.source.name in names]
    ids = {pf.policy_id for pf in own} | {pid for pid in reading.broken if any(
        declared_id(text) == pid for text in texts.values())}
    others = [pf for pf in reading.files if pf.source.name not in names and pf.policy_id not in ids]
    report = pipeline.build(own + others, only=ids, broken=reading.broken)

    def mine(d: Diagnostic) -> bool:
        return d.span is None or d.span.file in names

    # what the base files' loading reported is theirs; everything the build found concerns the given files,
    # even where it stands in a parent's file (an override that breaks an inherited item)
    return CheckReport(policies=report.policies, errors=tuple(filter(mine, reading.diags)) + report.errors,
                       warnings=report.warnings,
                       test_errors=tuple(filter(mine, reading.test_diags)) + report.test_errors,
                       timings=report.timings, acknowledged=report.acknowledged)


class Engine:
    """A set of compiled policies, ready to evaluate records. Immutable once built."""

    def __init__(self, policies: Mapping[str, CompiledPolicy], registry: Registry | None = None,
                 warnings: Sequence[Diagnostic] = ()) -> None:
        self._policies = dict(policies)
        self.registry = registry or default_registry()
        self.warnings = tuple(warnings)
        for policy in self._policies.values():
            _ = policy.code  # compiled now, not on a first request (only a check of the files leaves it undone)

    @classmethod
    def from_paths(cls, paths: Sequence[Path], registry: Registry | None = None,
                   library: Path | None = None) -> Engine:
        """Load every policy under `paths` with `registry` (default: built-ins and installed plugins),
        and the parents they extend from `library` (a policies folder).

        Raises PolicyError if any policy fails to compile; mistakes in test cases only warn.
        """
        registry = registry or default_registry()
        report = check_paths(paths, registry, library, generate=True)
        if report.errors:
            raise PolicyError(report.errors)
        return cls(report.policies, registry, report.warnings + report.test_errors)

    @classmethod
    def for_policy(cls, policy_id: str, library: Path, registry: Registry | None = None) -> Engine:
        """Only `policy_id` and the parents it extends, from the `library` folder: the files of the
        other policies there are not parsed, nor can their mistakes stop this one.

        Raises PolicyError if it fails to compile, UnknownPolicyError if the folder has no such policy.
        """
        registry = registry or default_registry()
        pipeline = Pipeline(registry, generate=True)
        reading = pipeline.read(library=library, seed=frozenset({policy_id}))
        if not library.exists():
            reading.diags.append(Diagnostic(code="E000", message=f"no such file or folder: {library}"))
        report = pipeline.build(reading.files, only={policy_id}, broken=reading.broken, known=reading.library_ids)
        errors = tuple(reading.diags) + report.errors
        if errors:
            raise PolicyError(errors)
        if policy_id not in report.policies:
            raise UnknownPolicyError(policy_id, sorted(reading.library_ids))
        return cls(report.policies, registry, report.warnings + report.test_errors + tuple(reading.test_diags))

    @classmethod
    def from_groups(cls, groups: Iterable[SourceGroup], registry: Registry | None = None) -> Engine:
        """Compile the policies `source_groups` gave, from their files' texts (another process's set)."""
        registry = registry or default_registry()
        policies: dict[str, CompiledPolicy] = {}
        for group in groups:
            pipeline = Pipeline(registry, generate=True)
            reading = pipeline.read(texts=list(group.files.items()))
            report = pipeline.build(reading.files, only=set(group.ids), broken=reading.broken)
            missing = set(group.ids) - set(report.policies)
            if reading.diags or report.errors or missing:
                raise PolicyError(tuple(reading.diags) + report.errors or (
                    Diagnostic(code="E000", message=f"policies did not compile from their files: {sorted(missing)}"),))
            policies.update(report.policies)
        return cls(policies, registry)

    @classmethod
    def from_shipment(cls, shipment: Shipment, registry: Registry | None = None) -> Engine:
        """The policies another process shipped (`ship`): unpickled and compiled, each with the digest
        it had there; a policy that cannot be unpickled here is compiled from its files' texts. The
        shipment comes from this program's own processes: it is never read from outside."""
        registry = registry or default_registry()  # the plugins imported before what refers to them
        policies: dict[str, CompiledPolicy] = {}
        for pickled in shipment.policies:
            try:
                policy: CompiledPolicy = pickle.loads(pickled)  # our own processes' policies, never a client's
            except Exception as exc:
                logging.getLogger("kinerja_rules").info("a shipped policy is compiled from its files' texts "
                                                        "(%s: %s)", type(exc).__name__, exc)
                continue
            policies[policy.id] = policy
        rest = [SourceGroup(g.files, tuple(i for i in g.ids if i not in policies)) for g in shipment.groups]
        if any(g.ids for g in rest):
            policies.update(cls.from_groups([g for g in rest if g.ids], registry)._policies)
        return cls(policies, registry)

    @property
    def ids(self) -> list[str]:
        return sorted(self._policies)

    def policies(self) -> list[CompiledPolicy]:
        return [self._policies[i] for i in self.ids]

    def sources(self, ids: Iterable[str] | None = None) -> list[SourceFile]:
        """Every policy file behind the loaded policies (or those in `ids`, with their parents), as loaded."""
        seen: dict[str, SourceFile] = {}
        wanted = set(self._policies) if ids is None else set(ids) & set(self._policies)
        for policy in (self._policies[pid] for pid in sorted(wanted)):
            for source in policy.checked.assembled.sources:
                seen.setdefault(source.name, source)
        return [seen[name] for name in sorted(seen)]

    def validate_text(self, text: str, name: str) -> CheckReport:
        """Check a policy document against this engine's policies (its possible parents)."""
        return self.validate_files({name: text})

    def validate_files(self, texts: Mapping[str, str]) -> CheckReport:
        """Check policy documents (a region's files, by name) against this engine's policies."""
        return validate_files(texts, registry=self.registry, base_sources=self.sources())

    def policy(self, policy_id: str) -> CompiledPolicy:
        try:
            return self._policies[policy_id]
        except KeyError:
            raise UnknownPolicyError(policy_id, self.ids) from None

    # ---- deciding: one route for a record ----
    def decide(self, policy_id: str, record: Any, as_of: dt.date | None = None, explain: bool = False,
               unknown_fields: str | None = None, *, plain: bool = False) -> Decision:
        """Decide one record; raises RecordError or EvaluationError for that record.

        `record` is a decoded JSON value, read by intake (`unknown_fields`: warn, error or ignore,
        overriding the policy's rule for fields it does not declare); with `plain` it is a record
        `read_plain` already gave. `as_of` defaults to the first day of the record's period."""
        decision = decide_record(self.policy(policy_id), record, as_of, explain, unknown_fields, plain)
        if self.registry.observe is not None:
            self._observe(policy_id, decision)
        return decision

    def decide_many(self, policy_id: str, records: Iterable[Any], as_of: dt.date | None = None,
                    explain: bool = False, unknown_fields: str | None = None, *,
                    plain: bool = False) -> Iterator[Decision | ErrorResult]:
        """Decide records in order, as `decide` does each; a bad record yields its ErrorResult and the
        others go on."""
        policy = self.policy(policy_id)
        for record in records:
            yield self.decided(policy, record, as_of, explain, unknown_fields, plain)

    def decided(self, policy: CompiledPolicy, record: Any, as_of: dt.date | None, explain: bool,
                unknown_fields: str | None, plain: bool) -> Decision | ErrorResult:
        """One record of `policy` decided as `decide` decides it, a bad record giving its ErrorResult
        (the step of `decide_many` and of `deciding.decide_each`)."""
        result = safely(policy, functools.partial(decide_record, policy), record, as_of, explain, unknown_fields, plain)
        if self.registry.observe is not None and isinstance(result, Decision):
            self._observe(policy.id, result)
        return result

    def read_plain(self, policy_id: str, raw: bytes) -> dict[str, Any] | None:
        """The record in the JSON text `raw`, read and checked in C, when it is plainly valid; None for
        anything else, which is decoded and given to `decide` the usual way."""
        return plain_record(self.policy(policy_id), raw)

    def _observe(self, policy_id: str, decision: Decision) -> None:
        try:
            self.registry.observe(policy_id=policy_id, decision=decision)
        except Exception as exc:  # an observer never changes or loses a decision
            logging.getLogger("kinerja_rules").warning("decision observer failed: %s: %s",
                                                        type(exc).__name__, exc)

    def evaluate_population(self, policy_id: str, records: Iterable[Any], groups: Mapping[str, Any] | None = None,
                            seats: Sequence[Any] | None = None, as_of: dt.date | None = None,
                            explain: bool | frozenset[int] = False, unknown_fields: str | None = None,
                            sorted_by_group: bool = False) -> Iterator[Decision | ErrorResult | GroupReport]:
        """Decide records as a population (the policy's kurva distribusi, assignment, group values):
        each record's Decision or ErrorResult in input order, then a GroupReport per group (and one for
        an assignment). `groups` maps each group's data key (the unit_kerja) to its data; `seats` lists
        the posts of an assignment; `explain` traces every decision, or those of the records at the
        positions given (from 0). Raises PopulationInputError for unusable group data or seats, and
        ValueError for a policy without a population stage. With `sorted_by_group` (input sorted by
        group, no assignment) one group is held in memory at a time."""
        results = run_population(self.policy(policy_id), records, groups, seats, as_of, explain, unknown_fields,
                                 sorted_by_group)
        return results if self.registry.observe is None else self._observed(policy_id, results)

    def _observed(self, policy_id: str, results: Iterator[Any]) -> Iterator[Any]:
        for result in results:
            if isinstance(result, Decision):
                self._observe(policy_id, result)
            yield result

    # ---- the names decide and decide_many had first: kept, so nothing that calls them breaks ----
    def evaluate(self, policy_id: str, record: Any, as_of: dt.date | None = None,
                 explain: bool = False, unknown_fields: str | None = None) -> Decision:
        """`decide`: one record; raises RecordError or EvaluationError for that record."""
        return self.decide(policy_id, record, as_of, explain, unknown_fields)

    def evaluate_plain(self, policy_id: str, clean: dict[str, Any], as_of: dt.date | None = None,
                       explain: bool = False) -> Decision:
        """`decide` of a record `read_plain` gave."""
        return self.decide(policy_id, clean, as_of, explain, plain=True)

    def evaluate_safely(self, policy_id: str, record: Any, as_of: dt.date | None = None,
                        explain: bool = False, unknown_fields: str | None = None) -> Decision | ErrorResult:
        """`decide_many` of one record: a bad record gives an ErrorResult instead of raising."""
        return self.decided(self.policy(policy_id), record, as_of, explain, unknown_fields, False)

    def evaluate_plain_safely(self, policy_id: str, clean: dict[str, Any], as_of: dt.date | None = None,
                              explain: bool = False) -> Decision | ErrorResult:
        """`evaluate_safely` of a record `read_plain` gave."""
        return self.decided(self.policy(policy_id), clean, as_of, explain, None, True)

    def evaluate_many(self, policy_id: str, records: Iterable[Any], as_of: dt.date | None = None,
                      explain: bool = False, unknown_fields: str | None = None) -> Iterator[Decision | ErrorResult]:
        """`decide_many`."""
        return self.decide_many(policy_id, records, as_of, explain, unknown_fields)
