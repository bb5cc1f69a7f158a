"""The population stage's arithmetic: a total ordering of a group's members, and a quota on a
category over the group (the kurva distribusi) checked (`report`) or applied (`enforce`).

Pure and independent of the policy language: the engine gives each member its key (`nip`), its
category (the predikat before the population stage) and its place in the declared ordering,
and gets back each member's final category with the numbers that explain it. Nothing here
depends on the order members arrive in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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

    def written(self) -> str:
        """The limit as a policy writes it: `butuh_perbaikan or kurang >= 1`, `baik <= 70%`."""
        amount = str(self.count) if self.count is not None else f"{_percent(self.share or Decimal(0)).replace(' ', '')}"
        return f"{' or '.join(sorted(self.categories))} {'<=' if self.bound == 'max' else '>='} {amount}"

    def describe(self, size: int, rounding: str) -> str:
        names = " or ".join(sorted(self.categories))
        word = "at most" if self.bound == "max" else "at least"
        if self.count is not None:
            return f"{names}: {word} {self.count}"
        assert self.share is not None
        return f"{names}: {word} {rounding}({_percent(self.share)} × {size}) = {self.head_count(size, rounding)}"

    def detail(self, size: int, rounding: str) -> dict[str, Any]:
        """The limit as data, for what is written for people: its categories, `bound`, the `percent`
        of the group with its `rounding` (or a head `count`), the group's `size` and the head count
        `needed` that makes."""
        out: dict[str, Any] = {"categories": sorted(self.categories), "bound": self.bound}
        if self.count is not None:
            out["count"] = self.count
        else:
            assert self.share is not None
            out |= {"percent": (self.share * 100).normalize(), "rounding": rounding}
        return out | {"size": size, "needed": self.head_count(size, rounding)}


@dataclass(frozen=True)
class Moved:
    key: str
    before: str
    after: str
    rank: int
    reason: str
    limit: dict[str, Any] | None = None  # the limit that moved it (`Limit.detail`)


@dataclass(frozen=True)
class QuotaResult:
    """The final category of every member, with what moved and every limit not met."""

    final: dict[str, str]  # key -> category
    ranks: dict[str, int]  # key -> 1-based place in the ordering
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    moved: list[Moved] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)  # limits not met after the quota (all, under report)
    violation_details: list[dict[str, Any]] = field(default_factory=list)  # each as data: its limit and `actual`
    infeasible: list[str] = field(default_factory=list)  # limits enforce cannot meet (minimums, a worst category)
    proposed: dict[str, str] = field(default_factory=dict)  # key -> category (under propose: the usulan)


def ordered(members: Iterable[Member]) -> list[Member]:
    """The members best first: by their ordering key, then by key, so the order is total."""
    return sorted(members, key=lambda m: (m.order, m.key))


def apply_quota(members: Sequence[Member], categories: Sequence[str], limits: Sequence[Limit],
                mode: Literal["report", "enforce", "propose"], rounding: str = "floor") -> QuotaResult:
    """Check (`report`), apply (`enforce`) or propose (`propose`) `limits` on a group. `categories`
    runs best to worst.

    Under `enforce`, while a maximum is passed, its excess members, taken from the bottom of the
    ordering, each move one category down; this repeats pass by pass until every maximum holds
    (or the worst category is reached, which is reported). Minimums are never met by moving
    anyone: one not met is reported.

    Under `propose` nobody moves (`final` is each member's own category, and the limits it breaks
    are reported); `proposed` is the usulan, the fewest changes that meet the curve: the moves
    `enforce` makes, then for each minimum not met the members at the bottom of the ordering
    outside its categories, each moved down to the best of its categories below their own.
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
    if mode in ("enforce", "propose"):
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
                                              f"{limit.describe(size, rounding)}",
                                       limit=limit.detail(size, rounding)))
                    current[member.key] = down
                    changed = True
            if not changed:
                break
    if mode == "propose":  # `moved` holds the changes proposed; `infeasible`, what the usulan cannot meet
        moved += _meet_minimums(best_first, current, categories, limits, size, rounding, ranks)
        plan = _judged(current, limits, size, rounding, categories, before, ranks, "report")
        result = _judged({m.key: m.category for m in members}, limits, size, rounding, categories, before, ranks,
                         "report", moved)
        result.proposed.update(current)
        result.infeasible.extend(plan.violations)
        return result
    return _judged(current, limits, size, rounding, categories, before, ranks, mode, moved)


