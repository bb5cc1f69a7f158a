"""Deciding one clean record with a compiled policy, and what a fault in it becomes.

`decide` is the one way a record is decided alone (the engine's `decide`, `decide_many` and
every alias of them); a population run (`population_run`) decides its members with the same
indicator values, fault descriptions and traces. A fault of one record (a division by zero on
odd data, a plugin raising) becomes an EvaluationError naming the definition and the input
paths it reads, and, through `safely`, that record's ErrorResult: never the other records'.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from kinerja_rules.boundary import PluginReturnError
from kinerja_rules.compiler import TableMiss
from kinerja_rules.decision import Decision, ErrorInfo, ErrorResult
from kinerja_rules.errors import EvaluationError, FieldError, RecordError
from kinerja_rules.evaluation.intake import check_record
from kinerja_rules.evaluation.tracing import build_trace, input_paths
from kinerja_rules.numbers import EVAL_CONTEXT, PRECISION
from kinerja_rules.policy import CompiledPolicy

_log = logging.getLogger("kinerja_rules")
_ALONE = {"applied": False, "why": "the record was decided alone; each `population` value is null and the "
                                   "policy's value for a record alone was used"}


def decide(policy: CompiledPolicy, clean: dict[str, Any], warnings: list[FieldError], as_of: dt.date | None,
           explain: bool) -> Decision:
    """Decide a clean record (from `intake`); raises RecordError (no as_of to be had) or EvaluationError."""
    when = as_of or policy.as_of_for(clean)
    params, dates = policy.params_for(when, "as_of" if as_of else policy.period or "as_of")
    indicators = indicator_values(policy, clean)
    saved = decimal.getcontext()
    decimal.setcontext(EVAL_CONTEXT)  # never the caller's context; plugins get their own
    try:
        checks(policy, clean, params, when)
        if not explain:
            return Decision(subject=subject_of(policy, clean), policy=policy.ref, as_of=when,
                            outputs=policy.code.run(clean, params, indicators, when), warnings=warnings,
                            population=policy.alone)
        hits: list[Any] = []
        outputs, defs = policy.code.run_traced(clean, params, indicators, when, hits)
    except RecordError:
        raise
    except Exception as exc:  # any fault of one record becomes an error for that record
        raise fault(policy, exc) from None
    finally:
        decimal.setcontext(saved)
    trace = build_trace(policy, outputs, defs, hits, params, dates, when, indicators)
    if policy.population is not None:
        trace["population"] = dict(_ALONE)
    return Decision(subject=subject_of(policy, clean), policy=policy.ref, as_of=when, outputs=outputs,
                    warnings=warnings, population=policy.alone, trace=trace)


def subject_of(policy: CompiledPolicy, record: Any, errors: Sequence[FieldError] = ()) -> dict[str, Any] | None:
    """Whom `record` is for: the value of each of the policy's subject inputs (None when absent); None
    when the record is no object, or one of them is not a single value or is among `errors`."""
    if type(record) is not dict:
        return None
    out: dict[str, Any] = {}
    for name, parts in policy.subject:
        if errors and any(e.path == name or e.path.startswith((name + ".", name + "[")) for e in errors):
            return None
        value: Any = record
        for part in parts:
            value = value.get(part) if type(value) is dict else None
        if isinstance(value, (dict, list)) or (type(value) is str and len(value) > MAX_SUBJECT_CHARS):
            return None
        out[name] = value
    return out


MAX_SUBJECT_CHARS = 200  # an identity value longer than this names no one (a record error says why)


def checks(policy: CompiledPolicy, clean: dict[str, Any], params: tuple[Any, ...], when: dt.date) -> None:
    """The policy's `checks:` on a clean record, in the evaluation context: RecordError naming every
    field (or list item) that fails one. A fault inside a check's condition is the caller's to describe."""
    run = policy.code.checks
    if run is not None:
        failed = run(clean, params, when)
        if failed:
            raise RecordError([FieldError(path=path, message=message, check=name) for path, message, name in failed])


def decide_record(policy: CompiledPolicy, record: Any, as_of: dt.date | None = None, explain: bool = False,
                  unknown_fields: str | None = None, plain: bool = False) -> Decision:
    """A record as it came in (a decoded JSON value), through intake, then decided. `plain`: the
    record is one `intake.plain_record` already read, clean and without warnings."""
    if plain:
        return decide(policy, record, [], as_of, explain)
    clean, warnings = check_record(policy, record, unknown_fields)
    return decide(policy, clean, warnings, as_of, explain)


def safely(policy: CompiledPolicy, decide_one: Callable[..., Decision], record: Any, *args: Any
           ) -> Decision | ErrorResult:
    """`decide_one(record, *args)`, a bad record or a fault becoming that record's ErrorResult."""
    try:
        return decide_one(record, *args)
    except (RecordError, EvaluationError) as exc:
        return error_result(policy, exc, record)
    except Exception as exc:  # a fault of ours never takes the other records down with this one
        _log.exception("internal error deciding a record of %s", policy.id)
        return ErrorResult(subject=subject_of(policy, record), policy=policy.ref, error=ErrorInfo(
            kind="internal", message=f"internal error ({type(exc).__name__}); the other records are unaffected"))


