"""Many records in, a decision each out, on every core.

`json_items` reads records as JSON texts, not yet decoded: JSON Lines, one document, or an
array, streamed element by element so that memory does not grow with the file. `decide_block`
turns a block of them into output lines: decode, check, evaluate, encode, exactly as one
process would. `run` hands blocks to worker processes (`jobs`) and writes what comes back in
input order, so the output of `--jobs 8` is byte for byte that of `--jobs 1`.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

import msgspec

from kinerja_rules.deciding import Intake, decide_each
from kinerja_rules.decision import ErrorInfo, ErrorResult, to_json
from kinerja_rules.engine import Engine, Shipment, ship
from kinerja_rules.errors import FieldError
from kinerja_rules.jsontext import Unread, not_utf8, read_json
from kinerja_rules.parts import Part, items_of

BLOCK_RECORDS = 256
"""Records decided together: enough that shipping a block to a process costs little beside deciding it."""
MAX_RECORD_BYTES = 16 * 1024 * 1024
"""The largest record of a JSON array (larger: that record's error, and the array is not read further)."""
_READ_BYTES = 1024 * 1024  # an array is read this much at a time
_UNREADABLE = (msgspec.DecodeError, RecursionError, UnicodeDecodeError, ValueError)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])

Item = tuple[int, Any, str]
"""A record: its line (JSON Lines) or position (an array, from 1); its JSON text (bytes), or an
ErrorInfo saying why it cannot be read; and where it is, for an error that it does not read
(" on line 7", " in record 6")."""


def decode(raw: bytes, line: int, what: str) -> Any:
    """One record of an input (`jsontext.read_json`), or the ErrorInfo saying why it cannot be read
    (never an exception); `what` says where it is (" on line 7")."""
    value = read_json(raw)
    return unreadable(value, line, what) if type(value) is Unread else value


def unreadable(unread: Unread, line: int, what: str) -> ErrorInfo:
    """The error of a record of an input that cannot be read, on `line` (`what`: " on line 7")."""
    if unread.problem == "duplicate-key":
        path = unread.path or "$"
        return ErrorInfo(kind="input", message=f"invalid JSON{what}: {path} {unread.reason}", line=line,
                         fields=[FieldError(path=path, message=unread.reason)])
    return ErrorInfo(kind="input", message=f"invalid JSON{what}: {unread.text()}", line=line)


# ---- reading ----

