"""Deciding batches: in the service process, or spread over worker processes for large ones.

Evaluation is CPU-bound Python, so one process decides on one core. A `BatchPool` lets a
single service process use the machine's other cores for large batches: each pool process
compiles the checked policies in service (shipped to it, not parsed or checked again),
decides a slice of the records and sends back encoded results. A pool process whose policy
digest differs from the one in service (a reload landed in between) is not trusted: the batch
is decided in the service process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules import (
    Decision,
    Engine,
    ErrorInfo,
    ErrorResult,
    EvaluationError,
    FieldError,
    GroupReport,
    PopulationInputError,
    RecordError,
    discover,
)
from kinerja_rules.boundary import set_call_budget
from kinerja_rules.deciding import Intake, decide_each
from kinerja_rules.deciding import decide_population as decide_population_of
from kinerja_rules.decision import ENCODER
from kinerja_rules.engine import Shipment
from kinerja_rules.jsontext import Unread
from kinerja_rules.recording import Chunker, Recording
from kinerja_rules.server.bodies import Limits, bounds, unread_problem
from kinerja_rules.store import IDS, Chunk, Row

_ENCODER = ENCODER
_log = logging.getLogger("kinerja_rules.server")
_engine: Engine | None = None  # the pool process's own engine


class TooLarge(enum.Enum):
    TOO_LARGE = "too large"


TOO_LARGE = TooLarge.TOO_LARGE  # the results of a batch passed the response limit


BatchAnswer = tuple[bytes, int, list[Row], list[Chunk]]
"""A batch's encoded results (comma-separated, in order), how many failed, and the rows (and
chunks) that record its decisions (none unless recording)."""


def _intake(limits: Limits, offset: int, plain: bool) -> Intake:
    """How a batch's records are read: within `limits`, one that cannot be read answered as its problem."""
    def unreadable(position: int, unread: Unread) -> ErrorInfo:
        problem = unread_problem(unread, f"records[{position + offset}]")
        return ErrorInfo(kind="input", message=problem.detail, fields=problem.extra.get("errors", []))

    return Intake(bounds(limits), unreadable, plain)


def decide(engine: Engine, policy_id: str, records: Sequence[msgspec.Raw | bytes], as_of: dt.date | None,
           explain: bool, limits: Limits, offset: int = 0, recording: Recording | None = None) -> BatchAnswer | None:
    """The encoded results of `records`, how many failed and their records' rows; None as soon as
    they pass `limits.max_response_bytes` (the rest is not decided)."""
    out: list[bytes] = []
    rows: list[Row] = []
    chunker = Chunker(recording, records, out) if recording is not None and recording.chunked else None
    ids = iter(IDS.take(len(records)) if chunker is not None else ())
    # a record kept row by row (redacted) is stored as decoded; a chunk keeps its text as it came
    intake = _intake(limits, offset, recording is None or chunker is not None)
    failed = size = 0
    for record, result in decide_each(engine, policy_id, (bytes(raw) for raw in records), as_of, explain,
                                      limits.unknown_fields, intake):
        if isinstance(result, ErrorResult):
            failed += 1
            encoded = b'{"result":"error",' + _ENCODER.encode(result)[1:]  # the discriminator of a batch item
        else:
            if chunker is not None:
                result = msgspec.structs.replace(result, decision_id=next(ids))
            elif recording is not None:
                result = recording.keep(result, record, rows)
            encoded = b'{"result":"decision",' + _ENCODER.encode(result)[1:]
        size += len(encoded) + 1
        if size > limits.max_response_bytes:
            return None
        out.append(encoded)
        if chunker is not None:
            chunker.add(len(out) - 1, result, record)
    if chunker is not None:
        chunker.close()
        return b",".join(out), failed, [], chunker.chunks
    return b",".join(out), failed, rows, []


def decode_records(policy: Any, records: Sequence[msgspec.Raw], limits: Limits) -> list[Any]:
    """Each record decoded on its own, or the ErrorResult of one that breaks a limit."""
    return list(_intake(limits, 0, False).records(policy, (bytes(raw) for raw in records)))


