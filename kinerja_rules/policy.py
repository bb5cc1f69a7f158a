"""A compiled policy: immutable, hashed, and able to evaluate records."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import logging
import re
import threading
import types as pytypes
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from kinerja_rules import nodes as n
from kinerja_rules.boundary import PluginReturnError, checked_call, declared
from kinerja_rules.checker import CheckedPolicy, cite_text
from kinerja_rules.compiler import CompiledCode, TableMiss, compile_policy
from kinerja_rules.decision import Decision, ErrorInfo, ErrorResult, PolicyRef
from kinerja_rules.documents import tests_only
from kinerja_rules.errors import EvaluationError, FieldError, RecordError
from kinerja_rules.fastcheck import build_fast_validator, build_typed_decoder
from kinerja_rules.functions import period_start
from kinerja_rules.numbers import EVAL_CONTEXT, PRECISION, Rational, approximate, rational_decimal
from kinerja_rules.population import Limit
from kinerja_rules.schema import build_validator, json_schema, judge_unknown
from kinerja_rules.typecheck import Annotations
from kinerja_rules.types import Kind

_log = logging.getLogger("kinerja_rules")

SEMANTICS_VERSION = "0.1.0"
"""Hashed into every policy digest. Not the package version: raise it when what a compiled
policy decides changes for the same policy files (a stored decision's digest then no longer
names the code that would decide it now), and only then."""
TRACE_ITEMS = 100  # table rows (per table) and keyed values (per parameter) shown in one record's trace
_PERIOD_RE = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")


def input_paths(expr: n.Expr, notes: Annotations, loop: dict[str, str] | None = None) -> set[str]:  # noqa: C901
    """The record paths an expression reads (`skp.indikator[*].target`)."""
    scope: dict[str, str] = dict(loop or {})
    found: set[str] = set()

    def path(node: n.Expr) -> str | None:
        if isinstance(node, n.Name):
            res = notes.names.get(id(node))
            if res is None:
                return None
            if res[0] == "input":
                return str(res[1])
            if res[0] == "var" and res[1] in scope:
                return scope[res[1]]
            return None
        if isinstance(node, n.Attr):
            base = path(node.obj)
            if base is None:
                return None
            kind = notes.types.get(id(node.obj))
            return f"{base}[*].{node.name}" if kind is not None and kind.kind == Kind.LIST else f"{base}.{node.name}"
        return None

    def walk(node: n.Expr) -> None:
        nonlocal scope
        p = path(node)
        if p is not None:
            found.add(p)
            return
        if isinstance(node, n.Aggregate):
            walk(node.source)
            src = path(node.source)
            saved = scope
            scope = {**scope, node.var: f"{src}[*]"} if src else scope
            walk(node.elem)
            if node.where is not None:
                walk(node.where)
            scope = saved
            return
        for child in n.children(node):
            walk(child)

    walk(expr)
    return {p for p in found if p}


class CompiledPolicy:
    """A checked and compiled policy. Immutable; safe to share between threads and requests."""

    def __init__(self, checked: CheckedPolicy, plugin_versions: dict[str, str] | None = None) -> None:
        assembled = checked.assembled
        self.checked = checked
        self.id = assembled.id
        self.title = assembled.title
        self.version = assembled.version
        self.extends = assembled.extends
        self.effective: dt.date = assembled.effective  # type: ignore[assignment]
        self.period = assembled.period
        self.doc = assembled.doc
        self._code: CompiledCode | None = None  # compiled when first needed (`code`)
        self._compiling = threading.Lock()
        self.digest = _digest(checked, plugin_versions or {})
        self.ref = PolicyRef(id=self.id, version=self.version, digest=self.digest)
        self.unknown_fields: str = assembled.unknown_fields or "warn"
        self._validate = build_validator(checked.input)
        self._fast: dict[bool, Callable[[Any], dict[str, Any]]] = {}  # by strictness, built when first used
        self._typed: Callable[[bytes], dict[str, Any]] | None = None  # see plain_record
        self._typed_built = False
        self._period_cache: dict[str, dt.date] = {}
        self._param_cache: dict[dt.date, tuple[tuple[Any, ...], tuple[dt.date, ...]]] = {}
        self._indicators = tuple(checked.indicators.values())
        self._trace_plan = _TracePlan(checked)
        self._keyed = tuple(p.key is not None for p in checked.params.values())
        self._param_pos = {name: i for i, name in enumerate(checked.params)}
        self._trace_days: dict[tuple[dt.date, ...], list[tuple[str, str, int, bool]]] = {}
        self._table_inputs = {name: tuple(i for i, _ in table.inputs) for name, table in checked.tables.items()}
        self._row_notes = {(name, row.name): row.note for name, table in checked.tables.items()
                           for row in table.rows if row.note}
        self._site_paths = self._build_site_paths()
        self._indicator_calls = [checked_call(spec.impl, declared(spec.returns), f"indicator {spec.name!r} of plugin "
                                              f"{spec.plugin!r}" + (f" {spec.version}" if spec.version else ""))
                                 for spec in self._indicators]
        self._plugin_code = {id(spec.impl.__code__): spec for spec in checked.functions.values()
                             if isinstance(spec.impl, pytypes.FunctionType) and spec.plugin != "builtins"}
        self._plugin_code.update({id(spec.impl.__code__): spec for spec in checked.indicators.values()  # type: ignore[misc]
                                  if isinstance(spec.impl, pytypes.FunctionType)})
        self.population = checked.population
        """The population stage, when the policy decides over groups (`evaluate_population`)."""
        self._alone: None | msgspec.UnsetType = None if checked.population is not None else msgspec.UNSET
        self.calls_plugins = bool(self._indicators) or any(spec.plugin != "builtins"
                                                            for spec in checked.functions.values())
        """Whether deciding a record runs plugin code, whose time the server bounds in a process of its own."""

    def __repr__(self) -> str:
        return f"<CompiledPolicy {self.id} {self.version} {self.digest[:12]}>"

    @property
    def code(self) -> CompiledCode:
        """The policy's evaluation functions, compiled on first use: a check of the policy files, which
        decides nothing, never compiles them."""
        code = self._code
        if code is None:
            with self._compiling:
                code = self._code
                if code is None:
                    code = self._code = compile_policy(self.checked)
        return code

    # ---- evaluation ----
    def validate(self, record: Any, unknown_fields: str | None = None) -> dict[str, Any]:
        """Check a record against the input schema; returns it normalised or raises RecordError.

        `unknown_fields` (warn, error or ignore) overrides the policy's rule for keys it does not declare."""
        return self.check_record(record, unknown_fields)[0]

    def fast_validator(self, strict: bool = True) -> Callable[[Any], dict[str, Any]]:
        """The generated fast path of `check_record` (see `fastcheck`), built on first use: a check of
        the policy files, which decides no record, never builds it."""
        found = self._fast.get(strict)
        if found is None:
            found = self._fast[strict] = build_fast_validator(self.checked.input, strict=strict)
        return found

    def check_record(self, record: Any, unknown_fields: str | None = None) -> tuple[dict[str, Any], list[FieldError]]:
        """The record normalised, with a warning for each key the policy does not declare; raises
        RecordError for a bad value or, by the `unknown_fields` rule, an unknown key."""
        mode = unknown_fields or self.unknown_fields
        strict = mode != "ignore"
        try:
            return (self._fast.get(strict) or self.fast_validator(strict))(record), []
        except Exception:  # not plainly valid: the full validator names every problem
            pass
        errors: list[FieldError] = []
        if not isinstance(record, dict):
            raise RecordError([FieldError(path="", message="a record must be a JSON object")])
        clean = self._validate(record, "", errors)
        if not errors:
            return clean, []
        errors, warnings = judge_unknown(errors, mode)
        if errors:
            raise RecordError(errors)
        return clean, warnings

    def as_of_for(self, clean: dict[str, Any]) -> dt.date:
        period = self.period
        if period is None:
            raise RecordError([FieldError(path="as_of", message="this policy has no 'period' field; give as_of")])
        value = clean.get(period)
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str):
            raise RecordError([FieldError(path=period, message=f"must be a period YYYY-MM, not {value!r}")])
        cached = self._period_cache.get(value)
        if cached is not None:
            return cached
        match = _PERIOD_RE.match(value)
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise RecordError([FieldError(path=period, message=f"must be a period YYYY-MM, not {value!r}")])
        try:
            start = period_start(value)
        except ValueError:  # "0000-01": no such year
            raise RecordError([FieldError(path=period, message=f"must be a period YYYY-MM, not {value!r}")]) from None
        if len(self._period_cache) < 4096:
            self._period_cache[value] = start
        return start

    def params_for(self, as_of: dt.date, source: str = "as_of") -> tuple[tuple[Any, ...], tuple[dt.date, ...]]:
        """The value of every parameter in force on `as_of`, with the date each took effect;
        `source` names the field `as_of` came from, for the error when the policy is not yet in force."""
        cached = self._param_cache.get(as_of)
        if cached is not None:
            return cached
        if as_of < self.effective:
            raise RecordError([FieldError(path=source, message=f"policy {self.id!r} is not in force on {as_of}; "
                                          f"it takes effect {self.effective}")])
        values, dates = [], []
        for param in self.checked.params.values():
            chosen = param.dated[0]
            for pair in param.dated:
                if pair[0] <= as_of:
                    chosen = pair
            dates.append(chosen[0])
            values.append(chosen[1])
        result = (tuple(values), tuple(dates))
        if len(self._param_cache) > 4096:
            self._param_cache.clear()
        self._param_cache[as_of] = result
        return result

    def evaluate(self, record: Any, as_of: dt.date | None = None, explain: bool = False,
                 unknown_fields: str | None = None) -> Decision:
        """Evaluate one record; raises RecordError (bad input) or EvaluationError (a fault).
        `unknown_fields` overrides the policy's rule for keys it does not declare."""
        clean, warnings = self.check_record(record, unknown_fields)
        return self._decide(clean, warnings, as_of, explain)

    def plain_record(self, raw: bytes) -> dict[str, Any] | None:
        """The record in the JSON text `raw` normalised, when it is plainly valid (no unknown or repeated
        key, every value as declared), read and checked by msgspec in C; None for anything else, which
        the caller decodes and checks the usual way (whose messages name every problem)."""
        if not self._typed_built:
            self._typed, self._typed_built = build_typed_decoder(self.checked.input), True
        decode = self._typed
        if decode is None:
            return None
        try:
            return decode(raw)
        except Exception:  # not plainly valid
            return None

    def evaluate_plain(self, clean: dict[str, Any], as_of: dt.date | None = None,
                       explain: bool = False) -> Decision:
        """Evaluate a record `plain_record` gave; raises as `evaluate` does."""
        return self._decide(clean, [], as_of, explain)

    def _decide(self, clean: dict[str, Any], warnings: list[FieldError], as_of: dt.date | None,
                explain: bool) -> Decision:
        when = as_of or self.as_of_for(clean)
        params, dates = self.params_for(when, "as_of" if as_of else self.period or "as_of")
        indicators = self._indicator_values(clean)
        saved = decimal.getcontext()
        decimal.setcontext(EVAL_CONTEXT)  # never the caller's context; plugins get their own
        try:
            if not explain:
                return Decision(policy=self.ref, as_of=when, outputs=self.code.run(clean, params, indicators, when),
                                warnings=warnings, population=self._alone)
            hits: list[Any] = []
            outputs, defs = self.code.run_traced(clean, params, indicators, when, hits)
        except Exception as exc:  # any fault of one record becomes an error for that record
            raise self._fault(exc) from None
        finally:
            decimal.setcontext(saved)
        trace = self._trace(outputs, defs, hits, params, dates, when, indicators)
        if self.population is not None:
            trace["population"] = {"applied": False, "why": "the record was decided alone; each `population` "
                                   "value is null and the policy's value for a record alone was used"}
        return Decision(policy=self.ref, as_of=when, outputs=outputs, warnings=warnings, population=self._alone,
                        trace=trace)

    def evaluate_many(self, records: Iterable[Any], as_of: dt.date | None = None,
                      explain: bool = False, unknown_fields: str | None = None) -> Iterator[Decision | ErrorResult]:
        """Evaluate records in order; a bad record yields an ErrorResult and the rest go on."""
        for record in records:
            yield self.evaluate_safely(record, as_of, explain, unknown_fields)

    def error_result(self, exc: RecordError | EvaluationError) -> ErrorResult:
        """The result of a record that could not be decided."""
        if isinstance(exc, RecordError):
            return ErrorResult(policy=self.ref, error=ErrorInfo(kind="record", message="invalid record",
                                                                 fields=list(exc.errors)))
        return ErrorResult(policy=self.ref, error=ErrorInfo(kind="evaluation", message=exc.detail,
                                                             where=exc.where, paths=list(exc.paths)))

    def evaluate_safely(self, record: Any, as_of: dt.date | None = None,
                        explain: bool = False, unknown_fields: str | None = None) -> Decision | ErrorResult:
        return self._safely(self.evaluate, record, as_of, explain, unknown_fields)

    def evaluate_plain_safely(self, clean: dict[str, Any], as_of: dt.date | None = None,
                              explain: bool = False) -> Decision | ErrorResult:
        """`evaluate_plain`, a fault becoming the record's ErrorResult (as `evaluate_safely`)."""
        return self._safely(self.evaluate_plain, clean, as_of, explain)

    def _safely(self, decide: Callable[..., Decision], *args: Any) -> Decision | ErrorResult:
        try:
            return decide(*args)
        except (RecordError, EvaluationError) as exc:
            return self.error_result(exc)
        except Exception as exc:  # a fault of ours never takes the other records down with this one
            _log.exception("internal error deciding a record of %s", self.id)
            return ErrorResult(policy=self.ref, error=ErrorInfo(
                kind="internal", message=f"internal error ({type(exc).__name__}); the other records are unaffected"))

    def _indicator_values(self, clean: dict[str, Any]) -> tuple[Any, ...]:
        if not self._indicators:
            return ()
        out = []
        for spec, call in zip(self._indicators, self._indicator_calls, strict=True):
            value: Any = clean
            for part in spec.source.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            try:
                out.append(call(value))
            except Exception as exc:
                raise EvaluationError(_plugin_describe(exc),
                                      where=f"indicator {spec.name!r} of plugin {spec.plugin!r}",
                                      paths=[spec.source]) from None
        return tuple(out)

    def _fault(self, exc: Exception) -> EvaluationError:
        tb = exc.__traceback__
        site = None
        plugin = None
        while tb is not None:
            code = tb.tb_frame.f_code
            generated = self.code.site(code.co_filename, tb.tb_lineno)
            if generated is not None or code.co_filename.startswith("<policy "):
                site = generated or site
            elif site is not None and plugin is None:
                plugin = self._plugin_code.get(id(code))
            tb = tb.tb_next
        message = _plugin_describe(exc) if plugin is not None else _describe(exc)
        where = f"{site.kind} {site.name!r}" if site is not None else "evaluation"
        if plugin is not None:
            where += f" (function {plugin.name!r} of plugin {plugin.plugin!r})"
        paths = sorted(self._site_paths.get((site.kind, site.name), ())) if site is not None else []
        return EvaluationError(message, where=where, paths=paths)

    # ---- explanation ----
    def _build_site_paths(self) -> dict[tuple[str, str], set[str]]:
        checked = self.checked
        out: dict[tuple[str, str], set[str]] = {}
        for name, d in checked.definitions.items():
            out[("definition", name)] = input_paths(d.expr, checked.notes)
        for name, o in checked.outputs.items():
            if o.expr is not None:
                out[("output", name)] = input_paths(o.expr, checked.notes)
        for name, r in checked.rules.items():
            out[("rule", name)] = input_paths(r.when, checked.notes)
        return out

    def _trace(self, outputs: dict[str, Any], defs: tuple[Any, ...], hits: list[Any], params: tuple[Any, ...],  # noqa: C901
               dates: tuple[dt.date, ...], as_of: dt.date, indicators: tuple[Any, ...]) -> dict[str, Any]:
        """How each output was reached, each fact once: the definitions, parameters, table hits and
        rules that outputs and definitions name in their `uses`."""
        plan = self._trace_plan
        definitions = {name: {**static, "value": value} if type(value) is not Rational else
                       {**static, **_rational_entry(value)}
                       for (name, static), value in zip(plan.definitions.items(), defs, strict=True)}
        tables: dict[str, dict[str, Any]] = {}
        keyed: dict[str, list[dict[str, Any]]] = {}
        omitted: dict[str, int] = {}  # table hits and keyed values past TRACE_ITEMS
        fired: set[str] = set()
        for hit in hits:
            if hit[0] == "table":
                entry = tables.get(hit[1])
                if entry is None:
                    entry = tables[hit[1]] = {**plan.tables[hit[1]], "hits": []}
                if len(entry["hits"]) >= TRACE_ITEMS:  # a lookup per item of a long list: the trace counts the rest
                    omitted[hit[1]] = omitted.get(hit[1], 0) + 1
                    continue
                note = self._row_notes.get((hit[1], hit[2]))
                entry["hits"].append({"row": hit[2],
                                      "inputs": dict(zip(self._table_inputs[hit[1]], hit[3], strict=True)),
                                      "output": hit[4], **({"note": note} if note else {})})
            elif hit[0] == "param":
                pairs = keyed.setdefault(hit[1], [])
                if not any(p["key"] == hit[2] for p in pairs):
                    if len(pairs) >= TRACE_ITEMS:
                        omitted[hit[1]] = omitted.get(hit[1], 0) + 1
                        continue
                    pairs.append({"key": hit[2], "value": hit[3]})
            else:
                fired.add(hit[1])
        parameters: dict[str, dict[str, Any]] = {}  # by the date each took effect: name -> value
        for day, name, i, is_keyed in self._trace_parameters(dates):
            if not is_keyed:
                parameters.setdefault(day, {})[name] = params[i]
            elif name in keyed:
                parameters.setdefault(day, {})[name] = {
                    "values": keyed[name], **({"omitted": omitted[name]} if name in omitted else {})}
        for name, entry in tables.items():
            if name in omitted:
                entry["omitted"] = omitted[name]
        result: dict[str, Any] = {"as_of": as_of}
        result["outputs"] = {name: {**static, "value": _get(outputs, path)} for name, static, path in plan.output_paths}
        result["definitions"] = definitions
        result["parameters"] = parameters
        if tables:
            result["tables"] = tables
        if plan.rules:
            result["rules"] = {name: {**static, "fired": name in fired} for name, static in plan.rules.items()}
        if plan.indicators:
            result["indicators"] = {name: {**static, "value": value}
                                    for (name, static), value in zip(plan.indicators.items(), indicators, strict=True)}
        return result

    def _trace_parameters(self, dates: tuple[dt.date, ...]) -> list[tuple[str, str, int, bool]]:
        """(the day it took effect, name, position, keyed) of each parameter a trace shows, by day then in
        the policy's order; the same for every record whose parameters took effect on the same days."""
        found = self._trace_days.get(dates)
        if found is None:
            used = self._trace_plan.used_params
            found = sorted(((dates[i].isoformat(), name, i, self._keyed[i]) for name, i in self._param_pos.items()
                            if name in used), key=lambda entry: entry[0])
            if len(self._trace_days) > 4096:
                self._trace_days.clear()
            self._trace_days[dates] = found
        return found

    def expressions(self) -> dict[str, dict[str, str]]:
        """The policy text a trace leaves out: each definition's and output's expression and each
        rule's condition, by name (a trace names them; the policy's digest pins their text)."""
        checked = self.checked
        return {"definitions": {name: d.text for name, d in checked.definitions.items()},
                "outputs": {name: o.text for name, o in checked.outputs.items() if o.text},
                "rules": {name: r.text for name, r in checked.rules.items()}}

    def cite_text(self, cite: str) -> str:
        """A citation as a reader sees it: the reference's title and any pinpoint."""
        return cite_text(cite, self.checked.references)

    # ---- metadata ----
    def describe(self) -> dict[str, Any]:
        """Identity and effective dates, as the server lists policies."""
        dates = sorted({self.effective, *(d for p in self.checked.params.values() for d, _ in p.dated)})
        return {"id": self.id, "title": self.title, "version": self.version, "digest": self.digest,
                "extends": self.extends, "effective": self.effective,
                "effective_dates": [d for d in dates if d >= self.effective]}

    def metadata(self, unknown_fields: str | None = None) -> dict[str, Any]:
        """Everything a client needs to call this policy: the identity, the input record's
        JSON Schema, the outputs, the parameters with their dated values, and the references.
        `unknown_fields` is the rule in force when the server overrides the policy's own."""
        checked = self.checked
        mode = unknown_fields or self.unknown_fields
        refs = checked.references

        def about(doc: str, cite: str) -> dict[str, str]:
            return {k: v for k, v in (("doc", doc), ("cite", cite_text(cite, refs) if cite else "")) if v}

        return {
            **self.describe(),
            "doc": self.doc,
            "unknown_fields": mode,
            "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                             "title": f"{self.id} record", "x-unknown-fields": mode,
                             **json_schema(checked.input, closed=mode == "error")},
            "outputs": {name: {"type": str(o.type), **about(o.doc, o.cite),
                               **({"rules": list(o.rules)} if o.rules else {})}
                        for name, o in checked.outputs.items()},
            "parameters": {name: {"type": str(p.type), **({"key": str(p.key)} if p.key is not None else {}),
                                  "values": [{"effective": when, "value": _written(value)} for when, value in p.dated],
                                  **about(p.doc, p.cite)}
                           for name, p in checked.params.items()},
            "references": refs,
            **({"population": self._population_metadata(mode)} if self.population is not None else {}),
        }

    def _population_metadata(self, mode: str) -> dict[str, Any]:
        """What a population run of this policy needs beside its records, and what it does."""
        stage = self.population
        assert stage is not None
        refs = self.checked.references
        quota, assignment = stage.quota, stage.assignment
        return {
            "group_by": [text for text, _ in stage.by],
            "member": stage.member_text,
            "order": [f"{o.text} {'desc' if o.descending else 'asc'}" for o in stage.order]
                     + [f"{stage.member_text} asc"],
            "groups_keyed_by": stage.by[stage.data_key][0],
            "group_data_schema": {"title": f"{self.id} group data", **json_schema(stage.data, closed=mode == "error")},
            "seat_schema": None if stage.seats is None else {"title": f"{self.id} seat",
                                                             **json_schema(stage.seats, closed=mode == "error")},
            "quota": None if quota is None else {
                "of": quota.of_text, "limits": quota.key_text, "mode": quota.mode_text, "rounding": quota.rounding,
                **({"cite": cite_text(quota.cite, refs)} if quota.cite else {})},
            "assignment": None if assignment is None else {
                "eligible": assignment.eligible_text, "score": assignment.score_text, "method": assignment.method,
                "shortlist": assignment.shortlist,
                **({"cite": cite_text(assignment.cite, refs)} if assignment.cite else {})},
            "group_definitions": {name: {"type": str(v.type), **({"doc": v.doc} if v.doc else {})}
                                  for name, v in stage.values.items()},
        }