def _meet_minimums(best_first: list[Member], current: dict[str, str], categories: Sequence[str],
                   limits: Sequence[Limit], size: int, rounding: str, ranks: dict[str, int]) -> list[Moved]:
    """Members from the bottom of the ordering moved down into each minimum's categories until it
    holds (only members above those categories; nobody moves up), as `current` changes."""
    rank_of = {c: i for i, c in enumerate(categories)}
    moved = []
    for limit in (lim for lim in limits if lim.bound == "min"):
        needed = limit.head_count(size, rounding)
        count = sum(1 for c in current.values() if c in limit.categories)
        for member in reversed(best_first):
            if count >= needed:
                break
            now = current[member.key]
            below = [c for c in categories if c in limit.categories and rank_of[c] > rank_of.get(now, len(categories))]
            if now in limit.categories or not below:
                continue
            moved.append(Moved(key=member.key, before=now, after=below[0], rank=ranks[member.key],
                               reason=f"rank {ranks[member.key]} of {size}; {limit.describe(size, rounding)}",
                               limit=limit.detail(size, rounding)))
            current[member.key] = below[0]
            count += 1
    return moved


def _judged(current: dict[str, str], limits: Sequence[Limit], size: int, rounding: str,
            categories: Sequence[str], before: dict[str, int], ranks: dict[str, int], mode: str,
            moved: list[Moved] | None = None) -> QuotaResult:
    """The limits judged on the categories members end with."""
    violations = []
    details = []
    infeasible = []
    for limit in limits:
        count = sum(1 for c in current.values() if c in limit.categories)
        needed = limit.head_count(size, rounding)
        if limit.bound == "max" and count > needed or limit.bound == "min" and count < needed:
            text = f"{limit.describe(size, rounding)}, but {count}"
            violations.append(text)
            details.append(limit.detail(size, rounding) | {"actual": count})
            if mode == "enforce":
                infeasible.append(text)
    return QuotaResult(final=current, ranks=ranks, counts_before=before, counts_after=_counts(current, categories),
                       moved=list(moved or ()), violations=violations, violation_details=details,
                       infeasible=infeasible)


def _counts(current: dict[str, str], categories: Sequence[str]) -> dict[str, int]:
    out = dict.fromkeys(categories, 0)
    for category in current.values():
        out[category] = out.get(category, 0) + 1
    return out


def _percent(share: Decimal) -> str:
    text = format((share * 100).normalize(), "f")
    return f"{text} %"


# ---- assignment: candidates to seats ---------------------------------------------------

@dataclass(frozen=True)
class Assignment:
    """Who got which seat, and each seat's shortlist (its best eligible candidates by score)."""

    seat_of: dict[str, str]  # candidate key -> seat id
    holder: dict[str, str | None]  # seat id -> candidate key, or None when nobody eligible was left
    shortlists: dict[str, list[str]]  # seat id -> candidate keys, best first
    total: Any  # the sum (an exact number) of the scores of the placements


def assign(candidates: Sequence[str], seats: Sequence[str], scores: dict[tuple[str, str], Any],
           method: Literal["priority", "optimal"], shortlist: int = 3) -> Assignment:
    """Place candidates on seats, each candidate on at most one seat and each seat to at most one.

    `scores` holds a score for every eligible (candidate, seat) pair and nothing for the others,
    so an ineligible candidate is never placed. `priority` fills the seats in the order given,
    each with the best eligible candidate still free (score, then key); `optimal` places them so
    that the sum of the scores is the largest possible (the Hungarian method, exact), ties broken
    the same way whatever order the input came in.
    """
    if len(set(candidates)) != len(candidates) or len(set(seats)) != len(seats):
        raise ValueError("a candidate or a seat is named twice")
    people = sorted(candidates)
    ranked = {seat: _ranked(people, seat, scores) for seat in seats}
    holder: dict[str, str | None] = dict.fromkeys(seats)
    if method == "priority":
        taken: set[str] = set()
        for seat in seats:
            best = next((c for c in ranked[seat] if c not in taken), None)
            holder[seat] = best
            if best is not None:
                taken.add(best)
    elif method == "optimal":
        holder.update(_optimal(people, sorted(seats), scores))
    else:
        raise ValueError(f"method must be priority or optimal, not {method!r}")
    seat_of = {c: s for s, c in holder.items() if c is not None}
    total = sum((scores[(c, s)] for c, s in seat_of.items()), 0)
    return Assignment(seat_of=seat_of, holder=holder, shortlists={s: ranked[s][:shortlist] for s in seats},
                      total=total)


