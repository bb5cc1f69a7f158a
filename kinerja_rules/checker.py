"""Check an assembled policy completely before anything is compiled.

Every problem becomes a Diagnostic with its `file:line:col`; the checker keeps going
after an error (a failed definition gets the type `any`, so one mistake does not
cascade), and returns all diagnostics at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import msgspec

from kinerja_rules import types as t
from kinerja_rules.assemble import Assembled
from kinerja_rules.checking.cases import check_cases, set_path
from kinerja_rules.checking.changes import Changeable, check_changes
from kinerja_rules.checking.declarations import (
    check_cite,
    check_header,
    check_indicator_source,
    check_names,
    check_parameters,
    check_references,
    check_types,
    cite_text,
    inputs_field,
)
from kinerja_rules.checking.exactness import check_exactness, point_at_extensions
from kinerja_rules.checking.expressions import (
    check_checks,
    check_definition,
    check_outputs,
    check_rules,
    check_table,
    table_signature,
)
from kinerja_rules.checking.model import Case, Check, CheckedPolicy, Context, Definition, Output, Param, Rule
from kinerja_rules.checking.population import (
    Declared,
    Population,
    check_population,
    declare,
    param_scope_types,
    quota_parameters,
)
from kinerja_rules.checking.words import Texts, check_words, input_paths
from kinerja_rules.documents import FieldSpec, Item
from kinerja_rules.errors import Diagnostic
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.schema import Field
from kinerja_rules.tables import Table
from kinerja_rules.typecheck import Annotations, Scope, TableSig, TypeProblem
from kinerja_rules.types import Type

__all__ = ["STAGES", "Case", "CheckedPolicy", "Definition", "Output", "Param", "Rule", "check", "cite_text", "set_path"]


class _Work:
    """What the stages of `check` build, each from what the stages before it built."""

    def __init__(self, policy: Assembled, functions: dict[str, FunctionSpec],
                 indicators: dict[str, IndicatorSpec]) -> None:
        self.ctx = Context(policy)
        self.policy = policy
        self.items = policy.items
        self.functions = functions
        self.indicator_specs = indicators
        self.notes = Annotations()
        self.references: dict[str, dict[str, str]] = {}
        self.named: dict[str, Field] = {}
        self.root = Field(type=t.ANY, spec=FieldSpec(type="record"))
        self.input_types: dict[str, Type] = {}
        self.params: dict[str, Param] = {}
        self.indicator_types: dict[str, Type] = {}
        self.table_specs: dict[str, tuple[Item, tuple[tuple[str, Type], ...], Type, Type]] = {}
        self.sigs: dict[str, TableSig] = {}
        self.scope: Scope | None = None
        self.definitions: dict[str, Definition] = {}
        self.tables: dict[str, Table] = {}
        self.outputs: dict[str, Output] = {}
        self.rules: dict[str, Rule] = {}
        self.checks: dict[str, Check] = {}
        self.words: Texts = {}
        self.changeable: dict[str, Changeable] = {}
        self.cases: dict[str, Case] = {}
        self.declared = Declared()
        self.population: Population | None = None


def _stage_references(w: _Work) -> None:
    w.references = check_references(w.ctx, w.items["references"])
    for section in ("parameters", "definitions", "tables", "outputs", "rules", "checks", "group_definitions",
                    "population"):
        for item in w.items[section].values():
            check_cite(w.ctx, item, w.references)


def _stage_types(w: _Work) -> None:
    w.named = check_types(w.ctx, w.items["types"])


def _stage_inputs(w: _Work) -> None:
    w.root = inputs_field(w.ctx, w.items["inputs"], w.named)
    w.input_types = dict(w.root.type.fields)
    check_header(w.ctx, w.policy, w.input_types)


def _stage_parameters(w: _Work) -> None:
    w.params = check_parameters(w.ctx, w.items["parameters"], w.named, w.policy)


def _stage_population_declarations(w: _Work) -> None:
    w.declared = declare(w.ctx, w.items, w.named, w.params)


def _stage_names(w: _Work) -> None:
    w.indicator_types = {name: t.parse_type(spec.returns, {}) for name, spec in w.indicator_specs.items()}
    sections = {s: set(w.items[s]) for s in ("parameters", "definitions", "tables")}
    check_names(w.ctx, w.policy, w.input_types, sections, w.functions, w.indicator_types)


def _stage_table_signatures(w: _Work) -> None:
    """Tables need their signatures before the definitions that call them are checked."""
    for name, item in w.items["tables"].items():
        sig = table_signature(w.ctx, item, w.named)
        if sig is not None:
            w.table_specs[name] = (item, *sig)
            w.sigs[name] = TableSig(sig[0], sig[2])
        else:  # a broken table is still known, so its calls are not reported as unknown functions
            w.sigs[name] = TableSig((), t.ANY, broken=True)


def _stage_definitions(w: _Work) -> None:
    """Check each definition once, on demand, in dependency order; a cycle is named where it closes."""
    ctx, def_items = w.ctx, w.items["definitions"]
    def_types: dict[str, Type] = {}
    state: dict[str, str] = {}
    stack: list[str] = []

    def definition(name: str) -> Type | None:
        if name not in def_items:
            return None
        if state.get(name) == "done":
            return def_types[name]
        if state.get(name) == "active":
            cycle = stack[stack.index(name):] + [name]
            raise TypeProblem(f"definitions depend on each other in a cycle: {' -> '.join(cycle)}",
                              (1, 1, 1, 1), "E120")
        state[name] = "active"
        stack.append(name)
        try:
            def_types[name] = check_definition(ctx, def_items[name], scope, w.notes, w.named, w.definitions)
        finally:
            stack.pop()
            state[name] = "done"
            def_types.setdefault(name, t.ANY)  # a failed definition must not cascade
        return def_types[name]

    scope = w.scope = Scope(w.input_types, param_scope_types(w.params), w.sigs, w.functions, w.indicator_types,
                            definition, lambda: list(def_items), w.declared.type, quota_parameters(w.params))
    for name in def_items:
        try:
            definition(name)
        except TypeProblem as exc:  # a cycle reported at the definition that closes it
            ctx.problem(exc, def_items[name].source, (*def_items[name].path, "expr"))


def _stage_tables(w: _Work) -> None:
    assert w.scope is not None
    for name, (item, inputs, output, returns) in w.table_specs.items():
        table = check_table(w.ctx, item, w.policy.rows.get(name, []), inputs, output, returns, w.scope, w.notes)
        if table is not None:
            w.tables[name] = table


def _stage_outputs_and_rules(w: _Work) -> None:
    assert w.scope is not None
    outputs = w.outputs = check_outputs(w.ctx, w.items["outputs"], w.scope, w.notes, w.named)
    w.rules = check_rules(w.ctx, w.items["rules"], w.scope, w.notes, outputs)
    for rule in w.rules.values():
        for out_name, _ in rule.then:
            if out_name in outputs:
                o = outputs[out_name]
                outputs[out_name] = dataclasses.replace(o, rules=o.rules + (rule.name,))
    for o in outputs.values():
        if o.expr is None and not o.rules:
            w.ctx.error("E131", f"output {o.name!r} has no 'expr' and no rule adds to it",
                        w.ctx.at(w.items["outputs"][o.name]))


def _stage_words(w: _Work) -> None:
    known = {*w.outputs, *input_paths(w.input_types.items()), *w.params, *w.definitions}
    enums = {name: f.type.values for name, f in w.named.items() if f.type.kind == t.Kind.ENUM}
    w.words = check_words(w.ctx, w.items, known, enums)
    w.changeable = check_changes(w.ctx, w.items["dapat_diubah"], w.input_types)


def _stage_checks(w: _Work) -> None:
    assert w.scope is not None
    w.checks = check_checks(w.ctx, w.items["checks"], w.scope, w.notes, w.input_types)


def _stage_population(w: _Work) -> None:
    assert w.scope is not None
    w.population = check_population(w.ctx, w.items, w.declared, w.scope, w.notes, w.definitions, w.tables, w.params)


def _stage_exactness(w: _Work) -> None:
    check_exactness(w.ctx, w.items, w.root, w.params, w.tables, w.definitions, w.outputs, w.notes)


def _stage_tests(w: _Work) -> None:
    w.cases = check_cases(w.ctx, w.items["fixtures"], w.items["tests"], w.outputs)


def _stage_plugins_used(w: _Work) -> None:
    """Keep only the functions and indicators the policy uses; an indicator used needs its input."""
    used: set[tuple[str, str]] = set()
    for group in (w.definitions.values(), w.outputs.values(), w.rules.values(), w.tables.values(),
                  w.checks.values()):
        for thing in group:
            used |= thing.deps
    if w.population is not None:  # the population stage's own expressions (group definitions, score, …)
        used |= w.population.deps
    w.functions = {name: spec for name, spec in w.functions.items() if ("func", name) in used}
    w.indicator_specs = {name: spec for name, spec in w.indicator_specs.items() if ("indicator", name) in used}
    for spec in w.indicator_specs.values():
        check_indicator_source(w.ctx, w.policy, spec, w.input_types)


def _stage_extensions(w: _Work) -> None:
    point_at_extensions(w.ctx, w.policy)


STAGES: tuple[tuple[str, Callable[[_Work], None]], ...] = (
    ("references and citations", _stage_references),
    ("types", _stage_types),
    ("inputs and header", _stage_inputs),
    ("parameters", _stage_parameters),
    ("population declarations", _stage_population_declarations),
    ("names", _stage_names),
    ("table signatures", _stage_table_signatures),
    ("definitions", _stage_definitions),
    ("tables", _stage_tables),
    ("outputs and rules", _stage_outputs_and_rules),
    ("words for people", _stage_words),
    ("checks", _stage_checks),
    ("population", _stage_population),
    ("exactness", _stage_exactness),
    ("tests", _stage_tests),
    ("plugins used", _stage_plugins_used),
    ("extensions", _stage_extensions),
)
"""The checker's passes, in order; each reads what the ones before it built (a new check goes in one of them,
or in a new stage at the point where what it reads exists)."""


def check(policy: Assembled, functions: dict[str, FunctionSpec],
          indicators: dict[str, IndicatorSpec] | None = None) -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Check one assembled policy through every stage; returns it checked, or None and its diagnostics."""
    w = _Work(policy, functions, dict(indicators or {}))
    for _, stage in STAGES:
        stage(w)
    ctx = w.ctx
    if ctx.diags:
        return None, ctx.diags + ctx.test_diags
    warnings, acknowledged = _acknowledged(ctx.warnings, policy.allow)
    checked = CheckedPolicy(
        assembled=policy, input=w.root, params=w.params, tables=w.tables, definitions=w.definitions,
        outputs=w.outputs, rules=w.rules, references=w.references, functions=w.functions,
        indicators=w.indicator_specs, cases=w.cases, population=w.population, notes=w.notes, warnings=warnings,
        test_errors=ctx.test_diags, acknowledged=acknowledged, checks=w.checks, words=w.words,
        changeable=w.changeable)
    return checked, []


def _acknowledged(warnings: list[Diagnostic], allow: tuple[tuple[str, str | None, str], ...]
                  ) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """The warnings `allow` does not name, and those it does (each with its reason as the hint)."""
    kept: list[Diagnostic] = []
    allowed: list[Diagnostic] = []
    for d in warnings:
        reason = next((why for code, output, why in allow
                       if code == d.code and (output is None or f"output {output!r}" in d.message)), None)
        if reason is None:
            kept.append(d)
        else:
            allowed.append(msgspec.structs.replace(d, severity="acknowledged", hint=reason))
    return kept, allowed