class _TracePlan:
    """The parts of a trace that are the same for every record, built once per policy: what each
    definition, output and rule uses (definitions, parameters, tables, indicators, by name), the
    input paths it reads, its citation and the plugin functions behind its value. The expressions
    themselves are the policy's, named by its digest (`CompiledPolicy.expressions`)."""

    def __init__(self, checked: CheckedPolicy) -> None:
        def cite(text: str) -> dict[str, str]:
            return {"cite": text} if text else {}

        def uses(deps: frozenset[tuple[str, str]]) -> list[str]:
            return sorted(name for kind, name in deps if kind in ("def", "param", "table", "indicator"))

        def plugins(deps: frozenset[tuple[str, str]]) -> dict[str, Any]:
            found = [checked.functions[name] for kind, name in sorted(deps)
                     if kind == "func" and name in checked.functions and checked.functions[name].plugin != "builtins"]
            return {"plugins": [{"function": f.name, "plugin": f.plugin, "version": f.version,
                                 **({"cite": f.cite} if f.cite else {})} for f in found]} if found else {}

        def about(cited_as: str, deps: frozenset[tuple[str, str]], expr: n.Expr | None) -> dict[str, Any]:
            found = input_paths(expr, checked.notes) if expr is not None else set()
            reads = sorted(p for p in found if not any(q.startswith((f"{p}.", f"{p}[")) for q in found))
            return {**cite(cited_as), **({"uses": uses(deps)} if uses(deps) else {}),
                    **({"reads": reads} if reads else {}), **plugins(deps)}

        self.definitions = {name: about(d.cite, d.deps, d.expr) for name, d in checked.definitions.items()}
        self.outputs = {name: {**about(o.cite, o.deps, o.expr), **({"rules": list(o.rules)} if o.rules else {})}
                        for name, o in checked.outputs.items()}
        self.output_paths = [(name, static, tuple(name.split("."))) for name, static in self.outputs.items()]
        self.rules = {name: {**about(r.cite, r.deps, r.when), "reason": r.reason,
                             "adds": {out: [code for o, code in r.then if o == out]
                                      for out in dict.fromkeys(o for o, _ in r.then)}}
                      for name, r in checked.rules.items()}
        self.tables = {name: {**cite(t.cite), **({"uses": uses(t.deps)} if uses(t.deps) else {})}
                       for name, t in checked.tables.items()}
        self.indicators = {name: {"source": i.source, "plugin": i.plugin, "version": i.version, **cite(i.cite)}
                           for name, i in checked.indicators.items()}
        self.used_params = {name for deps in [d.deps for d in checked.definitions.values()]
                            + [o.deps for o in checked.outputs.values()] + [r.deps for r in checked.rules.values()]
                            + [t.deps for t in checked.tables.values()] for kind, name in deps if kind == "param"}


