"""The one route of a record: its text read by the one intake, decided, and handed on.

Every way records come in (`kinerja eval`, the batch processes, the cluster, the batch,
population and impact endpoints) goes through `decide_each` or `decide_population`: each
record's text is read by `jsontext.read_json` (within the caller's bounds), taken the fast way
(`Engine.read_plain`) when it is plainly valid and its record need not be kept as decoded, and
decided by the engine. What differs between them, how a result is written and kept, is left to
the caller, which gets each record (as decoded, to be kept) beside its result.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from kinerja_rules.decision import Decision, ErrorInfo, ErrorResult
from kinerja_rules.engine import Engine
from kinerja_rules.jsontext import UNBOUNDED, Bounds, Unread, read_json
from kinerja_rules.population_run import GroupReport

Unreadable = Callable[[int, Unread], ErrorInfo]
"""How a caller words a record that cannot be read, given its position (from 0) in what it sent."""


def _input_error(position: int, unread: Unread) -> ErrorInfo:
    return ErrorInfo(kind="input", message=f"invalid JSON: {unread.text()}")


class Intake:
    """How a caller's records are read: within `bounds`, an unreadable one worded by `unreadable`,
    and the fast way when `plain` (not when each record is kept as decoded)."""

    __slots__ = ("bounds", "plain", "unreadable")

    def __init__(self, bounds: Bounds = UNBOUNDED, unreadable: Unreadable = _input_error, plain: bool = True) -> None:
        self.bounds, self.unreadable, self.plain = bounds, unreadable, plain

    def records(self, policy: Any, texts: Iterable[Any]) -> Iterator[Any]:
        """Each of `texts` as a record: JSON text read (or its ErrorResult), an ErrorInfo as its
        ErrorResult, anything else (a record a table gave, an ErrorResult) as it is."""
        for position, text in enumerate(texts):
            if type(text) is bytes:
                text = read_json(text, self.bounds)
                if type(text) is Unread:
                    text = self.unreadable(position, text)
            if type(text) is ErrorInfo:
                yield ErrorResult(policy=policy.ref, error=text)
            else:
                yield text


def decide_each(engine: Engine, policy_id: str, texts: Iterable[Any], as_of: dt.date | None = None,
                explain: bool = False, unknown_fields: str | None = None,
                intake: Intake | None = None) -> Iterator[tuple[Any, Decision | ErrorResult]]:
    """Each record of `texts` with its result, in order. `texts` holds JSON texts, records a table
    gave or the ErrorInfo of one it could not give, or records decoded before (or their
    ErrorResult). Each comes back as the record as decoded (None for one that could not be read)
    and its Decision or ErrorResult. A bad record never stops the others."""
    intake = intake or Intake()
    policy = engine.policy(policy_id)
    decided, fits, plain = engine.decided, intake.bounds.fits, intake.plain
    for position, text in enumerate(texts):
        if type(text) is bytes:
            if plain and fits(text):
                clean = engine.read_plain(policy_id, text)
                if clean is not None:  # read and checked in C (most records): the same decision, sooner
                    yield clean, decided(policy, clean, as_of, explain, None, True)
                    continue
            text = read_json(text, intake.bounds)
            if type(text) is Unread:
                yield None, ErrorResult(policy=policy.ref, error=intake.unreadable(position, text))
                continue
        elif type(text) is ErrorInfo:
            yield None, ErrorResult(policy=policy.ref, error=text)
            continue
        elif type(text) is ErrorResult:  # read before, and refused there
            yield None, text
            continue
        yield text, decided(policy, text, as_of, explain, unknown_fields, False)


def decide_population(engine: Engine, policy_id: str, texts: Iterable[Any], groups: Mapping[str, Any] | None = None,
                      seats: Sequence[Any] | None = None, as_of: dt.date | None = None, explain: bool = False,
                      unknown_fields: str | None = None, sorted_by_group: bool = False,
                      intake: Intake | None = None) -> Iterator[tuple[Any, Decision | ErrorResult] | GroupReport]:
    """A population run over `texts` (read as `decide_each` reads them): each record (as decoded, or
    None) with its result in input order, then a GroupReport per group. Raises PopulationInputError
    when the group data or the seats cannot be used."""
    intake = intake or Intake()
    given: collections.deque[Any] = collections.deque()  # each record as decoded, in input order, till answered

    def records() -> Iterator[Any]:
        for record in intake.records(engine.policy(policy_id), texts):
            given.append(None if type(record) is ErrorResult else record)
            yield record

    for result in engine.evaluate_population(policy_id, records(), groups, seats, as_of, explain, unknown_fields,
                                             sorted_by_group):
        if isinstance(result, GroupReport):
            yield result
        else:
            yield given.popleft(), result
