"""The population stage's arithmetic: orderings and quotas (the kurva distribusi), with the
properties populations.md states: input order changes nothing, `enforce` meets every maximum by
moving only the bottom of the ordering one step at a time, and running it again changes nothing."""

from __future__ import annotations

import random
from decimal import Decimal
from itertools import permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinerja_rules.population import Limit, Member, apply_quota, assign, group_records, ordered

PREDIKAT = ("sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang")
BAIK_UNIT = [Limit(frozenset({"baik"}), "max", share=Decimal("0.7")),
             Limit(frozenset({"butuh_perbaikan", "kurang"}), "min", count=1)]
AT_MOST_20_SANGAT_BAIK = [Limit(frozenset({"sangat_baik"}), "max", share=Decimal("0.2"))]


def _group(categories: list[str], scores: list[int]) -> list[Member]:
    return [Member(key=f"{i:018d}", category=c, order=(-s,)) for i,
            (c, s) in enumerate(zip(categories, scores, strict=True))]


def test_a_unit_of_37_keeps_seven_sangat_baik_and_moves_the_lowest_ranked() -> None:
    members = _group(["sangat_baik"] * 10 + ["baik"] * 27, list(range(100, 63, -1)))
    result = apply_quota(members, PREDIKAT, AT_MOST_20_SANGAT_BAIK, "enforce")
    assert result.counts_before["sangat_baik"] == 10 and result.counts_after["sangat_baik"] == 7  # floor(20 % × 37)
    assert [m.rank for m in result.moved] == [10, 9, 8]  # the bottom three of the sangat_baik, lowest first
    assert all(m.before == "sangat_baik" and m.after == "baik" for m in result.moved)
    assert result.moved[0].reason == "rank 10 of 37; sangat_baik: at most floor(20 % × 37) = 7"
    assert result.violations == [] and result.infeasible == []


@pytest.mark.parametrize(("size", "kept"), [(1, 0), (4, 0), (5, 1), (37, 7)])
def test_a_share_rounds_to_a_head_count_down_to_zero(size: int, kept: int) -> None:
    members = _group(["sangat_baik"] * size, list(range(size)))
    result = apply_quota(members, PREDIKAT, AT_MOST_20_SANGAT_BAIK, "enforce")
    assert result.counts_after["sangat_baik"] == kept and len(result.moved) == size - kept


def test_report_flags_without_moving_and_a_minimum_is_never_invented() -> None:
    members = _group(["baik"] * 4, [90, 80, 70, 60])
    reported = apply_quota(members, PREDIKAT, BAIK_UNIT, "report")
    assert reported.final == {m.key: "baik" for m in members} and reported.moved == []
    assert reported.violations == ["baik: at most floor(70 % × 4) = 2, but 4",
                                   "butuh_perbaikan or kurang: at least 1, but 0"]
    enforced = apply_quota(members, PREDIKAT, BAIK_UNIT, "enforce")
    assert enforced.counts_after["baik"] == 2 and enforced.counts_after["butuh_perbaikan"] == 2
    assert enforced.violations == []  # the two moved down meet the minimum: nobody was placed to meet it


def test_the_worst_category_cannot_move_and_is_reported() -> None:
    members = _group(["sangat_kurang"] * 3, [3, 2, 1])
    result = apply_quota(members, PREDIKAT, [Limit(frozenset({"sangat_kurang"}), "max", count=1)], "enforce")
    assert result.moved == [] and result.infeasible == ["sangat_kurang: at most 1, but 3"]


def test_ties_are_broken_by_key_so_the_order_is_total() -> None:
    a, b = Member("b", "sangat_baik", (0,)), Member("a", "sangat_baik", (0,))
    assert [m.key for m in ordered([a, b])] == ["a", "b"]
    result = apply_quota([a, b], PREDIKAT, [Limit(frozenset({"sangat_baik"}), "max", count=1)], "enforce")
    assert [m.key for m in result.moved] == ["b"]


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="rounding must be one of"):
        apply_quota([], PREDIKAT, [], "report", rounding="down")
    with pytest.raises(ValueError, match="share a key"):
        apply_quota([Member("x", "baik", (0,)), Member("x", "baik", (1,))], PREDIKAT, [], "report")


