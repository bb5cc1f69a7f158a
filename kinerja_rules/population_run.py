"""A population run: records grouped, the group stage decided, then each record finished.

1. Each record is checked and decided up to what the population stage needs (its group key,
   member key, place in the ordering, the quota's category and the definitions the stage reads).
2. Each group gets its data, its group definitions, the quota; an assignment places the
   candidates of the whole run on the seats.
3. Each record is decided to the end with `population` (rank, size, final category, seat, group
   values) and comes out in input order, with a report per group.

A bad record, a group without its data, or a fault in a group's values is an error of the records
it concerns; the other groups are decided. Nothing depends on the order records arrive in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import gc
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kinerja_rules import calibration
from kinerja_rules import nodes as n
from kinerja_rules import population as pop_math
from kinerja_rules import types as t
from kinerja_rules.checking.population import Population
from kinerja_rules.decision import Decision, ErrorInfo, ErrorResult
from kinerja_rules.errors import EvaluationError, FieldError, RecordError
from kinerja_rules.evaluation.decide import checks, error_result, fault, indicator_values, subject_of
from kinerja_rules.evaluation.intake import check_record
from kinerja_rules.evaluation.tracing import build_trace
from kinerja_rules.numbers import EVAL_CONTEXT, approximate, rational
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.schema import build_validator, judge_unknown
from kinerja_rules.types import Kind

MAX_GROUPS = 100_000
"""Entries in the group data of one run."""
MAX_SEATS = 2_000
MAX_PAIRS = 5_000_000
"""Candidate and seat pairs an assignment may weigh in one run."""
MAX_OPTIMAL_WORK = 50_000_000
"""seats² × (candidates + seats): the work of an optimal assignment, bounded so a run ends in seconds."""


class PopulationInputError(RecordError):
    """The group data or the seats sent beside the records are unusable as a whole."""


class PenetapanError(PopulationInputError):
    """A unit's penetapan does not stand (a member not covered, a departure without an alasan):
    the run is refused before any record is decided."""


class GroupReport(msgspec.Struct, kw_only=True):
    """What the population stage did to one group: counts per category before and after the quota,
    every limit not met, who moved and why; for an assignment (over the whole run), who got each seat."""

    group: dict[str, Any] | None
    size: int
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    violations: list[str]
    moved: list[dict[str, Any]]
    as_of: dt.date | None = None
    mode: str | msgspec.UnsetType = msgspec.UNSET
    limits: list[str] | msgspec.UnsetType = msgspec.UNSET
    infeasible: list[str] | msgspec.UnsetType = msgspec.UNSET
    values: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    assignments: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    shortlists: dict[str, list[dict[str, Any]]] | msgspec.UnsetType = msgspec.UNSET
    warnings: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    error: str | msgspec.UnsetType = msgspec.UNSET
    violation_details: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    """Each violation as data, in the same order: the limit (`categories`, `bound`, `percent` with
    `rounding` or `count`, `size`, `needed`) and the `actual` head count; or the `seat` left empty."""
    quotas: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    """With several quotas: each one's report, by name, in the order applied (the first's is also the
    report's own `mode`, `limits`, counts, `violations` and `moved`)."""
    usulan: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    """Under `propose`: each member, best first, with its rank, `predikat_awal`, the `usulan` (the
    fewest changes that meet the curve) and `why` where they differ."""
    penetapan: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    """The unit's penetapan: its nomor, tanggal, ditetapkan_oleh, and each departure from the
    usulan with its alasan (`counts_after` and `violations` are then the penetapan's)."""


@dataclass(slots=True)
class _Member:
    position: int
    clean: dict[str, Any]
    warnings: list[FieldError]
    as_of: dt.date
    params: tuple[Any, ...]
    dates: tuple[dt.date, ...]
    indicators: tuple[Any, ...]
    decided: tuple[Any, ...]
    group: tuple[Any, ...]
    key: Any
    order: tuple[Any, ...]
    category: Any  # the first quota's `of` (None without a quota)
    ofs: tuple[Any, ...]  # each quota's `of`, in the order applied
    given: dict[str, Any] = field(default_factory=dict)  # what `population` holds for it
    shown: dict[str, Any] = field(default_factory=dict)  # its group, by the grouping expressions
    story: dict[str, Any] = field(default_factory=dict)  # the population part of its trace (with explain)