def _rational_entry(value: Any) -> dict[str, Any]:
    """A rational in a trace: as a decimal, with the exact fraction beside it when the decimal is cut."""
    shown = approximate(value)
    return {"value": shown} if rational_decimal(shown) == value else {"value": shown, "exact": str(value)}


def _written(value: Any) -> Any:
    """A parameter's value as a client reads it: a quota's limits as the policy writes them."""
    if isinstance(value, tuple) and value and isinstance(value[0], Limit):
        return [limit.written() for limit in value]
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), tuple):
        return {key: _written(v) for key, v in value.items()}
    return value


def _get(outputs: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = outputs
    for part in path:
        value = value[part]
    return value


def _describe(exc: Exception) -> str:
    if isinstance(exc, (ZeroDivisionError, decimal.DivisionByZero)):
        return "division by zero"
    if isinstance(exc, decimal.InvalidOperation):
        return "invalid arithmetic (such as 0 divided by 0)"
    if isinstance(exc, decimal.Overflow):
        return "a number grew too large (overflow)"
    if isinstance(exc, decimal.Inexact):
        return (f"a result needs more than {PRECISION} significant digits to stay exact; "
                "round it, or check the record for absurdly long numbers")
    if isinstance(exc, decimal.DecimalException):
        return f"arithmetic failed ({type(exc).__name__})"
    if isinstance(exc, (TableMiss, PluginReturnError)):
        return str(exc)
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, RecursionError):
        return "evaluation nested too deeply"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