LIMITS = st.lists(st.builds(
    Limit, categories=st.frozensets(st.sampled_from(PREDIKAT), min_size=1, max_size=2),
    bound=st.sampled_from(["max", "min"]),
    share=st.decimals(Decimal("0"), Decimal("1"), places=2)), max_size=4)
GROUPS = st.lists(st.tuples(st.sampled_from(PREDIKAT), st.integers(0, 20)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(GROUPS, LIMITS, st.sampled_from(["floor", "ceiling", "half_up"]), st.randoms())
def test_enforce_properties(group: list[tuple[str, int]], limits: list[Limit], rounding: str,
                            shuffle: random.Random) -> None:
    members = _group([c for c, _ in group], [s for _, s in group])
    result = apply_quota(members, PREDIKAT, limits, "enforce", rounding)
    shuffled = list(members)
    shuffle.shuffle(shuffled)
    assert apply_quota(shuffled, PREDIKAT, limits, "enforce", rounding) == result  # input order changes nothing
    size = len(members)
    for limit in limits:  # every maximum holds, or enforce says it cannot be met
        inside = sum(1 for c in result.final.values() if c in limit.categories)
        if limit.bound == "max" and inside > limit.head_count(size, rounding):
            assert any(text.startswith(limit.describe(size, rounding)) for text in result.infeasible)
    for move in result.moved:  # one step down at a time
        assert PREDIKAT.index(move.after) == PREDIKAT.index(move.before) + 1
    again = apply_quota([Member(m.key, result.final[m.key], m.order) for m in members], PREDIKAT, limits, "enforce",
                        rounding)
    assert again.final == result.final or again.infeasible  # running it on its own result changes nothing
    if not result.infeasible:
        assert again.moved == []


@settings(max_examples=150, deadline=None)
@given(GROUPS, st.sampled_from(PREDIKAT[:-1]), st.integers(0, 10))
def test_one_maximum_moves_exactly_the_bottom_of_its_category_one_step(group: list[tuple[str, int]], category: str,
                                                                       allowed: int) -> None:
    members = _group([c for c, _ in group], [s for _, s in group])
    limit = Limit(frozenset({category}), "max", count=allowed)
    result = apply_quota(members, PREDIKAT, [limit], "enforce")
    inside = [m for m in ordered(members) if m.category == category]
    bottom = {m.key for m in inside[allowed:]}
    assert {m.key for m in result.moved} == bottom
    below = PREDIKAT[PREDIKAT.index(category) + 1]
    assert all(result.final[key] == below for key in bottom)
    assert all(result.final[m.key] == m.category for m in members if m.key not in bottom)


# ---- assignment -------------------------------------------------------------------------


def test_priority_fills_the_first_seat_with_the_best_eligible_candidate_first() -> None:
    scores = {("ani", "kabid"): Decimal(90), ("budi", "kabid"): Decimal(80), ("ani", "kasi"): Decimal(85),
              ("budi", "kasi"): Decimal(84), ("citra", "kasi"): Decimal(60)}
    result = assign(["budi", "ani", "citra"], ["kabid", "kasi"], scores, "priority")
    assert result.holder == {"kabid": "ani", "kasi": "budi"} and result.seat_of == {"ani": "kabid", "budi": "kasi"}
    assert result.shortlists == {"kabid": ["ani", "budi"], "kasi": ["ani", "budi", "citra"]}
    assert assign(["budi", "ani", "citra"], ["kabid", "kasi"], scores, "optimal").holder == result.holder


def test_optimal_gives_up_the_best_single_pair_for_a_better_whole() -> None:
    scores = {("ani", "kabid"): Decimal(90), ("ani", "kasi"): Decimal(89), ("budi", "kabid"): Decimal(88),
              ("budi", "kasi"): Decimal(10)}
    priority = assign(["ani", "budi"], ["kabid", "kasi"], scores, "priority")
    optimal = assign(["ani", "budi"], ["kabid", "kasi"], scores, "optimal")
    assert priority.holder == {"kabid": "ani", "kasi": "budi"} and priority.total == 100
    assert optimal.holder == {"kabid": "budi", "kasi": "ani"} and optimal.total == 177


def test_a_seat_nobody_is_eligible_for_stays_empty() -> None:
    result = assign(["ani"], ["kabid", "kasi"], {("ani", "kasi"): Decimal(1)}, "optimal")
    assert result.holder == {"kabid": None, "kasi": "ani"}
    with pytest.raises(ValueError, match="named twice"):
        assign(["ani", "ani"], ["kasi"], {}, "priority")
    with pytest.raises(ValueError, match="priority or optimal"):
        assign(["ani"], ["kasi"], {}, "best")  # type: ignore[arg-type]


PAIRS = st.dictionaries(st.tuples(st.sampled_from("abcdef"), st.sampled_from("wxyz")),
                        st.integers(0, 9).map(Decimal), max_size=24)


@settings(max_examples=200, deadline=None)
@given(PAIRS, st.sampled_from(["priority", "optimal"]), st.randoms())
def test_an_assignment_never_double_books_nor_places_the_ineligible(scores: dict[tuple[str, str], Decimal],
                                                                     method: str, shuffle: random.Random) -> None:
    people, seats = list("abcdef"), list("wxyz")
    result = assign(people, seats, scores, method)  # type: ignore[arg-type]
    assert len(set(result.seat_of.values())) == len(result.seat_of)  # no seat twice
    assert all((person, seat) in scores for person, seat in result.seat_of.items())  # only the eligible
    shuffled = list(people)
    shuffle.shuffle(shuffled)
    assert assign(shuffled, seats, scores, method) == result  # type: ignore[arg-type]
    if method == "optimal":  # no placement of the eligible does better
        best = Decimal(0)
        for order in permutations(people, len(seats)):
            best = max(best,
                       sum((scores[(p, s)] for p, s in zip(order, seats, strict=True) if (p, s) in scores), Decimal(0)))
        assert result.total == best


# ---- grouping -------------------------------------------------------------------------------


def _unit(record: dict[str, str]) -> tuple[str, str] | None:
    return (record["unit"], record["periode"]) if "unit" in record else None


def test_records_group_by_key_and_a_bad_record_fails_alone() -> None:
    records = [{"unit": "a", "periode": "2025-01", "nip": "1"}, {"unit": "b", "periode": "2025-01", "nip": "1"},
               {"periode": "2025-01", "nip": "2"}, {"unit": "a", "periode": "2025-01", "nip": "1"},
               {"unit": "a", "periode": "2025-02", "nip": "1"}, {"unit": "a", "periode": "2025-01", "nip": "3"}]
    out = list(group_records(records, _unit, lambda r: r["nip"]))
    errors = {p: e for g in out for p, e in g.errors.items()}
    assert errors == {2: "the record has no group key", 3: "'1' is already a member of group a / 2025-01"}
    groups = {g.group: g.positions for g in out if g.group is not None}
    assert groups == {("a", "2025-01"): [0, 5], ("b", "2025-01"): [1], ("a", "2025-02"): [4]}


def test_sorted_input_holds_one_group_at_a_time() -> None:
    held: list[int] = []
    records = [{"unit": u, "periode": "2025-01", "nip": str(i)} for u in "abc" for i in range(3)]
    stream = group_records(iter(records), _unit, lambda r: r["nip"], sorted_by_group=True)
    for group in stream:
        held.append(len(group.records))
    assert held == [3, 3, 3]
    late = records + [{"unit": "a", "periode": "2025-01", "nip": "9"}]
    out = list(group_records(late, _unit, lambda r: r["nip"], sorted_by_group=True))
    assert out[-2].errors == {9: "group a / 2025-01 came earlier in the input, which was said to be sorted by group"}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), max_size=30), st.randoms())
def test_grouping_keeps_every_record_once(pairs: list[tuple[str, str]], shuffle: random.Random) -> None:
    records = [{"unit": u, "periode": "p", "nip": n} for u, n in pairs]
    out = list(group_records(records, _unit, lambda r: r["nip"]))
    assert sorted(p for g in out for p in g.positions) == list(range(len(records)))
    for g in out:
        if g.group is not None:
            assert len({r["nip"] for r in g.records}) == len(g.records)