PopulationAnswer = tuple[bytes, bytes, int, list[Row]]


def decide_population(engine: Engine, policy_id: str, records: Sequence[msgspec.Raw], groups: dict[str, Any] | None,
                      seats: list[Any] | None, as_of: dt.date | None, explain: bool,
                      limits: Limits, recording: Recording | None = None) -> PopulationAnswer | None:
    """The encoded results of a population run, comma-separated in input order, its group reports,
    how many records failed, and the rows recording its decisions (none unless `recording`); None as
    soon as they pass `limits.max_response_bytes`. Raises PopulationInputError when the group data
    or the seats cannot be used."""
    out: list[bytes] = []
    reports: list[bytes] = []
    rows: list[Row] = []
    failed = size = 0
    for item in decide_population_of(engine, policy_id, (bytes(raw) for raw in records), groups, seats, as_of,
                                     explain, limits.unknown_fields, intake=_intake(limits, 0, False)):
        if isinstance(item, GroupReport):
            encoded = _ENCODER.encode(item)
            reports.append(encoded)
        else:
            record, result = item
            if isinstance(result, ErrorResult):
                failed += 1
                encoded = b'{"result":"error",' + _ENCODER.encode(result)[1:]
            else:
                if recording is not None:
                    result = recording.keep(result, record, rows)
                encoded = b'{"result":"decision",' + _ENCODER.encode(result)[1:]
            out.append(encoded)
        size += len(encoded) + 1
        if size > limits.max_response_bytes:
            return None
    return b",".join(out), b",".join(reports), failed, rows


def _start(shipment: Shipment, plugins: list[str], call_seconds: float | None = None) -> None:
    global _engine
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the service, which stops this process quietly
    _engine = Engine.from_shipment(shipment, discover([Path(p) for p in plugins]))
    set_call_budget(call_seconds)  # tasks run in this process's main thread, where the timer's signal lands


Outcome = tuple[Any, ...]
"""A single record's result from a pool process: ("decision", Decision), ("record", [FieldError]),
("evaluation", detail, where, paths), or ("stale", digest) when it holds another version."""


def _evaluate_one(policy_id: str, digest: str, record: Any, as_of: dt.date | None, explain: bool,
                  unknown_fields: str | None) -> Outcome:
    assert _engine is not None
    policy = _engine.policy(policy_id)
    if policy.digest != digest:
        return ("stale", policy.digest)
    try:
        return ("decision", _engine.evaluate(policy_id, record, as_of, explain, unknown_fields))
    except RecordError as exc:
        return ("record", list(exc.errors))
    except EvaluationError as exc:
        return ("evaluation", exc.detail, exc.where, list(exc.paths))


def unpack(outcome: Outcome) -> Decision:
    """The decision of an outcome, or the error it holds raised as the service process would raise it."""
    if outcome[0] == "record":
        raise RecordError(outcome[1])
    if outcome[0] == "evaluation":
        raise EvaluationError(outcome[1], where=outcome[2], paths=outcome[3])
    decision: Decision = outcome[1]
    return decision


def _ready() -> dict[str, str]:
    assert _engine is not None
    return {p.id: p.digest for p in _engine.policies()}


def _decide_slice(policy_id: str, digest: str, payload: bytes, as_of: dt.date | None, explain: bool, limits: Limits,
                  offset: int, recording: Recording | None) -> tuple[str, bytes, int, list[Row], list[Chunk]]:
    """A slice's digest, results, failures and rows; failures -1 when the results passed the response limit."""
    assert _engine is not None
    policy = _engine.policy(policy_id)
    if policy.digest != digest:
        return policy.digest, b"", 0, [], []
    records = msgspec.json.decode(payload, type=list[msgspec.Raw])
    answer = decide(_engine, policy_id, records, as_of, explain, limits, offset, recording)
    return (policy.digest, b"", -1, [], []) if answer is None else (policy.digest, *answer)


