"""What would it take: the smallest change to the inputs a person can change (`dapat_diubah:`) that
reaches a goal (`evaluasi.predikat` at least `baik`, `tpp.diterima` at least 4,500,000).

The search decides candidate records with the compiled policy itself, so an answer is exact, never
an estimate: first the fewest changed inputs, then the smallest total change counted in steps. It
deepens one step at a time over every choice of inputs, so the first record that reaches the goal
is the best one; when every candidate within the bounds has been decided and none reaches it, the
goal is not reachable. The search has a time budget: past it the answer is `unknown`, or a change
that reaches the goal with `optimal: false` (every input at its far bound, tried first, may have).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.checking.changes import NUMBERS, Changeable, dotted_name
from kinerja_rules.decision import Decision
from kinerja_rules.engine import Engine
from kinerja_rules.errors import FieldError, KinerjaError
from kinerja_rules.jsontext import value_at as _at
from kinerja_rules.types import Kind, Type

MAX_MOVES = 10_000  # the most steps an input moves each way
MAX_SECONDS = 60.0
DEFAULT_SECONDS = 1.0


class WhatIfError(KinerjaError):
    """A goal or budget that cannot be used: `fields` names the place."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.fields = (FieldError(path=path, message=message),)


@dataclass(frozen=True)
class Goal:
    output: str
    at_least: Any
    kind: Type

    def met(self, outputs: Mapping[str, Any]) -> bool:
        value = _at(outputs, self.output)
        if value is None or isinstance(value, bool):
            return False
        if self.kind.kind == Kind.ENUM:
            rank = self.kind.rank()
            return value in rank and rank[value] >= rank[self.at_least]
        try:
            return bool(Decimal(str(value)) >= self.at_least)
        except InvalidOperation:
            return False

    def describe(self) -> dict[str, Any]:
        return {"output": self.output, "at_least": self.at_least}


def goal_of(engine: Engine, policy_id: str, given: Any) -> Goal:
    """A goal sent as `{output, at_least}`, checked against the policy's outputs."""
    if not isinstance(given, Mapping):
        raise WhatIfError("goal", "an object {output, at_least}")
    extra = sorted(str(k)[:40] for k in given if k not in ("output", "at_least"))
    if extra:
        raise WhatIfError(f"goal.{extra[0]}", "a goal has 'output' and 'at_least' only")
    outputs = engine.policy(policy_id).checked.outputs
    name = given.get("output")
    if not isinstance(name, str) or name not in outputs:
        raise WhatIfError("goal.output", f"{str(name)[:80]!r} is not an output of policy {policy_id!r}"
                          + (did_you_mean(name, list(outputs)) if isinstance(name, str) else ""))
    kind = outputs[name].type.required()
    wanted = given.get("at_least")
    if kind.kind == Kind.ENUM:
        if not kind.highest:
            raise WhatIfError("goal.output", f"{name} is an unordered enumeration ({kind}); a goal needs an ordered "
                              "one (highest: first or last) or a number")
        if wanted not in kind.values:
            raise WhatIfError("goal.at_least", f"one of {', '.join(kind.values)}")
        return Goal(name, wanted, kind)
    if kind.kind not in NUMBERS:
        raise WhatIfError("goal.output", f"{name} is {kind}; a goal needs a number or an ordered enumeration")
    if isinstance(wanted, bool) or not isinstance(wanted, (int, Decimal, float, str)) or len(str(wanted)) > 30:
        raise WhatIfError("goal.at_least", "a number (at most 30 characters)")
    try:
        number = Decimal(str(wanted))
    except InvalidOperation:
        raise WhatIfError("goal.at_least", "a number") from None
    if not number.is_finite():
        raise WhatIfError("goal.at_least", "a finite number")
    return Goal(name, number, kind)


@dataclass
class Variable:
    """One input of the record that may change: its place, value and the values each cost reaches."""

    path: str
    keys: tuple[str | int, ...]
    current: Any
    whole: bool
    moves: list[list[Decimal]]  # moves[c - 1]: the values c steps away (down first)

    @property
    def reach(self) -> int:
        return len(self.moves)


