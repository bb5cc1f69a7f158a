"""`dapat_diubah:`, the inputs a person can change, checked: each names a number of the record
(`[*]` for each item of a list), a bound on at least one side and a positive step. A bound is a
number, or arithmetic over the record's numbers (or, for a path with `[*]`, over the item's, such
as `target * 1.2`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.checking.model import Context
from kinerja_rules.documents import Item
from kinerja_rules.types import Kind, Type

NUMBERS = (Kind.INTEGER, Kind.DECIMAL, Kind.MONEY, Kind.PERCENT, Kind.NUMBER)
MAX_STEP_DIGITS = 12


@dataclass(frozen=True)
class Changeable:
    """One input a person can change, as the what-if search reads it."""

    pattern: str  # skp.indikator[*].realisasi
    parts: tuple[tuple[str, bool], ...]  # each name, and whether each item of the list it names is meant
    kind: Type
    low: n.Expr | None
    high: n.Expr | None
    step: Decimal
    item_fields: frozenset[str]  # for a path with [*]: the names a bound reads from the item


def check_changes(ctx: Context, items: dict[str, Item], inputs: dict[str, Type]) -> dict[str, Changeable]:
    found: dict[str, Changeable] = {}
    for pattern, item in items.items():
        made = _one(ctx, pattern, item, inputs)
        if made is not None:
            found[pattern] = made
    return found


def _one(ctx: Context, pattern: str, item: Item, inputs: dict[str, Type]) -> Changeable | None:
    def refuse(problem: str) -> None:
        ctx.error("E149", f"dapat_diubah {pattern}: {problem}", ctx.at(item))

    parts = tuple((p.removesuffix("[*]"), p.endswith("[*]")) for p in pattern.split("."))
    walked = _walk(parts, inputs)
    if isinstance(walked, str):
        refuse(walked)
        return None
    kind, item_fields = walked
    spec = item.spec
    step = _step(spec.step, kind)
    if isinstance(step, str):
        refuse(step)
        return None
    if spec.min is None and spec.max is None:
        refuse("give 'min' (it can go down to) or 'max' (up to), or both")
        return None
    top = {name for name, t in inputs.items() if t.required().kind in NUMBERS}
    bounds = []
    for side in ("min", "max"):
        given = getattr(spec, side)
        node = None if given is None else ctx.parse(given, item.source, (*item.path, side))
        if given is not None and node is None:
            return None
        problem = "" if node is None else _arithmetic(
            node, item_fields if any(e for _, e in parts) else frozenset(), top, inputs)
        if problem:
            refuse(f"'{side}': {problem}")
            return None
        bounds.append(node)
    return Changeable(pattern, parts, kind, bounds[0], bounds[1], step, item_fields)


def _walk(parts: tuple[tuple[str, bool], ...], inputs: dict[str, Type]) -> tuple[Type, frozenset[str]] | str:
    """The type a changeable path names, and the numbers of its item (for `[*]`); or what is wrong."""
    fields: dict[str, Type] | None = inputs
    kind: Type | None = None
    item_fields: frozenset[str] = frozenset()
    for name, every in parts:
        kind = fields.get(name) if fields is not None else None
        if kind is None:
            return f"{name!r} is not a field of the record{did_you_mean(name, list(fields or {}))}"
        kind = kind.required()
        if every:
            if kind.kind != Kind.LIST or kind.item is None:
                return f"{name}[*] names each item of a list, and {name} is {kind}"
            kind = kind.item.required()
            if kind.kind == Kind.RECORD:
                item_fields = frozenset(f for f, t in kind.fields if t.required().kind in NUMBERS)
        fields = dict(kind.fields) if kind.kind == Kind.RECORD else None
    assert kind is not None
    if kind.kind not in NUMBERS:
        return f"a changeable input is a number, and this is {kind}"
    return kind, item_fields


def _step(given: Any, kind: Type) -> Decimal | str:
    try:
        step = Decimal(str(given))
    except (InvalidOperation, ValueError):
        step = Decimal(0)
    whole = kind.kind == Kind.INTEGER
    if not step.is_finite() or step <= 0 or len(step.as_tuple().digits) > MAX_STEP_DIGITS or (
            whole and step != step.to_integral_value()):
        return (f"'step' is a positive whole number (the input is an integer), not {str(given)[:40]!r}" if whole
                else f"'step' is a positive number, not {str(given)[:40]!r}")
    return step


def _arithmetic(node: Any, item: frozenset[str], top: set[str], inputs: dict[str, Type]) -> str:
    """What is wrong with a bound, or "" (numbers, + - * /, the item's or the record's numbers)."""
    if isinstance(node, n.Literal):
        return "" if node.kind in ("integer", "decimal", "percent") else f"{node.value!r} is not a number"
    if isinstance(node, n.Unary) and node.op == "-":
        return _arithmetic(node.operand, item, top, inputs)
    if isinstance(node, n.Binary) and node.op in ("+", "-", "*", "/"):
        return _arithmetic(node.left, item, top, inputs) or _arithmetic(node.right, item, top, inputs)
    if isinstance(node, (n.Name, n.Attr)):
        dotted = dotted_name(node)
        if dotted is not None and (dotted in item or dotted in top or _numeric_path(dotted, inputs)):
            return ""
        known = sorted(item) or sorted(top)
        return (f"{dotted or 'this'} is not a number of the item" if item else
                f"{dotted or 'this'} is not a number of the record") + did_you_mean(dotted or "", known)
    return "a bound is a number or arithmetic (+ - * /) over the record's numbers"


def dotted_name(node: Any) -> str | None:
    if isinstance(node, n.Name):
        return str(node.name)
    if isinstance(node, n.Attr):
        base = dotted_name(node.obj)
        return None if base is None else f"{base}.{node.name}"
    return None


def _numeric_path(dotted: str, inputs: dict[str, Type]) -> bool:
    fields: dict[str, Type] | None = inputs
    kind = None
    for part in dotted.split("."):
        kind = fields.get(part) if fields is not None else None
        if kind is None:
            return False
        kind = kind.required()
        fields = dict(kind.fields) if kind.kind == Kind.RECORD else None
    return kind is not None and kind.kind in NUMBERS
