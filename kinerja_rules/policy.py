"""A compiled policy: immutable and hashed; what the evaluation layer decides records with.

It holds what compiling made (the evaluation code, the parameters by date, the digest, the
metadata a client reads); deciding a record (`evaluation.decide`), reading it
(`evaluation.intake`) and tracing it (`evaluation.tracing`) are done to it, not by it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import threading
import types as pytypes
from typing import Any

import msgspec

from kinerja_rules.boundary import checked_call, declared
from kinerja_rules.checker import CheckedPolicy, cite_text
from kinerja_rules.compiler import CompiledCode, compile_policy
from kinerja_rules.decision import PolicyRef
from kinerja_rules.documents import tests_only
from kinerja_rules.errors import FieldError, RecordError
from kinerja_rules.functions import period_start
from kinerja_rules.population import Limit
from kinerja_rules.schema import json_schema

SEMANTICS_VERSION = "0.1.0"
"""Hashed into every policy digest. Not the package version: raise it when what a compiled
policy decides changes for the same policy files (a stored decision's digest then no longer
names the code that would decide it now), and only then."""
_PERIOD_RE = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")


class CompiledPolicy:
    """A checked and compiled policy. Immutable; safe to share between threads and requests."""

    def __init__(self, checked: CheckedPolicy, plugin_versions: dict[str, str] | None = None) -> None:
        assembled = checked.assembled
        self.checked = checked
        self.plugin_versions = dict(plugin_versions or {})
        self.id = assembled.id
        self.title = assembled.title
        self.version = assembled.version
        self.extends = assembled.extends
        self.effective: dt.date = assembled.effective  # type: ignore[assignment]
        self.period = assembled.period
        inputs = dict(checked.input.type.fields)
        named = assembled.subject or tuple(name for name in ("nip", self.period) if name and name in inputs)
        self.subject: tuple[tuple[str, tuple[str, ...]], ...] = tuple((name, tuple(name.split("."))) for name in named)
        """The inputs that say whom a decision is for (`subject:`; nip and the period field by default)."""
        self.doc = assembled.doc
        self._code: CompiledCode | None = None  # compiled when first needed (`code`)
        self._compiling = threading.Lock()
        self.digest = _digest(checked, self.plugin_versions)
        self.ref = PolicyRef(id=self.id, version=self.version, digest=self.digest)
        self.unknown_fields: str = assembled.unknown_fields or "warn"
        self._period_cache: dict[str, dt.date] = {}
        self._param_cache: dict[dt.date, tuple[tuple[Any, ...], tuple[dt.date, ...]]] = {}
        self.param_pos = {name: i for i, name in enumerate(checked.params)}
        """Each parameter's position in what `params_for` gives."""
        self.indicators = tuple(checked.indicators.values())
        self.indicator_calls = [checked_call(spec.impl, declared(spec.returns), f"indicator {spec.name!r} of plugin "
                                             f"{spec.plugin!r}" + (f" {spec.version}" if spec.version else ""))
                                for spec in self.indicators]
        """Each indicator's plugin function, its return checked against its declared type."""
        self.plugin_code = {id(spec.impl.__code__): spec for spec in checked.functions.values()
                            if isinstance(spec.impl, pytypes.FunctionType) and spec.plugin != "builtins"}
        self.plugin_code.update({id(spec.impl.__code__): spec for spec in checked.indicators.values()  # type: ignore[misc]
                                 if isinstance(spec.impl, pytypes.FunctionType)})
        """Plugin functions by their code object: a fault's traceback names the plugin it passed through."""
        self.population = checked.population
        """The population stage, when the policy decides over groups (`Engine.evaluate_population`)."""
        self.alone: None | msgspec.UnsetType = None if checked.population is not None else msgspec.UNSET
        """A decision's `population` when its record is decided alone: null for a policy with a stage."""
        self.calls_plugins = bool(self.indicators) or any(spec.plugin != "builtins"
                                                           for spec in checked.functions.values())
        """Whether deciding a record runs plugin code, whose time the server bounds in a process of its own."""
        self.derived: dict[Any, Any] = {}
        """What the evaluation layer builds from this policy on first use and keeps with it (its record
        validators, its trace plan), by name; never a decision's state."""

    def __repr__(self) -> str:
        return f"<CompiledPolicy {self.id} {self.version} {self.digest[:12]}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as what was checked: unpickling compiles it again (the compile stage only; nothing
        is parsed or checked), its digest recomputed to the same value."""
        return CompiledPolicy, (self.checked, self.plugin_versions)

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

    def expressions(self) -> dict[str, dict[str, str]]:
        """The policy text a trace leaves out: each definition's and output's expression and each
        rule's and check's condition, by name (a trace names them; the policy's digest pins their text)."""
        checked = self.checked
        return {"definitions": {name: d.text for name, d in checked.definitions.items()},
                "outputs": {name: o.text for name, o in checked.outputs.items() if o.text},
                "rules": {name: r.text for name, r in checked.rules.items()},
                **({"checks": {name: c.text for name, c in checked.checks.items()}} if checked.checks else {})}

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
            "checks": {name: {"require": c.text, "message": c.message,
                              "at": c.path("*" if c.over is not None else None),
                              **about("", c.cite)}
                       for name, c in checked.checks.items()},
            "references": refs,
            **({"population": self._population_metadata(mode)} if self.population is not None else {}),
            "acknowledged": [{"code": d.code, "message": d.message, "reason": d.hint}
                             for d in checked.acknowledged],
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
            "quota": None if quota is None else _quota_metadata(quota, refs),
            **({"quotas": {q.name: _quota_metadata(q, refs) for q in stage.quotas}} if len(stage.quotas) > 1
               else {}),
            "assignment": None if assignment is None else {
                "eligible": assignment.eligible_text, "score": assignment.score_text, "method": assignment.method,
                "shortlist": assignment.shortlist,
                **({"cite": cite_text(assignment.cite, refs)} if assignment.cite else {})},
            "group_definitions": {name: {"type": str(v.type), **({"doc": v.doc} if v.doc else {})}
                                  for name, v in stage.values.items()},
        }


def _written(value: Any) -> Any:
    """A parameter's value as a client reads it: a quota's limits as the policy writes them."""
    if isinstance(value, tuple) and value and isinstance(value[0], Limit):
        return [limit.written() for limit in value]
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), tuple):
        return {key: _written(v) for key, v in value.items()}
    return value


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


def _quota_metadata(quota: Any, refs: dict[str, Any]) -> dict[str, Any]:
    return {"of": quota.of_text, "limits": quota.key_text, "mode": quota.mode_text, "rounding": quota.rounding,
            **({"cite": cite_text(quota.cite, refs)} if quota.cite else {})}


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

