"""The population stage's arithmetic: a total ordering of a group's members, and a quota on a
category over the group (the kurva distribusi) checked (`report`) or applied (`enforce`).

Pure and independent of the policy language: the engine gives each member its key (`nip`), its
category (the predikat before the population stage) and its place in the declared ordering,
and gets back each member's final category with the numbers that explain it. Nothing here
depends on the order members arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, Literal

ROUNDINGS = {"floor": ROUND_FLOOR, "ceiling": ROUND_CEILING, "half_up": ROUND_HALF_UP}


@dataclass(frozen=True)
class Member:
    """One member of a group: its key (unique in the group), its category, and its ordering key
    (smaller is better: the engine builds it from the declared score and tie-breaks)."""

    key: str
    category: str
    order: tuple[Any, ...]


@dataclass(frozen=True)
class Limit:
    """At most (`max`) or at least (`min`) a share of the group, or a head count, in `categories`."""

    categories: frozenset[str]
    bound: Literal["max", "min"]
    share: Decimal | None = None
    count: int | None = None

    def head_count(self, size: int, rounding: str) -> int:
        """The share turned into a number of members of a group of `size` (a count stays a count)."""
        if self.count is not None:
            return self.count
        assert self.share is not None
        return int((self.share * size).to_integral_value(ROUNDINGS[rounding]))

    def describe(self, size: int, rounding: str) -> str:
        names = " or ".join(sorted(self.categories))
        word = "at most" if self.bound == "max" else "at least"
        if self.count is not None:
            return f"{names}: {word} {self.count}"
        assert self.share is not None
        return f"{names}: {word} {rounding}({_percent(self.share)} × {size}) = {self.head_count(size, rounding)}"


@dataclass(frozen=True)
class Moved:
    key: str
    before: str
    after: str
    rank: int
    reason: str


@dataclass(frozen=True)
class QuotaResult:
    """The final category of every member, with what moved and every limit not met."""

    final: dict[str, str]  # key -> category
    ranks: dict[str, int]  # key -> 1-based place in the ordering
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    moved: list[Moved] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # limits not met after the quota (all, under report)
    infeasible: list[str] = field(default_factory=list)  # limits enforce cannot meet (minimums, a worst category)


def ordered(members: Iterable[Member]) -> list[Member]:
    """The members best first: by their ordering key, then by key, so the order is total."""
    return sorted(members, key=lambda m: (m.order, m.key))


def apply_quota(members: Sequence[Member], categories: Sequence[str], limits: Sequence[Limit],
                mode: Literal["report", "enforce"], rounding: str = "floor") -> QuotaResult:
    """Check (`report`) or apply (`enforce`) `limits` on a group. `categories` runs best to worst.

    Under `enforce`, while a maximum is passed, its excess members, taken from the bottom of the
    ordering, each move one category down; this repeats pass by pass until every maximum holds
    (or the worst category is reached, which is reported). Minimums are never met by moving
    anyone: one not met is reported.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    keys = [m.key for m in members]
    if len(set(keys)) != len(keys):
        raise ValueError("two members share a key")
    step = {c: categories[i + 1] for i, c in enumerate(categories[:-1])}
    best_first = ordered(members)
    ranks = {m.key: i + 1 for i, m in enumerate(best_first)}
    current = {m.key: m.category for m in members}
    size = len(members)
    before = _counts(current, categories)
    moved: list[Moved] = []
    infeasible: list[str] = []
    if mode == "enforce":
        for _ in range(len(categories) * max(size, 1)):  # each pass moves someone, or it stops
            changed = False
            for limit in (lim for lim in limits if lim.bound == "max"):
                allowed = limit.head_count(size, rounding)
                inside = [m for m in best_first if current[m.key] in limit.categories]
                excess = len(inside) - allowed
                if excess <= 0:
                    continue
                for member in reversed(inside[-excess:]):  # the bottom of the ordering, lowest first
                    down = step.get(current[member.key])
                    if down is None:
                        continue
                    moved.append(Moved(key=member.key, before=current[member.key], after=down,
                                       rank=ranks[member.key],
                                       reason=f"rank {ranks[member.key]} of {size}; "
                                              f"{limit.describe(size, rounding)}"))
                    current[member.key] = down
                    changed = True
            if not changed:
                break
    violations = []
    for limit in limits:
        count = sum(1 for c in current.values() if c in limit.categories)
        needed = limit.head_count(size, rounding)
        if limit.bound == "max" and count > needed or limit.bound == "min" and count < needed:
            text = f"{limit.describe(size, rounding)}, but {count}"
            violations.append(text)
            if mode == "enforce":
                infeasible.append(text)
    return QuotaResult(final=current, ranks=ranks, counts_before=before, counts_after=_counts(current, categories),
                       moved=moved, violations=violations, infeasible=infeasible)


def _counts(current: dict[str, str], categories: Sequence[str]) -> dict[str, int]:
    out = dict.fromkeys(categories, 0)
    for category in current.values():
        out[category] = out.get(category, 0) + 1
    return out


def _percent(share: Decimal) -> str:
    text = format((share * 100).normalize(), "f")
    return f"{text} %"