class Source:
    """The records of a stream as JSON texts, and how far through it reading has come (for progress)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.consumed = 0  # bytes read so far

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.consumed += len(data)
        return data

    def _lines(self, head: bytes) -> Iterator[bytes]:
        """The lines of `head` (read already) and of the rest of the stream; a line longer than
        MAX_RECORD_BYTES is read no further (the rest is skipped, not held) and given as TOO_LONG."""
        *whole, tail = head.split(b"\n")
        for line in whole:
            yield line + b"\n" if len(line) < MAX_RECORD_BYTES else TOO_LONG
        while line := self.stream.readline(MAX_RECORD_BYTES + 1):
            self.consumed += len(line)
            if tail:
                line, tail = tail + line, b""
            if len(line) > MAX_RECORD_BYTES:
                if not line.endswith(b"\n"):  # the rest of the line is skipped, not held
                    while (more := self.stream.readline(_READ_BYTES)) and not more.endswith(b"\n"):
                        self.consumed += len(more)
                    self.consumed += len(more)
                line = TOO_LONG
            yield line
        if tail:
            yield tail if len(tail) <= MAX_RECORD_BYTES else TOO_LONG

    def items(self) -> Iterator[Item]:
        """(line, JSON text or ErrorInfo, where it is for an error) from one JSON document, an
        array, or JSON Lines.

        Every JSON Lines line gets its own result, whatever it holds; a first line that does not
        read is JSON Lines too when the next line reads on its own (else it starts one document
        written over several lines). An array's records are numbered from 1.
        """
        head = self.read(_READ_BYTES)  # an array may be one line of any length: it is not read by lines
        text = head.lstrip()
        if text.startswith(b"["):
            yield from self._array(text[1:], 1 + head[:len(head) - len(text)].count(b"\n"))
            return
        numbered = enumerate(self._lines(head), start=1)
        first, first_line = b"", 0
        for number, raw in numbered:
            if raw.strip():
                first, first_line = raw, number
                break
        if not first:
            return
        if first is not TOO_LONG and isinstance(decode(first, first_line, ""), ErrorInfo):
            second, second_line = b"", 0
            for number, raw in numbered:
                if raw.strip():
                    second, second_line = raw, number
                    break
            if second and second is not TOO_LONG and isinstance(decode(second, second_line, ""), ErrorInfo):
                yield first_line, self._document(first + second, numbered, first_line), ""  # one record, several lines
                return
            yield _line_item(first_line, first)
            if second:
                yield _line_item(second_line, second)
        else:
            yield _line_item(first_line, first)
        for number, raw in numbered:
            if raw.strip():
                yield _line_item(number, raw)

    @staticmethod
    def _document(head: bytes, lines: Iterator[tuple[int, bytes]], first_line: int) -> bytes | ErrorInfo:
        """One JSON document written over lines, `head` its first ones: its text, or its error past
        MAX_RECORD_BYTES (the rest of the input then not read)."""
        parts, size = [head], len(head)
        for _, raw in lines:
            size += len(raw)
            if raw is TOO_LONG or size > MAX_RECORD_BYTES:
                return ErrorInfo(kind="input", message=f"invalid JSON: the document is longer than "
                                                       f"{MAX_RECORD_BYTES:,} bytes", line=first_line)
            parts.append(raw)
        return b"".join(parts)

    def _first_element(self, rest: bytes) -> tuple[bytes | None, bytes | None]:
        """The first element of the array text `rest` (None when longer than MAX_RECORD_BYTES: it is
        skipped, read on without being held), and the text after its comma (None: the array or the
        input ended)."""
        scan = _ElementEnd()
        end = scan.find(rest)
        element = rest[:end].strip() if end is not None and end <= MAX_RECORD_BYTES else None
        while end is None and (more := self.read(_READ_BYTES)):
            end, rest = scan.find(more), more
        if end is None or rest[end:end + 1] == b"]":
            return element, None
        return element, rest[end + 1:]

    def _array(self, rest: bytes, first_line: int) -> Iterator[Item]:
        """The elements of an array whose text after `[` begins with `rest`, read a megabyte at a time."""
        position = 0
        ended = False
        while True:
            while not ended and len(rest) < _READ_BYTES:
                more = self.read(_READ_BYTES)
                ended = not more
                rest += more
            if not ended:
                cut = _whole_elements(rest)
                if cut is None:  # no whole element yet: one is longer than what is read
                    if len(rest) > MAX_RECORD_BYTES:  # that record's error; the ones after it are read
                        element, after = self._first_element(rest)
                        position += 1
                        yield (position, element, f" in record {position - 1}") if element is not None else (
                            position, _broken(position - 1, f"a record is longer than {MAX_RECORD_BYTES} bytes",
                                              first_line), "")
                        if after is None:
                            return
                        rest = after
                        continue
                    more = self.read(max(_READ_BYTES, len(rest)))  # doubling: few tries for a long record
                    ended = not more
                    rest += more
                    continue
                elements = _RAW_LIST.decode(b"[" + rest[:cut] + b"]")
                rest = rest[cut + 1:]
            else:  # the last elements, and the closing bracket
                try:
                    elements = _RAW_LIST.decode(b"[" + rest)
                except _UNREADABLE as exc:
                    yield position + 1, _broken(position, not_utf8(rest) or str(exc)[:300], first_line), ""
                    return
            for element in elements:
                position += 1
                yield position, bytes(element), f" in record {position - 1}"
            if ended:
                return


_STRUCTURE = re.compile(rb'[\[\]{},"]')
_IN_STRING = re.compile(rb'[\\"]')


class _ElementEnd:
    """Where an array's element ends, in its text read piece by piece (nothing of it held): the `,`
    or `]` after it at its own depth, outside strings. The scan stops at the structure and the
    quotes; what lies between them is skipped in C."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the last piece ended inside a string on a backslash

    def find(self, text: bytes) -> int | None:
        """The position in `text` (the next piece) of the comma or bracket ending the element, or None."""
        pos, size = 0, len(text)
        if self.escaped and size:
            pos, self.escaped = 1, False
        while pos < size:
            if self.in_string:
                found = _IN_STRING.search(text, pos)
                if found is None:
                    return None
                if found.group() == b"\\":
                    if found.end() >= size:
                        self.escaped = True
                        return None
                    pos = found.end() + 1
                    continue
                self.in_string, pos = False, found.end()
                continue
            found = _STRUCTURE.search(text, pos)
            if found is None:
                return None
            char = found.group()
            if char == b'"':
                self.in_string = True
            elif char in (b"[", b"{"):
                self.depth += 1
            elif self.depth == 0:  # a comma, or the array's closing bracket
                return found.start()
            elif char in (b"]", b"}"):
                self.depth -= 1
            pos = found.end()
        return None