def _decide_population_in(policy_id: str, digest: str, payload: bytes, groups: dict[str, Any] | None,
                          seats: list[Any] | None, as_of: dt.date | None, explain: bool, limits: Limits,
                          recording: Recording | None) -> tuple[str, PopulationAnswer | list[FieldError] | None]:
    """A population run in this process: the digest it was decided with, and its answer, the
    reasons the group data or seats cannot be used, or None past the response limit."""
    assert _engine is not None
    policy = _engine.policy(policy_id)
    if policy.digest != digest:
        return policy.digest, None
    records = msgspec.json.decode(payload, type=list[msgspec.Raw])
    try:
        return digest, decide_population(_engine, policy_id, records, groups, seats, as_of, explain, limits,
                                         recording)
    except PopulationInputError as exc:  # its errors travel; the exception itself does not pickle back whole
        return digest, list(exc.errors)


class BatchPool:
    """Worker processes that compile the policies in service (shipped to them checked) and decide
    slices of batches."""

    def __init__(self, processes: int, shipment: Shipment, plugins: Sequence[Path] = (),
                 threshold: int = 256, call_seconds: float | None = None,
                 on_broken: Callable[[], None] | None = None) -> None:
        self.processes = processes
        self.threshold = threshold  # smaller batches cost more to ship than to decide here
        self.call_seconds = call_seconds
        # past this, a record is stuck where the timer cannot reach (C code): its process is killed
        self.record_seconds = max(10.0, 10 * call_seconds) if call_seconds is not None else None
        self.on_broken = on_broken  # the service replaces a pool whose process died
        self._executor = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start,
                                             initargs=(shipment, [str(p) for p in plugins], call_seconds))
        self._manager: threading.Thread | None = None  # kept by `close`
        self.digests: dict[str, str] = {}
        self.ready = 0  # processes up, with the policies compiled
        self.slices = 0  # slices decided, for tests and curiosity

    async def start(self) -> None:
        """Bring every process up (each compiles the policies) before the first batch needs it."""
        loop = asyncio.get_running_loop()
        try:
            results = await asyncio.gather(*(loop.run_in_executor(self._executor, _ready)
                                              for _ in range(self.processes)))
        except Exception as exc:  # a pool that cannot start leaves batches to the service process
            _log.warning("batch processes did not start (%s: %s); batches are decided in-process",
                         type(exc).__name__, exc)
            return
        self.digests = results[0]
        self.ready = self.processes
        _log.info("%d batch processes ready", self.processes)

    def usable(self, policy_id: str, digest: str, size: int, calls_plugins: bool = False) -> bool:
        """Whether these processes decide `size` records of this policy version; always, for a policy
        that runs plugin code (its calls are bounded in time only there)."""
        return (calls_plugins or size >= self.threshold) and self.digests.get(policy_id) == digest

    async def evaluate(self, policy_id: str, digest: str, record: Any, as_of: dt.date | None, explain: bool,
                       unknown_fields: str | None) -> Outcome | None:
        """One record decided in a process; None when none can decide it (the caller decides it)."""
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, _evaluate_one, policy_id, digest, record, as_of, explain,
                                          unknown_fields)
            outcome = await asyncio.wait_for(future, self.record_seconds)
        except TimeoutError:
            _log.warning("a record of %s did not finish within %g s; its process is killed and the processes "
                         "restart", policy_id, self.record_seconds)
            self._broken(kill=True)
            return ("evaluation", f"deciding the record did not finish within {self.record_seconds:g} s",
                    "plugin code", [])
        except Exception as exc:
            self._gave_up(exc, "a record")
            return None
        if outcome[0] == "stale":
            self.digests.pop(policy_id, None)
            return None
        return outcome

    def _gave_up(self, exc: Exception, what: str) -> None:
        """Leave `what` to the service process: a dead process (killed, out of memory) has the
        processes replaced; any other failure concerns this work only, and the processes stay."""
        if isinstance(exc, BrokenProcessPool):
            _log.warning("a batch process died (%s); %s is decided in-process while the processes restart",
                         exc, what)
            self._broken()
        else:
            _log.warning("batch processes could not decide %s (%s: %s); it is decided in-process",
                         what, type(exc).__name__, exc)

    def _broken(self, kill: bool = False) -> None:
        """Stop using these processes (killing them, if asked) and let the service start new ones."""
        self.digests, self.ready = {}, 0
        if kill:
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.kill()
        if self.on_broken is not None:
            self.on_broken()

    async def decide(self, policy_id: str, digest: str, records: Sequence[msgspec.Raw], as_of: dt.date | None,
                     explain: bool, limits: Limits,
                     recording: Recording | None = None) -> BatchAnswer | None | TooLarge:
        """Decide `records` across the processes; None when a process holds another version (or
        cannot decide them), TOO_LARGE when the results pass the response limit."""
        loop = asyncio.get_running_loop()
        step = -(-len(records) // self.processes)
        slices = [(start, b"[" + b",".join(records[start:start + step]) + b"]")
                  for start in range(0, len(records), step)]
        try:
            answers = await asyncio.gather(*(
                loop.run_in_executor(self._executor, _decide_slice, policy_id, digest, payload, as_of, explain,
                                     limits, start, recording) for start, payload in slices))
        except Exception as exc:
            self._gave_up(exc, "a batch")
            return None
        if any(found != digest for found, *_ in answers):
            self.digests.pop(policy_id, None)
            return None
        self.slices += len(answers)
        if any(failed < 0 for _, _, failed, _, _ in answers) or \
                sum(len(part) + 1 for _, part, *_ in answers) > limits.max_response_bytes:
            return TOO_LARGE
        return (b",".join(part for _, part, *_ in answers if part), sum(failed for _, _, failed, *_ in answers),
                [row for *_, rows, _ in answers for row in rows], [c for *_, chunks in answers for c in chunks])

    async def population(self, policy_id: str, digest: str, records: Sequence[msgspec.Raw],
                         groups: dict[str, Any] | None, seats: list[Any] | None, as_of: dt.date | None,
                         explain: bool, limits: Limits,
                         recording: Recording | None = None) -> PopulationAnswer | None | TooLarge:
        """A population run in one process, where each plugin call has its time budget; None when no
        process can decide it (the caller decides it), TOO_LARGE past the response limit. Raises
        PopulationInputError for group data or seats that cannot be used."""
        loop = asyncio.get_running_loop()
        payload = b"[" + b",".join(records) + b"]"
        try:
            found, answer = await loop.run_in_executor(self._executor, _decide_population_in, policy_id, digest,
                                                       payload, groups, seats, as_of, explain, limits, recording)
        except Exception as exc:
            self._gave_up(exc, "a population run")
            return None
        if found != digest:
            self.digests.pop(policy_id, None)
            return None
        if isinstance(answer, list):
            raise PopulationInputError(answer)
        return TOO_LARGE if answer is None else answer

    def close(self, wait: bool = False) -> None:
        """Stop the processes once their current slices are done; `wait` for them to exit."""
        self._manager = manager_of(self._executor)
        self._executor.shutdown(wait=wait, cancel_futures=True)

    @property
    def closing(self) -> bool:
        """Closed without waiting, and its manager thread is still at work."""
        return self._manager is not None and self._manager.is_alive()

    def join(self, seconds: float = 30.0) -> None:
        """Wait for a pool closed without waiting to finish closing."""
        if self._manager is not None:
            self._manager.join(seconds)


def manager_of(executor: ProcessPoolExecutor) -> threading.Thread | None:
    """The thread that manages `executor`'s processes. A pool shut down without waiting forgets it,
    and Python's exit then wakes it without a lock while it closes its wake-up pipe (an OSError
    printed at exit, now and then); whoever shuts a pool down so keeps it, and joins it before exit."""
    thread = getattr(executor, "_executor_manager_thread", None)
    return thread if isinstance(thread, threading.Thread) else None
