"""Decision ids: UUIDv7 (RFC 9562), time-ordered, and in the order they were made."""

from __future__ import annotations

import itertools
import os
import random
import secrets
import threading
import time


def uuid7(now_ms: int | None = None, counter: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random (or counting) bits, so
    ids sort by time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    bits = secrets.randbits(74) if counter is None else counter
    value = (ms & (2 ** 48 - 1)) << 80 | 0x7 << 76 | (bits >> 62) << 64 | 0b10 << 62 | (bits & (2 ** 62 - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _Ids:
    """Time-ordered ids that also sort in the order they were made within one millisecond (or when
    the clock steps back): the 74 bits after the time then count up from the last id by a random
    step (RFC 9562, method 2)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._bits = 0
        # ids name records, they grant nothing (reading one needs a key for its policy): a generator seeded
        # from the system's is random enough, and far cheaper than a system call per id
        self._random = random.Random(secrets.randbits(256))
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A forked process makes ids of its own: a new seed, and its next id starts afresh."""
        self._lock = threading.Lock()
        self._random.seed(secrets.randbits(256))
        self._ms = self._bits = 0
        self._shared = (-1, -1, "")

    def next(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms > self._ms:
                self._ms, self._bits = ms, self._random.getrandbits(73)  # headroom to count up within the ms
            else:
                self._bits += 1 + self._random.getrandbits(16)
                if self._bits >= 2 ** 74:  # the millisecond is used up: borrow the next one
                    self._ms, self._bits = self._ms + 1, self._random.getrandbits(73)
            ms, bits = self._ms, self._bits
        return self._text(ms, bits)

    _shared: tuple[int, int, str] = (-1, -1, "")  # the last id's time, bits >> 48 and first 24 characters

    def _text(self, ms: int, bits: int) -> str:
        """`uuid7(ms, bits)`, formatting only the last 12 characters while the first 24 stay the same."""
        shared_ms, high, first = self._shared  # one tuple, read and replaced whole: safe across threads
        if shared_ms != ms or high != bits >> 48:
            first = uuid7(ms, bits)[:24]
            self._shared = (ms, bits >> 48, first)
        return first + "%012x" % (bits & 0xFFFFFFFFFFFF)

    def take(self, count: int) -> list[str]:
        """`count` ids at once, as `next` would make them one after another (a batch's), for a fraction
        of the cost: one lock and one draw of random steps for them all."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._ms:
                self._ms, self._bits = ms, self._random.getrandbits(73)
            steps = memoryview(self._random.randbytes(2 * count)).cast("H")
            values = list(itertools.accumulate(steps, lambda bits, step: bits + 1 + step, initial=self._bits))[1:]
            used_up = values[-1] >= 2 ** 74 if values else False
            if not used_up and values:
                ms, self._bits = self._ms, values[-1]
        if used_up:  # the millisecond's ids run out within these: one by one, which borrows the next one
            return [self.next() for _ in range(count)]
        return [self._text(ms, bits) for bits in values]


IDS = _Ids()
