"""The one way from policy files to compiled policies, in named stages, each timed:

    load (YAML, with positions) -> documents (msgspec structs) -> assemble (extends)
        -> check (types, names, tables) -> compile (CompiledPolicy, and its code)

Every entry point (`engine.check_paths`, `reload_paths`, `validate_files`, `Engine.for_policy`,
`Engine.from_groups`) makes a `Pipeline`, reads with `read` and builds with `build`; they differ
only in what they read and which policies they want.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules.assemble import assemble
from kinerja_rules.checker import check
from kinerja_rules.documents import EXTENDS_RE, PolicyFile, declared_id, read_policy_file, tests_only
from kinerja_rules.errors import Diagnostic, PolicyError, Span
from kinerja_rules.loader import MAX_FILE_BYTES, SourceFile, iter_policy_files, load_file, load_text
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.registry import BrokenPlugin, Registry

STAGES = ("load", "documents", "assemble", "check", "compile")
"""The stages, in the order a policy goes through them."""


class Timings:
    """Seconds spent in each stage by one run of the pipeline."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass(frozen=True)
class CheckReport:
    """The outcome of checking a set of policy files: policies, errors and warnings."""

    policies: Mapping[str, CompiledPolicy]
    errors: tuple[Diagnostic, ...]  # what keeps a policy out of service
    warnings: tuple[Diagnostic, ...]
    test_errors: tuple[Diagnostic, ...] = ()  # mistakes in test cases and fixtures: they fail `check`, not service
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds by stage (STAGES)
    acknowledged: tuple[Diagnostic, ...] = ()  # warnings a policy allows, with the reason as each one's hint

    @property
    def ok(self) -> bool:
        return not self.errors and not self.test_errors

    @property
    def problems(self) -> tuple[Diagnostic, ...]:
        """Every error, of policies and of their tests."""
        return self.errors + self.test_errors


@dataclass
class Reading:
    """What the load and documents stages made of a set of files."""

    files: list[PolicyFile] = field(default_factory=list)
    diags: list[Diagnostic] = field(default_factory=list)
    test_diags: list[Diagnostic] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # policies with a file that did not load
    seen: set[Path] = field(default_factory=set)
    library_ids: set[str] = field(default_factory=set)  # every policy the library folder holds, for suggestions
    defined: set[str] = field(default_factory=set)  # policies with a file that is more than test cases

    owners: dict[str, str] = field(default_factory=dict)  # file name -> the policy it declares
    parents: dict[str, str] = field(default_factory=dict)  # policy -> the policy it extends


