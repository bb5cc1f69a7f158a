"""Tracing: how a decision was reached, and the two ways it is shown.

The plan (`TracePlan`) holds what is the same for every record of a policy, built once per
policy; `build_trace` puts one record's facts to it (the JSON trace a decision carries with
explain on); `explain_text` renders a trace as text a policy author reads (`--explain-text`,
`kinerja test` failures). A population run adds its own `population` entry (`population_run`).
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules import nodes as n
from kinerja_rules.catalogue import say
from kinerja_rules.checker import CheckedPolicy
from kinerja_rules.decision import Decision, to_json
from kinerja_rules.numbers import Rational, approximate, rational_decimal
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.typecheck import Annotations
from kinerja_rules.types import Kind

TRACE_ITEMS = 100  # table rows (per table) and keyed values (per parameter) shown in one record's trace
_PLANS = threading.Lock()


def plan_of(policy: CompiledPolicy) -> TracePlan:
    """The policy's trace plan, built on its first explained record."""
    plan = policy.derived.get("trace_plan")
    if plan is None:
        with _PLANS:
            plan = policy.derived.setdefault("trace_plan", TracePlan(policy.checked))
    return plan  # type: ignore[no-any-return]


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


class TracePlan:
    """The parts of a trace that are the same for every record, built once per policy: what each
    definition, output and rule uses (definitions, parameters, tables, indicators, by name), the
    input paths it reads, its citation and the plugin functions behind its value. The expressions
    themselves are the policy's, named by its digest (`CompiledPolicy.expressions`)."""

    def __init__(self, checked: CheckedPolicy) -> None:
        self.row_notes = {(name, row.name): row.note for name, table in checked.tables.items()
                          for row in table.rows if row.note}
        self.table_inputs = {name: tuple(i for i, _ in table.inputs) for name, table in checked.tables.items()}
        self.keyed = tuple(p.key is not None for p in checked.params.values())
        self.param_pos = {name: i for i, name in enumerate(checked.params)}
        self.days: dict[tuple[dt.date, ...], list[tuple[str, str, int, bool]]] = {}  # see `parameters_shown`

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