def error_result(policy: CompiledPolicy, exc: RecordError | EvaluationError, record: Any = None) -> ErrorResult:
    """The result of `record` when it could not be decided (its subject, when its identity is valid)."""
    if isinstance(exc, RecordError):
        return ErrorResult(subject=subject_of(policy, record, exc.errors), policy=policy.ref, error=ErrorInfo(
            kind="record", message="invalid record", fields=list(exc.errors)))
    return ErrorResult(subject=subject_of(policy, record), policy=policy.ref, error=ErrorInfo(
        kind="evaluation", message=exc.detail, where=exc.where, paths=list(exc.paths)))


def indicator_values(policy: CompiledPolicy, clean: dict[str, Any]) -> tuple[Any, ...]:
    """The value of each plugin indicator the policy reads, from the record."""
    if not policy.indicators:
        return ()
    out = []
    for spec, call in zip(policy.indicators, policy.indicator_calls, strict=True):
        value: Any = clean
        for part in spec.source.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        try:
            out.append(call(value))
        except Exception as exc:
            raise EvaluationError(_plugin_describe(exc), where=f"indicator {spec.name!r} of plugin {spec.plugin!r}",
                                  paths=[spec.source]) from None
    return tuple(out)


def fault(policy: CompiledPolicy, exc: Exception) -> EvaluationError:
    """What went wrong in a record's evaluation: the definition, output or rule it happened in (and
    the plugin function, if one raised), and the input paths that site reads."""
    tb = exc.__traceback__
    site = None
    plugin = None
    while tb is not None:
        code = tb.tb_frame.f_code
        generated = policy.code.site(code.co_filename, tb.tb_lineno)
        if generated is not None or code.co_filename.startswith("<policy "):
            site = generated or site
        elif site is not None and plugin is None:
            plugin = policy.plugin_code.get(id(code))
        tb = tb.tb_next
    message = _plugin_describe(exc) if plugin is not None else _describe(exc)
    where = f"{site.kind} {site.name!r}" if site is not None else "evaluation"
    if plugin is not None:
        where += f" (function {plugin.name!r} of plugin {plugin.plugin!r})"
    paths = sorted(_site_paths(policy).get((site.kind, site.name), ())) if site is not None else []
    return EvaluationError(message, where=where, paths=paths)


def _site_paths(policy: CompiledPolicy) -> dict[tuple[str, str], set[str]]:
    """The input paths each definition, output and rule reads, built on the policy's first fault."""
    found = policy.derived.get("site_paths")
    if found is None:
        checked = policy.checked
        out: dict[tuple[str, str], set[str]] = {}
        for name, d in checked.definitions.items():
            out[("definition", name)] = input_paths(d.expr, checked.notes)
        for name, o in checked.outputs.items():
            if o.expr is not None:
                out[("output", name)] = input_paths(o.expr, checked.notes)
        for name, r in checked.rules.items():
            out[("rule", name)] = input_paths(r.when, checked.notes)
        for name, c in checked.checks.items():
            loop = {c.var: f"{c.over_path}[*]"} if c.over is not None else None
            out[("check", name)] = input_paths(c.require, checked.notes, loop)
        found = policy.derived.setdefault("site_paths", out)
    return found  # type: ignore[no-any-return]


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


def in_language(error: ErrorInfo, lang: str, policy: CompiledPolicy | None) -> ErrorInfo:
    """A record's error as people read it in `lang`: its message and each field's from the
    catalogue, a check's from the policy's own words. Records keep English messages everywhere
    else (clients and policy tests match on them); only what is shown is translated."""
    from kinerja_rules.catalogue import DEFAULT_LANGUAGE, own_messages, translate_field, translate_record_message

    if lang == DEFAULT_LANGUAGE:
        return error
    own = own_messages(policy.checked.words, lang) if policy is not None else None
    return msgspec.structs.replace(error, message=translate_record_message(error.message, lang, own),
                                   fields=[translate_field(f, lang, own) for f in error.fields])