def _ranked(people: list[str], seat: str, scores: dict[tuple[str, str], Any]) -> list[str]:
    """The candidates eligible for `seat`, best score first, then by key."""
    return sorted((c for c in people if (c, seat) in scores), key=lambda c: (-scores[(c, seat)], c))


def _optimal(people: list[str], seats: list[str], scores: dict[tuple[str, str], Any]) -> dict[str, str | None]:  # noqa: C901
    """The placement of the largest total score: the Hungarian method on costs, a row per seat
    and a column per person plus one "left empty" column per seat (cost 0). A placement costs its
    negated score; an ineligible pair costs more than any placement gains, so it is never taken."""
    if not people or not seats:
        return {}
    rows = seats
    cols: list[str | None] = [*people, *([None] * len(seats))]
    high = sum((abs(v) for v in scores.values()), 0) + 1

    def cost(seat: str, person: str | None) -> Any:
        if person is None:
            return 0
        return -scores[(person, seat)] if (person, seat) in scores else high

    n, m = len(rows), len(cols)
    u: list[Any] = [0] * (n + 1)
    v: list[Any] = [0] * (m + 1)
    match = [0] * (m + 1)  # column -> row (1-based), 0: free
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        match[0] = i
        j0 = 0
        least: list[Any] = [None] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = match[j0], None, 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = cost(rows[i0 - 1], cols[j - 1]) - u[i0] - v[j]
                if least[j] is None or reduced < least[j]:
                    least[j], way[j] = reduced, j0
                if delta is None or least[j] < delta:
                    delta, j1 = least[j], j
            assert delta is not None
            for j in range(m + 1):
                if used[j]:
                    u[match[j]] += delta
                    v[j] -= delta
                elif least[j] is not None:
                    least[j] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    out: dict[str, str | None] = {}
    for j in range(1, m + 1):
        person = cols[j - 1]
        if match[j] and person is not None and (person, rows[match[j] - 1]) in scores:
            out[rows[match[j] - 1]] = person
    return out


# ---- grouping: records into the groups a population rule is decided over -------------------

@dataclass(frozen=True)
class Grouped:
    """A group's records in input order (with their input positions), or a record's own error."""

    group: tuple[Any, ...] | None
    positions: list[int]
    records: list[Any]
    errors: dict[int, str] = field(default_factory=dict)  # input position -> why the record is not in a group


def group_records(records: Iterable[Any], group_of: Any, member_of: Any,
                  sorted_by_group: bool = False) -> Iterator[Grouped]:
    """Split `records` into groups by `group_of(record)` (a tuple, or None when the record has no
    group key), each member key `member_of(record)` (the `nip`) once per group.

    With `sorted_by_group` a group is yielded as soon as the next one starts, so memory holds one
    group at a time; a record of a group already passed is then that record's error. Otherwise
    groups are yielded at the end, in the order they first appeared. A record without a group key,
    or whose member key is already in its group, is yielded alone with its error (`group` None);
    the rest of its group is decided.
    """
    pending: dict[tuple[Any, ...], Grouped] = {}
    passed: set[tuple[Any, ...]] = set()
    seen: dict[tuple[Any, ...], set[Any]] = {}
    for position, record in enumerate(records):
        key = group_of(record)
        if key is None:
            yield _alone(position, record, "the record has no group key")
            continue
        if key in passed:
            yield _alone(position, record, f"group {_shown(key)} came earlier in the input, which was said to be "
                                           "sorted by group")
            continue
        member = member_of(record)
        members = seen.setdefault(key, set())
        if member in members:
            yield _alone(position, record, f"{member!r} is already a member of group {_shown(key)}")
            continue
        members.add(member)
        if sorted_by_group and pending and key not in pending:
            for done, ended in pending.items():  # the one group held: it has ended
                passed.add(done)
                del seen[done]
                yield ended
            pending.clear()
        current = pending.get(key)
        if current is None:
            current = pending[key] = Grouped(group=key, positions=[], records=[])
        current.positions.append(position)
        current.records.append(record)
    yield from pending.values()


def _alone(position: int, record: Any, why: str) -> Grouped:
    return Grouped(group=None, positions=[position], records=[record], errors={position: why})


def _shown(key: tuple[Any, ...]) -> str:
    return " / ".join(str(k) for k in key)