@dataclass
class WhatIf:
    reachable: bool | str  # True, False or "unknown"
    optimal: bool
    changes: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    evaluated: int = 0

    def answer(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "optimal": self.optimal, "changes": self.changes,
                "outputs": self.outputs}


class _OutOfTime(Exception):
    pass


def what_if(engine: Engine, policy_id: str, record: Mapping[str, Any], goal: Goal, as_of: dt.date | None = None,
            seconds: float = DEFAULT_SECONDS, clock: Callable[[], float] = time.monotonic) -> WhatIf:
    """The smallest change to `record` (of the inputs `policy_id` says a person can change) that
    reaches `goal`, within `seconds`. A record the policy refuses raises its RecordError."""
    if not 0 < seconds <= MAX_SECONDS:
        raise WhatIfError("seconds", f"from 0 to {MAX_SECONDS:g}")
    policy = engine.policy(policy_id)
    first = engine.evaluate(policy_id, record, as_of)
    if goal.met(first.outputs):
        return WhatIf(True, True, [], first.outputs, 1)
    work = copy.deepcopy(dict(record))
    variables = [v for change in policy.checked.changeable.values() for v in _variables(change, work)]
    search = _Search(engine, policy_id, work, goal, as_of, clock() + seconds, clock)
    fallback = None
    far = [(v, v.moves[-1][-1]) for v in variables if v.moves]
    try:
        if far:
            found = search.tries([v for v, _ in far], [value for _, value in far])
            if found is not None:
                fallback = WhatIf(True, False, _changes([v for v, _ in far], [value for _, value in far]),
                                  found.outputs)
        for size in range(1, len(variables) + 1):
            answer = search.deepen(variables, size)
            if answer is not None:
                chosen, values, decision = answer
                return WhatIf(True, True, _changes(chosen, values), decision.outputs, search.evaluated)
    except _OutOfTime:
        if fallback is not None:
            fallback.evaluated = search.evaluated
            return fallback
        return WhatIf("unknown", False, [], first.outputs, search.evaluated)
    return WhatIf(False, True, [], first.outputs, search.evaluated)


class _Search:
    def __init__(self, engine: Engine, policy_id: str, work: dict[str, Any], goal: Goal, as_of: dt.date | None,
                 deadline: float, clock: Callable[[], float]) -> None:
        self.engine, self.policy_id, self.work, self.goal, self.as_of = engine, policy_id, work, goal, as_of
        self.deadline, self.clock = deadline, clock
        self.evaluated = 0

    def tries(self, chosen: Sequence[Variable], values: Sequence[Decimal]) -> Decision | None:
        """The decision of the record with `values` put in, when it reaches the goal."""
        if self.clock() > self.deadline:
            raise _OutOfTime
        for variable, value in zip(chosen, values, strict=True):
            _put(self.work, variable.keys, int(value) if variable.whole else value)
        self.evaluated += 1
        try:
            decision = self.engine.evaluate(self.policy_id, self.work, self.as_of)
        except KinerjaError:  # a value the record's schema refuses: not a way there
            decision = None
        finally:
            for variable in chosen:
                _put(self.work, variable.keys, variable.current)
        return decision if decision is not None and self.goal.met(decision.outputs) else None

    def deepen(self, variables: list[Variable], size: int) -> tuple[list[Variable], tuple[Decimal, ...],
                                                                     Decision] | None:
        """The cheapest change of exactly `size` inputs that reaches the goal, or None when none does."""
        reach = sorted((v.reach for v in variables), reverse=True)
        for total in range(size, sum(reach[:size]) + 1):
            for combo in itertools.combinations(variables, size):
                for costs in _compositions(total, [v.reach for v in combo]):
                    for values in itertools.product(*(v.moves[c - 1] for v, c in zip(combo, costs, strict=True))):
                        decision = self.tries(combo, values)
                        if decision is not None:
                            return list(combo), values, decision
        return None