def _plugin_describe(exc: Exception) -> str:
    """A plugin's fault as a sentence: its own message, or what a bare exception means."""
    if isinstance(exc, PluginReturnError):
        return str(exc)
    if isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else None
        return f"the plugin looked up {key!r}, which is not there (KeyError)"
    return _describe(exc)


def _digest(checked: CheckedPolicy, plugin_versions: dict[str, str]) -> str:
    """What decides: the policy files (not files of test cases only), SEMANTICS_VERSION, and
    each plugin used, by version and by the code of its functions (a changed plugin changes
    the digest even when its version string does not)."""
    h = hashlib.sha256()
    h.update(f"kinerja-rules {SEMANTICS_VERSION}\n".encode())
    for source in sorted(checked.assembled.sources, key=lambda s: s.text):
        if tests_only(source.text):
            continue  # test cases never change a decision
        h.update(b"\0file\0")
        h.update(source.text.encode("utf-8"))
    specs: list[Any] = [*(f for f in checked.functions.values() if f.plugin != "builtins"),
                        *checked.indicators.values()]
    for plugin, version in sorted({(spec.plugin, spec.version) for spec in specs}):
        h.update(f"\0plugin\0{plugin}=={plugin_versions.get(plugin, version)}".encode())
    for path in sorted({_code_file(spec.impl) for spec in specs} - {""}):
        h.update(b"\0code\0" + _file_digest(path).encode())
    return h.hexdigest()


def plugins_used(checked: CheckedPolicy) -> dict[str, dict[str, str]]:
    """Each plugin a policy uses: its version and a digest of the code of the functions and
    indicators used (what the policy's digest took in), so a replay can say which one changed."""
    specs: list[Any] = [*(f for f in checked.functions.values() if f.plugin != "builtins"),
                        *checked.indicators.values()]
    out: dict[str, dict[str, str]] = {}
    for plugin in sorted({spec.plugin for spec in specs}):
        mine = [spec for spec in specs if spec.plugin == plugin]
        code = hashlib.sha256()
        for path in sorted({_code_file(spec.impl) for spec in mine} - {""}):
            code.update(_file_digest(path).encode())
        out[plugin] = {"version": mine[0].version or "", "code": code.hexdigest()}
    return out


def _code_file(fn: Any) -> str:
    code = getattr(getattr(fn, "__wrapped__", fn), "__code__", None)
    return code.co_filename if code is not None else ""


@functools.cache
def _file_digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return path  # code without a file (made at run time): its place stands in

