"""'Did you mean' suggestions for misspelled names and keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def distance(a: str, b: str, limit: int = 3) -> int:
    """The Damerau–Levenshtein distance (adjacent swaps count one), or `limit` when it is at least that."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) >= limit:
            return limit
        previous2, previous = previous, current
    return min(previous[-1], limit)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most likely meant: within edit distance 2 (1 for short names), else difflib's pick."""
    pool = [str(c) for c in dict.fromkeys(candidates) if c != name]
    allowed = 1 if len(name) < 6 else 2
    scored = sorted((distance(name.lower(), c.lower()), c) for c in pool)
    if scored and scored[0][0] <= allowed:
        return scored[0][1]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str], shown: dict[str, str] | None = None) -> str:
    """Return `; did you mean 'x'?` for the closest candidate, or an empty string.

    `shown` maps a candidate to what to suggest instead (a field's name to its dotted path).
    """
    best = closest(name, candidates)
    if best is None:
        return ""
    return f"; did you mean {(shown or {}).get(best, best)!r}?"


def near_miss(name: str, declared: Iterable[str]) -> str | None:
    """The declared name `name` is a slip of: within Damerau–Levenshtein distance 2, or 1 when
    either name is shorter than 6 characters, ignoring case; None when none is that close."""
    low = name.lower()
    best, best_distance = None, 3
    for candidate in declared:
        allowed = 1 if min(len(name), len(candidate)) < 6 else 2
        if abs(len(candidate) - len(name)) > allowed:
            continue
        found = distance(low, candidate.lower(), allowed + 1)
        if found <= allowed and found < best_distance:
            best, best_distance = candidate, found
    return best