def build_trace(policy: CompiledPolicy, outputs: dict[str, Any], defs: tuple[Any, ...],  # noqa: C901
                hits: list[Any], params: tuple[Any, ...], dates: tuple[dt.date, ...], as_of: dt.date,
                indicators: tuple[Any, ...]) -> dict[str, Any]:
    """How each output was reached, each fact once: the definitions, parameters, table hits and
    rules that outputs and definitions name in their `uses`."""
    plan = plan_of(policy)
    definitions = {name: {**static, "value": value} if type(value) is not Rational else
                   {**static, **rational_entry(value)}
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
            note = plan.row_notes.get((hit[1], hit[2]))
            entry["hits"].append({"row": hit[2],
                                  "inputs": dict(zip(plan.table_inputs[hit[1]], hit[3], strict=True)),
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
    for day, name, i, is_keyed in parameters_shown(plan, dates):
        if not is_keyed:
            parameters.setdefault(day, {})[name] = params[i]
        elif name in keyed:
            parameters.setdefault(day, {})[name] = {
                "values": keyed[name], **({"omitted": omitted[name]} if name in omitted else {})}
    for name, entry in tables.items():
        if name in omitted:
            entry["omitted"] = omitted[name]
    result: dict[str, Any] = {"as_of": as_of}
    result["outputs"] = {name: {**static, "value": _at(outputs, path)} for name, static, path in plan.output_paths}
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


def parameters_shown(plan: TracePlan, dates: tuple[dt.date, ...]) -> list[tuple[str, str, int, bool]]:
    """(the day it took effect, name, position, keyed) of each parameter a trace shows, by day then in
    the policy's order; the same for every record whose parameters took effect on the same days."""
    found = plan.days.get(dates)
    if found is None:
        used = plan.used_params
        found = sorted(((dates[i].isoformat(), name, i, plan.keyed[i]) for name, i in plan.param_pos.items()
                        if name in used), key=lambda entry: entry[0])
        if len(plan.days) > 4096:
            plan.days.clear()
        plan.days[dates] = found
    return found


def rational_entry(value: Any) -> dict[str, Any]:
    """A rational in a trace: as a decimal, with the exact fraction beside it when the decimal is cut."""
    shown = approximate(value)
    return {"value": shown} if rational_decimal(shown) == value else {"value": shown, "exact": str(value)}


def _at(outputs: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = outputs
    for part in path:
        value = value[part]
    return value


def _population_story(story: dict[str, Any] | None, lang: str = "en") -> list[str]:
    """The population part of a trace as lines: the rank in its group, what the quota did, the seat."""
    if not story:
        return []
    if story.get("applied") is False:
        return [say("explain.alone", lang)]
    group = ", ".join(f"{k} {_json(v)}" for k, v in story["group"].items())
    out = [say("explain.rank", lang, rank=story["rank"], size=story["size"], group=group,
               order=", ".join(story["order"]))]
    quotas = [("quota", story["quota"])] if story.get("quota") is not None else []
    for name, quota in [*quotas, *story.get("quotas", {}).items()]:
        out.append(say("explain.quota", lang, name=name, of=quota["of"], mode=quota["mode"],
                       limits="; ".join(quota["limits"])))
        out += [say("explain.moved", lang, line=line) for line in quota.get("moved", ())]
        if "usulan" in quota:
            out.append(say("explain.usulan", lang, usulan=quota["usulan"],
                           why=f": {quota['why']}" if "why" in quota else ""))
        fixed = quota.get("penetapan")
        if fixed:
            out.append(say("explain.penetapan", lang, nomor=fixed["nomor"], tanggal=fixed["tanggal"],
                           oleh=fixed["ditetapkan_oleh"], predikat=fixed["predikat"],
                           alasan=f" ({fixed['alasan']})" if "alasan" in fixed else ""))
        out += [say("explain.not_met", lang, line=line) for line in quota.get("violations", ())]
        out.append(say("explain.after", lang, of=quota["of"], before=quota["before"], after=quota["after"],
                       what=say("explain.the_quota", lang) if name == "quota" else name))
    seat = story.get("assignment")
    if seat is not None:
        against = ", ".join(f"{e['member']} ({_json(e['score'])})" for e in seat.get("against", ()))
        got = (say("explain.seat", lang, seat=seat["seat"], score=_json(seat["score"])) if seat["seat"] is not None
               else say("explain.no_seat", lang))
        out.append(say("explain.assignment", lang, method=seat["method"], got=got,
                       against=say("explain.against", lang, others=against) if against else "",
                       seats=", ".join(seat["eligible_for"]) or say("explain.none", lang)))
    return out


def explain_text(decision: Decision, only: list[str] | None = None, policy: CompiledPolicy | None = None,  # noqa: C901
                 lang: str = "en") -> str:
    """A decision trace as text a policy author can read: each output with everything it was
    reached through (definitions, table hits, parameters, rules, plugin functions, inputs read).
    With the `policy` that made it, the expressions and the cited references are written out too;
    its words are the catalogue's in `lang`."""
    trace = msgspec.json.Decoder(float_hook=Decimal).decode(to_json(decision))["trace"]
    texts = policy.expressions() if policy is not None else {}
    cite = policy.cite_text if policy is not None else str
    defs, tables, rules = trace.get("definitions", {}), trace.get("tables", {}), trace.get("rules", {})
    indicators = trace.get("indicators", {})
    params: dict[str, tuple[str, Any]] = {name: (since, value) for since, group in trace.get("parameters", {}).items()
                                         for name, value in group.items()}

    def cited(entry: dict[str, Any]) -> str:
        return f"   [{cite(entry['cite'])}]" if entry.get("cite") else ""

    def version(entry: dict[str, Any]) -> str:
        return f" {entry['version']}" if entry.get("version") else ""

    def plugins(entry: dict[str, Any], out: list[str]) -> None:
        for f in entry.get("plugins", ()):
            out.append(say("explain.function", lang, function=f["function"], plugin=f["plugin"], version=version(f),
                           cited=cited(f)))

    out = [say("explain.as_of", lang, date=trace["as_of"]), *_population_story(trace.get("population"), lang)]
    for name, entry in trace["outputs"].items():
        if only is not None and name not in only:
            continue
        out.append(f"\n{name} = {_json(entry['value'])}")
        expr = texts.get("outputs", {}).get(name)
        if expr:
            out.append(say("explain.from", lang, expr=_one_line(expr)))
        if entry.get("cite"):
            out.append(say("explain.cites", lang, cite=cite(entry["cite"])))
        plugins(entry, out)
        reached = _reached(entry, defs, tables, rules, indicators, params)
        reads = set(entry.get("reads", ()))
        for kind, used in reached:
            if kind == "definition":
                d = defs[used]
                exact = say("explain.exactly", lang, value=d["exact"]) if "exact" in d else ""
                expr = texts.get("definitions", {}).get(used)
                out.append(f"  · {used} = {_json(d['value'])}{exact}" + (f"   ← {_one_line(expr)}" if expr else "")
                           + cited(d))
                plugins(d, out)
                reads |= set(d.get("reads", ()))
            elif kind == "table":
                t = tables[used]
                for hit in t["hits"]:
                    args = ", ".join(f"{k}={_json(v)}" for k, v in hit["inputs"].items())
                    note = f" ({hit['note']})" if hit.get("note") else ""
                    out.append(say("explain.table", lang, name=used, args=args, row=hit["row"],
                                   output=_json(hit["output"]), note=note, cited=cited(t)))
                if t.get("omitted"):
                    out.append(say("explain.omitted", lang, count=t["omitted"], name=used))
            elif kind == "parameter":
                since, value = params[used]
                if isinstance(value, dict):
                    for pair in value["values"]:
                        out.append(say("explain.keyed", lang, name=used, key=_json(pair["key"]),
                                       value=_json(pair["value"]), since=since))
                    if value.get("omitted"):
                        out.append(say("explain.omitted", lang, count=value["omitted"], name=used))
                else:
                    out.append(say("explain.parameter", lang, name=used, value=_json(value), since=since))
            elif kind == "indicator":
                i = indicators[used]
                out.append(say("explain.indicator", lang, name=used, value=_json(i["value"]), source=i["source"],
                               plugin=i["plugin"], version=version(i), cited=cited(i)))
                reads.add(i["source"])
        for rule_name in entry.get("rules", ()):
            r = rules[rule_name]
            when = texts.get("rules", {}).get(rule_name)
            out.append(say("explain.rule", lang, name=rule_name,
                           mark=say("explain.fired" if r["fired"] else "explain.not_fired", lang),
                           when=f": {_one_line(when)}" if when else "", adds=_json(r["adds"].get(name, [])),
                           reason=r["reason"], cited=cited(r)))
            reads |= set(r.get("reads", ()))
        if reads:
            out.append(say("explain.reads", lang, paths=", ".join(sorted(reads))))
    return "\n".join(out)


def _reached(entry: dict[str, Any], defs: dict[str, Any], tables: dict[str, Any], rules: dict[str, Any],
             indicators: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
    """Everything an output's value was reached through, each once, dependencies first (a table
    this record did not hit, or a keyed parameter it did not look up, is not shown)."""
    order: list[tuple[str, str]] = []
    seen: set[str] = set()
    pending = [entry, *(rules[r] for r in entry.get("rules", ()))]

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name in defs:
            for used in defs[name].get("uses", ()):
                visit(used)
            order.append(("definition", name))
        elif name in tables:
            for used in tables[name].get("uses", ()):
                visit(used)
            order.append(("table", name))
        elif name in indicators:
            order.append(("indicator", name))
        elif name in params:
            order.append(("parameter", name))

    for item in pending:
        for used in item.get("uses", ()):
            visit(used)
    return order


_TEXT_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):  # as the decision's JSON writes it, never Python's repr
        return _TEXT_ENCODER.encode(value).decode()
    return str(value)