TOO_LONG = b"\0too long"  # a JSON Lines line past MAX_RECORD_BYTES (as read: never valid JSON, never blank)


def _line_item(number: int, raw: bytes) -> Item:
    """The item of a JSON Lines line: its text, or the error of one too long to read."""
    if raw is TOO_LONG:
        return number, ErrorInfo(kind="input", message=f"invalid JSON on line {number}: the line is longer than "
                                                       f"{MAX_RECORD_BYTES:,} bytes", line=number), ""
    return number, raw, f" on line {number}"


def _broken(position: int, reason: str, first_line: int) -> ErrorInfo:
    """An array that stops reading after `position` records."""
    where = "" if position == 0 else f" after record {position - 1}"
    return ErrorInfo(kind="input", message=f"invalid JSON{where}: {reason}",
                     line=first_line if position == 0 else position + 1)


def _whole_elements(text: bytes) -> int | None:
    """The position of the last comma in `text` that ends a whole number of array elements, or None.

    The text up to a comma is whole elements exactly when `[` + it + `]` decodes: a comma inside a
    string or a nested value leaves something open. So msgspec finds the boundary, in C; commas
    after a `}` are tried first (records are objects), then any, a bounded number of tries each.
    """
    for after in (b"}", None):
        end, tries = len(text), 0
        while tries < 16:
            comma = text.rfind(b",", 0, end)
            if comma < 0:
                break
            end = comma
            before = comma - 1
            while before >= 0 and text[before] in b" \t\r\n":
                before -= 1
            if after is not None and text[before:before + 1] != after:
                continue
            tries += 1
            try:
                _RAW_LIST.decode(b"[" + text[:comma] + b"]")
            except _UNREADABLE:
                continue
            return comma
    return None


# ---- deciding ----

@dataclass(frozen=True)
class Task:
    """How each record is decided and written."""

    policy_id: str
    as_of: dt.date | None = None
    explain: bool = False
    explain_text: bool = False
    unknown_fields: str | None = None
    lang: str = "en"


Keep = Callable[[Any, Any], Any]
"""`kinerja eval --record`: given a decision and its record, the decision as kept (with its id)."""


def decide_block(engine: Engine, task: Task, items: Iterable[Item], keep: Keep | None = None) -> tuple[bytes, int]:
    """The output of `items` (a line each, or a text for --explain-text) and how many failed."""
    from kinerja_rules.evaluation.decide import in_language
    from kinerja_rules.evaluation.tracing import explain_text

    items = items if isinstance(items, list) else list(items)
    policy = engine.policy(task.policy_id)
    intake = Intake(unreadable=lambda i, unread: unreadable(unread, items[i][0], items[i][2]), plain=keep is None)
    results = decide_each(engine, task.policy_id, (item for _, item, _ in items), task.as_of,
                          task.explain or task.explain_text, task.unknown_fields, intake)
    out: list[bytes] = []
    failures = 0
    for (line, _, _), (record, result) in zip(items, results, strict=True):
        if isinstance(result, ErrorResult):
            failures += 1
            error = result.error
            if record is not None:  # decided: its line said (one that could not be read names its own)
                error = msgspec.structs.replace(error, line=line)
            error = in_language(error, task.lang, policy)
            out.append(to_json(msgspec.structs.replace(result, error=error)) + b"\n")
            continue
        if keep is not None:
            result = keep(result, record)
        if task.explain_text:
            out.append((explain_text(result, policy=policy, lang=task.lang) + "\n\n").encode())
        else:
            out.append(to_json(result) + b"\n")
    return b"".join(out), failures


_worker: tuple[Engine, Task] | None = None  # what a worker process decides with


def _start_worker(shipment: Shipment | None, plugins: list[str], task: Task) -> None:
    global _worker
    if shipment is not None:  # a spawned process compiles the policy shipped to it, checked
        from pathlib import Path

        from kinerja_rules.engine import discover

        _worker = (Engine.from_shipment(shipment, discover([Path(p) for p in plugins])), task)
    elif _worker is not None:
        _worker = (_worker[0], task)


class Parts(NamedTuple):
    """An input that the processes deciding it read themselves, part by part (see `parts.py`)."""

    parts: Iterable[Part]


def _decide_in_worker(unit: list[Item] | Part) -> tuple[bytes, int, int]:
    """A block of items, or a part this process reads first: its output, failures and records."""
    assert _worker is not None
    engine, task = _worker
    items = unit if isinstance(unit, list) else items_of(unit, engine.policy(task.policy_id))
    return (*decide_block(engine, task, items), len(items))