def _compositions(total: int, caps: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Each way to write `total` as len(caps) positive parts, part i at most caps[i]."""
    if len(caps) == 1:
        if 1 <= total <= caps[0]:
            yield (total,)
        return
    rest = sum(caps[1:])
    for first in range(max(1, total - rest), min(caps[0], total - len(caps) + 1) + 1):
        for tail in _compositions(total - first, caps[1:]):
            yield (first, *tail)


def _variables(change: Changeable, record: dict[str, Any]) -> Iterator[Variable]:
    """Each place of the record `change` names (one per item for `[*]`), with the values it may take."""
    for keys, item in _places(record, change.parts, ()):
        current = _at_keys(record, keys)
        if isinstance(current, bool) or not isinstance(current, (int, Decimal, float)):
            continue
        now = Decimal(str(current))
        low = _bound(change.low, item, record)
        high = _bound(change.high, item, record)
        moves = _moves(now, change.step, low, high)
        if moves:
            yield Variable(_path(keys), keys, current, change.kind.kind == Kind.INTEGER, moves)


def _places(tree: Any, parts: tuple[tuple[str, bool], ...], keys: tuple[str | int, ...],
            item: Any = None) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if not parts:
        yield keys, item
        return
    (name, every), rest = parts[0], parts[1:]
    if not isinstance(tree, Mapping) or name not in tree:
        return
    value = tree[name]
    if not every:
        yield from _places(value, rest, (*keys, name), item)
    elif isinstance(value, list):
        for i, element in enumerate(value[:1000]):
            if rest:
                yield from _places(element, rest, (*keys, name, i), element)
            else:
                yield (*keys, name, i), element


def _moves(now: Decimal, step: Decimal, low: Decimal | None, high: Decimal | None) -> list[list[Decimal]]:
    """The values 1, 2, … steps from `now` within the bounds (a bound not on a step is reached last)."""
    ways: list[list[Decimal]] = []
    for bound, sign in ((low, -1), (high, 1)):
        if bound is None or (bound - now) * sign <= 0:
            continue
        count = min(int((abs(bound - now) / step).to_integral_value(rounding="ROUND_CEILING")), MAX_MOVES)
        for k in range(1, count + 1):
            value = now + sign * step * k
            if (value - bound) * sign > 0:
                value = bound
            while len(ways) < k:
                ways.append([])
            ways[k - 1].append(value)
    return ways


def _bound(node: n.Expr | None, item: Any, record: Mapping[str, Any]) -> Decimal | None:
    if node is None:
        return None
    try:
        return _value(node, item, record)
    except (InvalidOperation, ZeroDivisionError, _NoValue):
        return None


class _NoValue(Exception):
    pass


def _value(node: Any, item: Any, record: Mapping[str, Any]) -> Decimal:
    if isinstance(node, n.Literal):
        return Decimal(str(node.value))
    if isinstance(node, n.Unary):
        return -_value(node.operand, item, record)
    if isinstance(node, n.Binary):
        left, right = _value(node.left, item, record), _value(node.right, item, record)
        return {"+": left + right, "-": left - right, "*": left * right}[node.op] if node.op != "/" else left / right
    dotted = dotted_name(node) or ""
    found = item.get(dotted) if isinstance(item, Mapping) and dotted in item else _at(record, dotted)
    if isinstance(found, bool) or not isinstance(found, (int, Decimal, float)):
        raise _NoValue
    return Decimal(str(found))


def _at_keys(tree: Any, keys: tuple[str | int, ...]) -> Any:
    for key in keys:
        tree = tree[key]
    return tree


def _put(tree: Any, keys: tuple[str | int, ...], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree[key]
    tree[keys[-1]] = value


def _path(keys: tuple[str | int, ...]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _changes(chosen: Sequence[Variable], values: Sequence[Decimal]) -> list[dict[str, Any]]:
    return [{"path": v.path, "from": v.current, "to": int(value) if v.whole else value}
            for v, value in zip(chosen, values, strict=True)]