class _Desc:
    """A value that sorts the other way (for `desc` on text and dates)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash(self.value)


def _order_transforms(policy: CompiledPolicy, stage: Population) -> list[Callable[[Any], Any]]:
    """For each ordering item, a function from its value to a key where smaller is better."""
    out: list[Callable[[Any], Any]] = []
    for item in stage.order:
        kind = policy.checked.notes.types[id(item.expr)]
        if kind.kind == Kind.ENUM:
            sign = -1 if item.descending else 1
            out.append({v: sign * i for i, v in enumerate(kind.values)}.__getitem__)
        elif kind.kind == Kind.BOOLEAN:
            out.append(operator.not_ if item.descending else bool)
        elif kind.numeric and t.repeats(kind):  # an exact rational or a decimal: compared as rationals
            out.append(_negated_rational if item.descending else rational)
        elif kind.numeric:  # ints and decimals compare as they are
            out.append(operator.neg if item.descending else _same)
        else:
            out.append(_Desc if item.descending else _same)
    return out


def _same(value: Any) -> Any:
    return value


def _negated_rational(value: Any) -> Any:
    return -rational(value)


def _shown(value: Any) -> Any:
    return approximate(value) if type(value).__name__ == "mpq" else value


class _Run:
    def __init__(self, policy: CompiledPolicy, groups: Mapping[str, Any] | None, seats: Sequence[Any] | None,
                 as_of: dt.date | None, explain: bool | frozenset[int], unknown_fields: str | None) -> None:
        stage = policy.checked.population
        assert stage is not None
        self.policy = policy
        self.stage: Population = stage
        self.code = policy.code.population
        self.as_of = as_of
        self.explain = explain  # every member, or the members at these positions (an appeal's one)
        self.unknown_fields = unknown_fields or policy.unknown_fields
        self.by_names = [text for text, _ in stage.by]
        self.order = _order_transforms(policy, stage)
        self.data_validate = build_validator(stage.data)
        self.needs_data = bool(stage.data.fields)
        self.data_cache: dict[str, tuple[dict[str, Any] | None, list[FieldError], list[FieldError]]] = {}
        self.penetapan: dict[str, calibration.Penetapan] = {}  # each unit's, when its group data carries one
        self.penetapan_problems: list[FieldError] = []  # found while the groups are decided; the run fails
        self.units_seen: set[str] = set()
        self.groups = self._check_groups(groups)
        self.seats = self._check_seats(seats)
        self.instead = {v.instead_of: name for name, v in stage.values.items() if v.instead_of}
        inputs = dict(policy.checked.input.type.fields)
        self.fills = tuple(name for name, kind in stage.data.type.fields if name not in self.instead
                           and name in inputs and inputs[name].required() == kind.required())
        """Group data fields named as an input of the same type: the group's value stands for the record's
        (unless a group definition already stands for that input, `instead_of`)."""
        self.unit_path = _input_path(policy, stage.by[stage.data_key][1]) if self.fills else None

    # ---- what is sent beside the records ----
    def explains(self, m: _Member) -> bool:
        """Whether `m`'s decision carries its trace."""
        return self.explain is True or (type(self.explain) is frozenset and m.position in self.explain)

    def _check_groups(self, groups: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if groups is None:
            if self.needs_data:
                fields = ", ".join(name for name, _ in self.stage.data.fields)
                raise PopulationInputError([FieldError(path="groups", message=(
                    f"policy {self.policy.id!r} decides over groups and needs each group's data ({fields}): "
                    f"give groups, keyed by {self.by_names[self.stage.data_key]}"))])
            return {}
        if not isinstance(groups, Mapping):
            raise PopulationInputError([FieldError(path="groups", message="must be an object: each group's key "
                                                   "to its data")])
        if len(groups) > MAX_GROUPS:
            raise PopulationInputError([FieldError(path="groups", message=f"holds more than {MAX_GROUPS} groups")])
        errors: list[FieldError] = []
        for unit, raw in groups.items():  # each group's data checked as a record is, before any record is decided
            path = f"groups[{msgspec.json.encode(unit).decode()}]"
            if not isinstance(raw, dict):
                errors.append(FieldError(path=path, message=f"the data of group {unit!r} must be an object"))
                continue
            if "penetapan" in raw:
                raw = dict(raw)
                errors += self._read_penetapan(str(unit), raw.pop("penetapan"), f"{path}.penetapan")
            found: list[FieldError] = []
            clean = self.data_validate(raw, path, found)
            problems, warnings = judge_unknown(found, self.unknown_fields)
            errors += problems
            self.data_cache[str(unit)] = (clean, [], warnings)
            if len(errors) >= 100:
                break
        if errors:
            raise PopulationInputError(errors[:100])
        return groups

    def _check_seats(self, seats: Sequence[Any] | None) -> list[dict[str, Any]]:
        stage = self.stage
        if stage.assignment is None:
            return []
        if seats is None:
            raise PopulationInputError([FieldError(path="seats", message=(
                f"policy {self.policy.id!r} places candidates on seats: give seats, a list of objects with an id"))])
        if not isinstance(seats, Sequence) or isinstance(seats, (str, bytes)):
            raise PopulationInputError([FieldError(path="seats", message="must be a list of seat objects")])
        if len(seats) > MAX_SEATS:
            raise PopulationInputError([FieldError(path="seats", message=f"holds more than {MAX_SEATS} seats")])
        assert stage.seats is not None
        validate = build_validator(stage.seats)
        errors: list[FieldError] = []
        out: list[dict[str, Any]] = []
        ids: set[str] = set()
        for i, seat in enumerate(seats):
            found: list[FieldError] = []
            if not isinstance(seat, dict):
                errors.append(FieldError(path=f"seats[{i}]", message="a seat must be an object"))
                continue
            clean = validate(seat, f"seats[{i}]", found)
            problems, _ = judge_unknown(found, self.unknown_fields)
            errors += problems
            if not problems:
                if clean["id"] in ids:
                    errors.append(FieldError(path=f"seats[{i}].id", message=f"seat {clean['id']!r} is listed twice"))
                ids.add(clean["id"])
                out.append(clean)
        if errors:
            raise PopulationInputError(errors[:100])
        return out

    def _read_penetapan(self, unit: str, raw: Any, path: str) -> list[FieldError]:
        if not self.stage.quotas:
            return [FieldError(path=path, message=f"policy {self.policy.id!r} has no quota whose predikat a "
                                                  "penetapan could fix")]
        found, errors = calibration.read(raw, path, self.stage.quotas[0].category.values)
        if found is not None:
            self.penetapan[unit] = found
        return errors

    def _group_data(self, member: _Member) -> tuple[dict[str, Any] | None, list[FieldError], list[FieldError]]:
        """The data of the member's group (None when missing or bad), what is wrong with it, and warnings."""
        unit = str(member.group[self.stage.data_key])
        cached = self.data_cache.get(unit)
        if cached is not None:
            return cached
        raw = self.groups.get(unit)
        path = f"groups[{msgspec.json.encode(unit).decode()}]"
        errors: list[FieldError] = []
        result: tuple[dict[str, Any] | None, list[FieldError], list[FieldError]]
        if raw is None and self.needs_data:
            result = (None, [FieldError(path=path, message=f"group {unit!r} has no data in groups")], [])
        elif raw is not None and not isinstance(raw, dict):
            result = (None, [FieldError(path=path, message=f"the data of group {unit!r} must be an object")], [])
        else:
            rest = {k: v for k, v in raw.items() if k != "penetapan"} if raw is not None else {}
            clean = self.data_validate(rest, path, errors)
            problems, warnings = judge_unknown(errors, self.unknown_fields)
            result = (None, problems[:5], []) if problems else (clean, [], warnings)
        if len(self.data_cache) < MAX_GROUPS:
            self.data_cache[unit] = result
        return result

    def _fill(self, clean: dict[str, Any], unit: Any) -> tuple[bool, list[FieldError]]:
        """The group's data standing for the record's fields of the same name (the unit's
        predikat_organisasi for its head): whether any changed, and a warning for each the record
        gave otherwise."""
        found = self.data_cache.get(str(unit))
        data = found[0] if found is not None else None
        changed, said = False, []
        for name in self.fills:
            value = data.get(name) if data is not None else None
            if value is None or clean.get(name) == value:
                continue
            if clean.get(name) is not None:
                said.append(FieldError(path=name, message=f"in a population run the group's {name} ({value}) "
                                                          f"stands for the record's ({clean[name]})"))
            clean[name] = value
            changed = True
        return changed, said

    # ---- step 1: each record up to the population stage ----
    def prepare(self, position: int, record: Any) -> _Member | ErrorResult:
        policy = self.policy
        if isinstance(record, ErrorResult):  # the caller could not read it (a line of bad JSON)
            return record
        try:
            clean, warnings = check_record(policy, record, self.unknown_fields)
            when = self.as_of or policy.as_of_for(clean)
            params, dates = policy.params_for(when, "as_of" if self.as_of else policy.period or "as_of")
            indicators = indicator_values(policy, clean)
            saved = decimal.getcontext()
            decimal.setcontext(EVAL_CONTEXT)
            try:
                checks(policy, clean, params, when)
                if self.unit_path is not None:
                    warnings = warnings + self._fill(clean, _read(clean, self.unit_path))[1]
                decided, group, key, order, ofs = self.code.before(clean, params, indicators, when)
                if self.fills and self.unit_path is None:  # the group is known only now: again when it fills
                    changed, said = self._fill(clean, group[self.stage.data_key])
                    warnings = warnings + said
                    if changed:
                        decided, group, key, order, ofs = self.code.before(clean, params, indicators, when)
            except RecordError:
                raise
            except Exception as exc:
                raise fault(policy, exc) from None
            finally:
                decimal.setcontext(saved)
        except (RecordError, EvaluationError) as exc:
            return error_result(policy, exc, record)
        if self.instead and isinstance(record, dict):
            warnings = warnings + [FieldError(path=name, message=(
                f"in a population run the group's {value!r} stands for it; the record's value is not used"))
                for name, value in self.instead.items() if name in record]
        order_key = tuple((1, 0) if v is None else (0, f(v)) for f, v in zip(self.order, order, strict=True))
        return _Member(position=position, clean=clean, warnings=warnings, as_of=when, params=params, dates=dates,
                       indicators=indicators, decided=decided, group=group, key=key, order=order_key,
                       category=ofs[0] if ofs else None, ofs=ofs)

    # ---- step 2: a group ----
    def decide_group(self, members: list[_Member]) -> tuple[GroupReport, dict[int, ErrorResult]]:
        stage = self.stage
        first = members[0]
        shown_group = dict(zip(self.by_names, first.group, strict=True))
        size = len(members)
        data, problems, warnings = self._group_data(first)
        report = GroupReport(group=shown_group, size=size, counts_before={}, counts_after={}, violations=[], moved=[])
        if warnings:
            report.warnings = warnings
        if data is None:
            report.error = "; ".join(map(str, problems))
            error = ErrorResult(policy=self.policy.ref, error=ErrorInfo(
                kind="record", message="the record's group cannot be decided", fields=problems))
            return report, {m.position: self._theirs(error, m) for m in members}
        when = max(m.as_of for m in members)
        report.as_of = when
        params, _ = self.policy.params_for(when)
        members_list: list[dict[str, Any]] = []
        if stage.members_used:
            names = stage.before
            members_list = [{**m.clean, **dict(zip(names, m.decided, strict=True))} for m in members]
        ranked = sorted(members, key=lambda m: (m.order, _sortable(m.key)))
        ranks = {id(m): i + 1 for i, m in enumerate(ranked)}
        values: dict[str, Any] = {}
        saved = decimal.getcontext()
        decimal.setcontext(EVAL_CONTEXT)
        try:
            current = ""
            try:
                for name in stage.values:
                    current = f"group definition {name!r}"
                    values[name] = self.code.group(name)(params, when, data, members_list, size)
                judged = []  # each quota's mode and limits in this group
                for quota in stage.quotas:
                    what = "the quota" if quota.name == "quota" else f"quota {quota.name!r}"
                    current = f"{what}'s mode"
                    mode = self.code.group(f"quota mode {quota.name}")(params, when, data, members_list, size)
                    current = f"{what}'s limits"
                    limits = params[self.policy.param_pos[quota.limits]]
                    if quota.key is not None:
                        key = self.code.group(f"quota key {quota.name}")(params, when, data, members_list, size)
                        limits = limits[key]
                    judged.append((mode, limits))
            except Exception as exc:
                failure = fault(self.policy, exc)
                message = f"{current}: {failure.detail}"
                report.error = message
                error = ErrorResult(policy=self.policy.ref, error=ErrorInfo(
                    kind="evaluation", message=failure.detail, where=f"{current} of group "
                                                                  f"{' / '.join(str(v) for v in first.group)}"))
                return report, {m.position: self._theirs(error, m) for m in members}
        finally:
            decimal.setcontext(saved)
        if values:
            report.values = {k: _shown(v) for k, v in values.items()}
        order = [f"{o.text} {'desc' if o.descending else 'asc'}" for o in stage.order] + [f"{stage.member_text} asc"]
        for m in members:
            m.shown = shown_group
            m.given = {"group": data, "size": size, "rank": ranks[id(m)], "seat": None, **values}
            if self.explains(m):  # the population part of its trace
                m.story = {"group": shown_group, "size": size, "rank": ranks[id(m)], "order": order}
        if stage.quotas:
            self._quotas(members, ranks, judged, report)
        return report, {}

    def _quotas(self, members: list[_Member], ranks: dict[int, int], judged: list[tuple[str, Any]],
                report: GroupReport) -> None:
        """Apply the quotas in order: each judges the members by its `of`, starting from the categories
        the quotas before it over the same `of` left. `population.category` is where the quotas over
        the first one's `of` leave a member."""
        keyed = {str(m.key): m for m in members}
        chains: dict[str, dict[str, Any]] = {}  # each `of` text: every member's category so far
        named = len(self.stage.quotas) > 1
        for i, (quota, (mode, limits)) in enumerate(zip(self.stage.quotas, judged, strict=True)):
            start = chains.setdefault(quota.of_text, {k: m.ofs[i] for k, m in keyed.items()})
            outcome = pop_math.apply_quota(
                [pop_math.Member(key=k, category=start[k], order=(ranks[id(m)],)) for k, m in keyed.items()],
                quota.category.values, limits, mode, quota.rounding)  # type: ignore[arg-type]
            part = self._reported(quota, mode, limits, outcome, keyed, len(members))
            fixed = self._fixed(members[0], quota, mode, limits, outcome, part) if i == 0 else None
            if fixed is not None:
                outcome = dataclasses.replace(outcome, final=fixed.final)
            if i == 0:  # the first quota's report is the group report's own (as with one quota)
                for field_name in ("mode", "limits", "counts_before", "counts_after", "violations", "infeasible",
                                   "moved", "usulan", "penetapan", "violation_details"):
                    if field_name in part:
                        setattr(report, field_name, part[field_name])
            if named:
                report.quotas = [*(report.quotas or []), part]
            self._stories(keyed, quota, i, mode, start, outcome, part, fixed)
            chains[quota.of_text] = dict(outcome.final)
        first = chains[self.stage.quotas[0].of_text]
        for k, m in keyed.items():
            m.given["category"] = first[k]

    def _stories(self, keyed: dict[str, _Member], quota: Any, i: int, mode: str, start: dict[str, Any],
                 outcome: pop_math.QuotaResult, part: dict[str, Any], fixed: calibration.Judged | None) -> None:
        """What the quota did to each member explained (`explain`): before and after, the moves or the
        usulan with why, and the penetapan with the alasan that applies to the member."""
        moves: dict[str, list[pop_math.Moved]] = {}
        for move in outcome.moved:
            moves.setdefault(move.key, []).append(move)
        for k, m in keyed.items():
            if not self.explains(m):
                continue
            story: dict[str, Any] = {"of": quota.of_text, "before": start[k], "after": outcome.final[k],
                                     "mode": mode, "limits": part["limits"]}
            if mode == "propose":
                story["usulan"] = outcome.proposed[k]
                if k in moves:
                    story["why"] = "; ".join(mv.reason for mv in moves[k])
            elif k in moves:
                story["moved"] = [f"{mv.before} -> {mv.after}: {mv.reason}" for mv in moves[k]]
            if fixed is not None:
                penetapan = self.penetapan[self._unit(m)]
                story["penetapan"] = {**penetapan.shown(), "predikat": fixed.final[k],
                                      **({"alasan": fixed.reasons[k]} if k in fixed.reasons else {})}
            if part["violations"]:
                story["violations"] = part["violations"]
            if i == 0:
                m.story["quota"] = story
            else:
                m.story.setdefault("quotas", {})[quota.name] = story

    def _unit(self, member: _Member) -> str:
        return str(member.group[self.stage.data_key])

    def _fixed(self, first: _Member, quota: Any, mode: str, limits: Any, outcome: pop_math.QuotaResult,
               part: dict[str, Any]) -> calibration.Judged | None:
        """The unit's penetapan over the first quota, judged against the usulan (under `propose`;
        else what the quota left) and the curve; what is wrong is kept for the run to refuse."""
        unit = self._unit(first)
        self.units_seen.add(unit)
        penetapan = self.penetapan.get(unit)
        if penetapan is None:
            return None
        usulan = outcome.proposed if mode == "propose" else outcome.final
        path = f"groups[{calibration.quoted(unit)}].penetapan"
        judged = calibration.judge(penetapan, path, list(outcome.final), usulan, outcome, limits, quota.rounding)
        self.penetapan_problems += judged.problems
        after = pop_math.apply_quota(
            [pop_math.Member(key=k, category=c, order=(outcome.ranks[k],)) for k, c in judged.final.items()],
            quota.category.values, limits, "report", quota.rounding)
        part.update(counts_after=after.counts_after, violations=after.violations,
                    violation_details=after.violation_details)
        part["penetapan"] = {**penetapan.shown(), "departures": [
            {"member": k, "usulan": usulan[k], "predikat": judged.final[k], "alasan": judged.reasons.get(k)}
            for k in judged.departures]}
        return judged

    def refuse_bad_penetapan(self) -> None:
        """After every group is decided and before any record is: a penetapan that does not stand,
        or one for a unit not in the run, fails the whole run."""
        problems = list(self.penetapan_problems)
        for unit in self.penetapan:
            if unit not in self.units_seen:
                problems.append(FieldError(path=f"groups[{calibration.quoted(unit)}].penetapan", message=(
                    f"unit {unit!r} has no member in this run")))
        if problems:
            raise PenetapanError(problems[:100])

    @staticmethod
    def _reported(quota: Any, mode: str, limits: Any, outcome: Any, keyed: dict[str, _Member],
                  size: int) -> dict[str, Any]:
        moved = [{"member": keyed[move.key].key, "before": move.before, "after": move.after,
                  "rank": move.rank, "reason": move.reason, "limit": move.limit} for move in outcome.moved]
        part = {"quota": quota.name, "mode": mode, "limits": [limit.describe(size, quota.rounding) for limit in limits],
                "counts_before": outcome.counts_before, "counts_after": outcome.counts_after,
                "violations": outcome.violations, "violation_details": outcome.violation_details,
                "infeasible": outcome.infeasible, "moved": [] if mode == "propose" else moved}
        if mode == "propose":  # nobody moved: each member's predikat_awal beside the usulan, best first
            why: dict[str, list[pop_math.Moved]] = {}
            for move in outcome.moved:
                why.setdefault(move.key, []).append(move)
            part["usulan"] = [{"member": keyed[k].key, "rank": outcome.ranks[k], "predikat_awal": outcome.final[k],
                               "usulan": outcome.proposed[k],
                               **({"why": "; ".join(m.reason for m in why[k]),
                                   "why_limits": [m.limit for m in why[k]]} if k in why else {})}
                              for k in sorted(outcome.ranks, key=outcome.ranks.__getitem__)]
        return part

    # ---- step 2b: the assignment, over the whole run ----
    def assign(self, members: list[_Member]) -> GroupReport:  # noqa: C901
        stage = self.stage
        assignment = stage.assignment
        assert assignment is not None and self.code.pair is not None
        ranked = sorted(members, key=lambda m: (m.order, _sortable(m.key), tuple(map(_sortable, m.group))))
        key_of = {id(m): f"{i:09d}" for i, m in enumerate(ranked)}
        by_key = {key_of[id(m)]: m for m in ranked}
        seats = self.seats
        if len(ranked) * len(seats) > MAX_PAIRS:
            raise PopulationInputError([FieldError(path="seats", message=(
                f"{len(ranked)} candidates × {len(seats)} seats is more than {MAX_PAIRS} pairs; split the run"))])
        scores: dict[tuple[str, str], Any] = {}
        failed: dict[int, EvaluationError] = {}
        saved = decimal.getcontext()
        decimal.setcontext(EVAL_CONTEXT)
        try:
            for m in ranked:
                key = key_of[id(m)]
                for seat in seats:
                    try:
                        score = self.code.pair(m.clean, m.params, m.indicators, m.as_of, m.decided, seat)
                    except Exception as exc:
                        failed[id(m)] = fault(self.policy, exc)
                        break
                    if score is not None:
                        scores[(key, seat["id"])] = rational(score)
        finally:
            decimal.setcontext(saved)
        eligible = {c for c, _ in scores}
        if assignment.method == "optimal":
            work = len(seats) ** 2 * (len(eligible) + len(seats))
            if work > MAX_OPTIMAL_WORK:
                raise PopulationInputError([FieldError(path="seats", message=(
                    f"an optimal assignment of {len(eligible)} eligible candidates to {len(seats)} seats is too "
                    "large for one run; split it (by unit or kelas) or use method: priority"))])
        outcome = pop_math.assign(sorted(eligible), [s["id"] for s in seats], scores,
                                  assignment.method, assignment.shortlist)  # type: ignore[arg-type]

        def who(key: str | None) -> dict[str, Any] | None:
            if key is None:
                return None
            m = by_key[key]
            return {"member": m.key, "group": dict(zip(self.by_names, m.group, strict=True))}

        seat_by_id = {s["id"]: s for s in seats}
        rows = []
        for seat in seats:
            holder = outcome.holder.get(seat["id"])
            rows.append({"seat": seat["id"], **({"member": who(holder), "score": _shown(scores[(holder, seat["id"])])}
                                                if holder else {"member": None, "score": None})})
        shortlists = {sid: [{**(who(k) or {}), "score": _shown(scores[(k, sid)])} for k in keys]
                      for sid, keys in outcome.shortlists.items()}
        for key, m in by_key.items():
            sid = outcome.seat_of.get(key)
            m.given["seat"] = seat_by_id[sid] if sid is not None else None
            if not self.explains(m):
                continue
            story: dict[str, Any] = {"method": assignment.method, "seat": sid}
            if sid is not None:
                story["score"] = _shown(scores[(key, sid)])
                story["against"] = [entry for entry in shortlists[sid] if entry["member"] != m.key
                                    or entry["group"] != dict(zip(self.by_names, m.group, strict=True))]
            competing = [s for s in seat_by_id if (key, s) in scores]
            story["eligible_for"] = competing
            m.story["assignment"] = story
        for m in ranked:
            if id(m) in failed:
                m.given["failed"] = failed[id(m)]
        return GroupReport(group=None, size=len(ranked), counts_before={}, counts_after={},
                           violations=[f"seat {r['seat']!r} has no eligible candidate left" for r in rows
                                       if r["member"] is None],
                           violation_details=[{"seat": r["seat"]} for r in rows if r["member"] is None],
                           moved=[], assignments=rows, shortlists=shortlists)

    def _theirs(self, error: ErrorResult, m: _Member) -> ErrorResult:
        """A group's error as one member's, naming whom it was for."""
        return msgspec.structs.replace(error, subject=subject_of(self.policy, m.clean))

    # ---- step 3: each record to the end ----
    def finish(self, m: _Member) -> Decision | ErrorResult:
        policy = self.policy
        failed = m.given.pop("failed", None)
        if failed is not None:
            return error_result(policy, failed, m.clean)
        block: dict[str, Any] = {"group": m.shown, "member": m.key, "size": m.given["size"],
                                 "rank": m.given["rank"]}
        if self.stage.assignment is not None:
            seat = m.given.get("seat")
            block["seat"] = seat["id"] if seat is not None else None
        penetapan = self.penetapan.get(self._unit(m)) if self.penetapan else None
        if penetapan is not None:
            block["penetapan"] = {**penetapan.shown(), **(
                {"alasan": penetapan.alasan[str(m.key)]} if str(m.key) in penetapan.alasan else {})}
        saved = decimal.getcontext()
        decimal.setcontext(EVAL_CONTEXT)
        try:
            if not self.explains(m):
                outputs = policy.code.run_post(m.clean, m.params, m.indicators, m.as_of, m.given, m.decided)
                return Decision(subject=subject_of(policy, m.clean), policy=policy.ref, as_of=m.as_of,
                                outputs=outputs, warnings=m.warnings, population=block)
            hits: list[Any] = []
            outputs, defs = policy.code.run_post_traced(m.clean, m.params, m.indicators, m.as_of, m.given,
                                                        m.decided, hits)
        except Exception as exc:
            return error_result(policy, fault(policy, exc), m.clean)
        finally:
            decimal.setcontext(saved)
        trace = build_trace(policy, outputs, defs, hits, m.params, m.dates, m.as_of, m.indicators)
        trace["population"] = m.story
        return Decision(subject=subject_of(policy, m.clean), policy=policy.ref, as_of=m.as_of, outputs=outputs,
                        warnings=m.warnings, population=block, trace=trace)


def _sortable(key: Any) -> Any:
    return (0, key, "") if isinstance(key, int) else (1, 0, str(key))


def run_population(policy: CompiledPolicy, records: Iterable[Any], groups: Mapping[str, Any] | None = None,
                   seats: Sequence[Any] | None = None, as_of: dt.date | None = None,
                   explain: bool | frozenset[int] = False, unknown_fields: str | None = None,
                   sorted_by_group: bool = False) -> Iterator[Decision | ErrorResult | GroupReport]:
    """Decide `records` as a population: each record's result in input order, and each group's report
    as soon as its records are out (an assignment's report, over the whole run, comes last).

    With `sorted_by_group` (and no assignment) one group is held at a time; a record of a group
    that came earlier is then that record's error. Raises PopulationInputError before deciding
    anything when the group data or the seats are unusable, and ValueError for a policy without
    a population stage."""
    if policy.population is None:
        raise ValueError(f"policy {policy.id!r} has no population stage; decide its records one by one")
    run = _Run(policy, groups, seats, as_of, explain, unknown_fields)  # checks what is sent beside, now
    # a penetapan is judged over every group before any record is decided: the run is held whole
    return _results(run, records, sorted_by_group and run.stage.assignment is None and not run.penetapan)


class _Pause:
    """How many runs are under way, and whether the collector was on when the first began."""

    lock = threading.Lock()
    runs = 0
    was_enabled = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a run holds its groups.

    A run keeps every member of the groups it holds alive until they are decided, and each
    collection of the oldest generation walks all of them: measured, that doubled the cost of a
    run of 100,000 records. A run makes no reference cycles of its own (each record's objects are
    freed by reference counting), so nothing piles up meanwhile. Runs in several threads share
    the pause; the collector resumes when the last one ends, if it was on before the first."""
    with _Pause.lock:
        if _Pause.runs == 0:
            _Pause.was_enabled = gc.isenabled()
            gc.disable()
        _Pause.runs += 1
    try:
        yield
    finally:
        with _Pause.lock:
            _Pause.runs -= 1
            if _Pause.runs == 0 and _Pause.was_enabled:
                gc.enable()


def _results(run: _Run, records: Iterable[Any], streaming: bool) -> Iterator[Decision | ErrorResult | GroupReport]:
    with collector_paused():
        yield from _decided(run, records, streaming)


def _decided(run: _Run, records: Iterable[Any], streaming: bool) -> Iterator[Decision | ErrorResult | GroupReport]:  # noqa: C901
    policy = run.policy
    pending: dict[int, Decision | ErrorResult] = {}
    next_out = 0

    def ready() -> Iterator[Decision | ErrorResult]:
        nonlocal next_out
        while next_out in pending:
            yield pending.pop(next_out)
            next_out += 1

    errors: dict[int, ErrorResult] = {}
    members = _positions((run.prepare(i, record) for i, record in enumerate(records)), errors)
    held: list[tuple[list[_Member], GroupReport]] = []
    reports: list[GroupReport] = []
    for grouped in pop_math.group_records(members, lambda m: m.group, lambda m: m.key, sorted_by_group=streaming):
        pending.update(errors)
        errors.clear()
        if grouped.group is None:  # a member key twice in its group, or a group that came back
            for why in grouped.errors.values():
                member = grouped.records[0]
                pending[member.position] = error_result(policy, RecordError([FieldError(
                    path=run.stage.member_text, message=why)]), member.clean)
            continue
        report, failed = run.decide_group(grouped.records)
        if failed:
            pending.update(failed)
            reports.append(report)
        else:
            held.append((grouped.records, report))
        if streaming:
            for done, report_done in held:
                for m in done:
                    pending[m.position] = run.finish(m)
                reports.append(report_done)
            held.clear()
            yield from ready()
            yield from reports
            reports.clear()
    pending.update(errors)
    run.refuse_bad_penetapan()
    assignment_report = None
    if run.stage.assignment is not None:
        assignment_report = run.assign([m for done, _ in held for m in done])
    for done, report in held:
        for m in done:
            pending[m.position] = run.finish(m)
        reports.append(report)
    yield from ready()
    assert not pending, "every record has its result"
    yield from reports
    if assignment_report is not None:
        yield assignment_report


def _positions(prepared: Iterator[_Member | ErrorResult], errors: dict[int, ErrorResult]) -> Iterator[_Member]:
    """The members of a run; a record that failed before grouping waits in `errors` at its position."""
    for position, item in enumerate(prepared):
        if isinstance(item, ErrorResult):
            errors[position] = item
        else:
            yield item


def _input_path(policy: CompiledPolicy, expr: Any) -> tuple[str, ...] | None:
    """The record path a grouping expression reads when it is one (`unit_kerja`), else None."""
    parts: list[str] = []
    while isinstance(expr, n.Attr):
        parts.append(expr.name)
        expr = expr.obj
    if not isinstance(expr, n.Name) or policy.checked.notes.names.get(id(expr), ("",))[0] != "input":
        return None
    return (expr.name, *reversed(parts))


def _read(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value