def blocks(items: Iterable[Item], size: int = BLOCK_RECORDS) -> Iterator[list[Item]]:
    block: list[Item] = []
    for item in items:
        block.append(item)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


class Progress:
    """Records, rate and time left on a terminal, once a run has taken a few seconds; silent otherwise."""

    def __init__(self, stream: IO[str] | None, total_bytes: int | None, source: Source | None,
                 after: float = 3.0) -> None:
        self.stream, self.total, self.source = stream, total_bytes, source
        self.started = time.monotonic()
        self.after = after
        self.shown = 0.0
        self.count = 0

    def add(self, count: int) -> None:
        self.count += count
        if self.stream is None:
            return
        now = time.monotonic()
        elapsed = max(now - self.started, 1e-6)
        if elapsed < self.after or now - self.shown < 0.5:
            return
        self.shown = now
        rate = self.count / elapsed
        text = f"\r{self.count:,} records, {rate:,.0f}/s"
        if self.total and self.source is not None and self.source.consumed:
            left = elapsed * (self.total - self.source.consumed) / self.source.consumed
            text += f", {_duration(left)} left" if left >= 1 else ""
        print(text.ljust(48), end="", file=self.stream, flush=True)

    def done(self, failures: int) -> None:
        if self.stream is not None and self.shown:
            elapsed = time.monotonic() - self.started
            print(f"\r{self.count:,} records, {failures:,} failed, in {_duration(elapsed)}".ljust(48),
                  file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def run(engine: Engine, task: Task, items: Iterable[Item] | Parts, write: Callable[[bytes], Any],  # noqa: C901
        jobs: int = 1, keep: Keep | None = None, progress: Progress | None = None, plugins: Iterable[str] = ()) -> int:
    """Decide `items` and `write` their output in input order, in `jobs` processes; returns how
    many failed. A small input (two blocks or less) is decided here, as is every record kept
    (`keep`); a worker that dies has its blocks decided here, and the rest too. Given `Parts`,
    each worker reads its own parts of the input (a table's rows), so the records are never
    built and sent by this process."""
    global _worker
    progress = progress or Progress(None, None, None)
    failures = 0
    policy = engine.policy(task.policy_id)
    if isinstance(items, Parts) and (jobs <= 1 or keep is not None):  # read here, record by record
        items = (item for part in items.parts for item in items_of(part, policy))
    chunks: Iterator[list[Item] | Part] = iter(items.parts) if isinstance(items, Parts) else blocks(items)
    started: list[list[Item] | Part] = []
    if jobs > 1 and keep is None:
        for block in chunks:
            started.append(block)
            if len(started) > 2:
                break
    if len(started) <= 2:  # not worth a process: decide here
        for block in itertools.chain(started, chunks):
            here_items = block if isinstance(block, list) else items_of(block, policy)
            data, failed = decide_block(engine, task, here_items, keep)
            write(data)
            failures += failed
            progress.add(len(here_items))
        return failures
    fork = sys.platform == "linux"  # a forked process has the compiled policy already
    _worker = (engine, task)
    shipment = None if fork else ship([engine.policy(task.policy_id)])
    executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork" if fork else "spawn"),
                                   initializer=_start_worker, initargs=(shipment, list(plugins), task))
    pending: collections.deque[tuple[list[Item] | Part, Future[tuple[bytes, int, int]] | None]] = \
        collections.deque()
    here = False  # a worker died: what is left is decided in this process
    try:
        def lost() -> None:
            nonlocal here
            if not here:
                here = True
                print("warning: a worker process stopped; the remaining records are decided in this one",
                      file=sys.stderr)

        def settle(block: list[Item] | Part, future: Future[tuple[bytes, int, int]] | None) -> None:
            nonlocal failures
            try:
                if future is None:
                    raise BrokenProcessPool
                data, failed, count = future.result()
            except BrokenProcessPool:
                lost()
                block = block if isinstance(block, list) else items_of(block, policy)
                data, failed = decide_block(engine, task, block)
                count = len(block)
            write(data)
            failures += failed
            progress.add(count)

        for block in itertools.chain(started, chunks):
            future = None
            if not here:
                try:
                    future = executor.submit(_decide_in_worker, block)
                except (BrokenProcessPool, RuntimeError):  # the pool broke before this block was sent
                    lost()
            pending.append((block, future))
            while len(pending) > 2 * jobs or (here and pending):
                settle(*pending.popleft())
        while pending:
            settle(*pending.popleft())
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        _worker = None
    return failures


def default_jobs() -> int:
    """Every CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