class Pipeline:
    """One run of the stages over a set of files, with `registry`'s functions and indicators.

    `generate` compiles each policy's evaluation code in the compile stage; without it the code
    is generated when first needed (a check of the files decides nothing and skips it).
    """

    def __init__(self, registry: Registry, generate: bool = False) -> None:
        self.registry = registry
        self.generate = generate
        self.timings = Timings()

    # ---- load and documents ----
    def read(self, paths: Iterable[Path] = (), texts: Iterable[tuple[str, str]] = (),
             loaded: Iterable[SourceFile] = (), library: Path | None = None,
             seed: frozenset[str] = frozenset()) -> Reading:
        """Load the files under `paths` (each once), the `texts` (name, text) and the files already
        `loaded`, then from `library` the parents they extend and every file of the policies in `seed`."""
        reading = Reading()
        for source in loaded:
            self._add(reading, lambda source=source: source, None)
        for path in paths:
            if not path.exists():
                reading.diags.append(Diagnostic(code="E000", message=f"no such file or folder: {path}"))
                continue
            for file in iter_policy_files(path):
                self._add_path(reading, file)
        for name, text in texts:
            self._add(reading, lambda name=name, text=text: load_text(text, name), text, name)
        if library is not None and library.is_dir():
            self._add_parents(reading, library, seed)
        _one_folder_each(reading)
        return reading

    def _add(self, reading: Reading, load: Any, text: str | None, name: str = "") -> None:
        try:
            with self.timings.stage("load"):
                source = load()
        except PolicyError as exc:
            tests = text is not None and tests_only(text)
            (reading.test_diags if tests else reading.diags).extend(exc.diagnostics)
            declared = declared_id(text) if text is not None and not tests else None
            if declared is not None:
                reading.broken.add(declared)
                reading.owners[name] = declared
                if parent := EXTENDS_RE.search(text or ""):
                    reading.parents[declared] = parent.group(1)
            return
        with self.timings.stage("documents"):
            pf, problems = read_policy_file(source)
        tests = tests_only(source.text)
        (reading.test_diags if tests else reading.diags).extend(problems)
        if pf is None:
            if (declared := declared_id(source.text)) is not None:
                reading.owners[source.name] = declared
            return
        reading.files.append(pf)
        reading.owners[source.name] = pf.policy_id
        if pf.header.get("extends"):
            reading.parents[pf.policy_id] = str(pf.header["extends"])
        if not tests:
            reading.defined.add(pf.policy_id)

    def _add_path(self, reading: Reading, file: Path) -> None:
        resolved = file.resolve()
        if resolved in reading.seen:  # a folder and a file in it, or a region and its library: once
            return
        reading.seen.add(resolved)
        self._add(reading, lambda: load_file(file), self._peek(file), str(file))

    def _peek(self, file: Path) -> str | None:
        with self.timings.stage("load"):
            try:
                if file.stat().st_size > MAX_FILE_BYTES:
                    return None
                return file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None

    def _add_parents(self, reading: Reading, library: Path, seed: frozenset[str]) -> None:
        """Load, from the library folder, every file of every policy extended (its parents, and their
        fixtures, complete), and of the policies in `seed`, each file once."""
        index: dict[str, list[Path]] | None = None
        while True:
            wanted = ({str(pf.header["extends"]) for pf in reading.files if pf.header.get("extends")}
                      | {pf.policy_id for pf in reading.files if pf.policy_id not in reading.defined}
                      | seed) - reading.broken
            if not wanted or index is not None and not wanted & set(index):
                return
            if index is None:
                index = {}
                reading.library_ids |= {pf.policy_id for pf in reading.files}
                for file in iter_policy_files(library):
                    if file.resolve() in reading.seen:
                        continue
                    text = self._peek(file)
                    declared = declared_id(text) if text is not None else None
                    if declared is not None:
                        reading.library_ids.add(declared)
                        index.setdefault(declared, []).append(file)
            found = [file for pid in sorted(wanted) for file in index.pop(pid, [])]
            if not found:
                return
            for file in found:
                self._add_path(reading, file)

    # ---- assemble, check, compile ----
    def build(self, files: list[PolicyFile], only: set[str] | None = None, broken: Iterable[str] = (),
              known: Iterable[str] = ()) -> CheckReport:
        """Assemble, check and compile every policy in `files` (or only those in `only` and their parents).

        A policy with a file that did not load (`broken`) is not checked: its other files alone
        would only give follow-on errors. Test-case problems are reported apart (`test_errors`):
        they fail `check` and `test`, but never keep a policy out of service.
        """
        registry, stage = self.registry, self.timings.stage
        with stage("assemble"):
            assembled, diags = assemble(files, broken, known)
        warnings: list[Diagnostic] = [d for d in diags if d.severity == "warning"]
        acknowledged: list[Diagnostic] = []
        diags = [d for d in diags if d.severity != "warning"]
        test_diags: list[Diagnostic] = []
        compiled: dict[str, CompiledPolicy] = {}
        for pid, policy in assembled.items():
            if only is not None and pid not in only:
                continue
            with stage("check"):
                checked, problems = check(policy, dict(registry.functions), dict(registry.indicators))
            diags += problems
            if checked is not None:
                warnings += checked.warnings
                test_diags += checked.test_errors
                acknowledged += checked.acknowledged
                if not policy.flawed:
                    with stage("compile"):
                        compiled[pid] = CompiledPolicy(checked, dict(registry.plugins))
                        if self.generate:
                            _ = compiled[pid].code
        if registry.broken:
            diags = [_maybe_broken(d, registry.broken) for d in diags]
        return CheckReport(policies=compiled, errors=tuple(_unique(diags)), warnings=tuple(_unique(warnings)),
                           acknowledged=tuple(_unique(acknowledged)),
                           test_errors=tuple(_unique(test_diags)), timings=dict(self.timings.seconds))


def _one_folder_each(reading: Reading) -> None:
    """Leave out a policy whose files lie in two folders neither of which holds the other (a copied
    region folder, `plaju.bak/`, beside the region): which copy is meant cannot be told, so
    neither is served, with a diagnostic naming a file of each; the other policies go on."""
    folders: dict[str, dict[Path, str]] = {}
    for pf in reading.files:
        name = pf.source.name
        if tests_only(pf.source.text):
            continue  # test cases are tried against the policy wherever they lie
        folders.setdefault(pf.policy_id, {}).setdefault(Path(os.path.abspath(name)).parent, name)
    for pid, found in folders.items():
        outermost = sorted(d for d in found if not any(o != d and o in d.parents for o in found))
        if len(outermost) < 2:
            continue
        first = found[outermost[0]]
        for other in outermost[1:]:
            second = found[other]
            reading.diags.append(Diagnostic(
                code="E020", span=Span(file=second, line=1, column=1),
                message=f"policy {pid!r} is declared in two folders, {first} and {second}; it is left out until "
                        "one of them is removed"))
        reading.files = [pf for pf in reading.files if pf.policy_id != pid]
        reading.broken.add(pid)


def _maybe_broken(diag: Diagnostic, broken: tuple[BrokenPlugin, ...]) -> Diagnostic:
    """An unknown function or name, when a plugin was left out: say so, it may be the one that gives it."""
    if diag.code not in ("E105", "E110"):
        return diag
    names = ", ".join(f"{b.plugin!r}" for b in broken)
    return msgspec.structs.replace(diag, message=f"{diag.message} (plugin{'s' if len(broken) > 1 else ''} {names} "
                                                 "could not be loaded and may provide it: see `kinerja plugins`)")


def _unique(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        key = (d.code, d.message, str(d.span))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
