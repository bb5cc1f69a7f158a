"""Checking untrusted policy documents (`/v1/validate`) without slowing anyone else down.

A document of 2 MB takes seconds of CPU to parse and check; done on the service's own
thread it would slow every evaluation, since Python runs one thread at a time. `Validator`
checks documents in processes of their own (`--validate-processes`, default 1), each
holding the plugins and the parsed policies in service. Each check has a time budget
(`--validate-seconds`): half of it for table analysis, after which the answer says which
tables were not analysed (W201), and the whole of it as a hard limit, after which the
process is stopped, replaced, and the request answered with a `validation-timeout`
problem. At most `4 × processes` checks wait their turn; more are refused at once with
`validation-busy`. With `processes=0` (the library default) checks run on a thread, with
the same analysis budget but no hard limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from anyio import CapacityLimiter, to_thread

from kinerja_rules import CheckReport, Engine, discover
from kinerja_rules.engine import validate_files
from kinerja_rules.errors import PolicyError
from kinerja_rules.loader import SourceFile, load_text
from kinerja_rules.registry import Registry
from kinerja_rules.server.batch import manager_of
from kinerja_rules.server.problems import ApiProblem
from kinerja_rules.tables import ANALYSIS_DEADLINE

_registry: Registry | None = None  # a validation process's plugins
_parents: tuple[str, list[SourceFile]] = ("", [])  # its parsed policies in service, by their key


@contextlib.contextmanager
def analysis_budget(seconds: float) -> Iterator[None]:
    token = ANALYSIS_DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        ANALYSIS_DEADLINE.reset(token)


def _start(plugins: list[str]) -> None:
    global _registry
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the service, which stops this process quietly
    _registry = discover([Path(p) for p in plugins])


def _ready() -> None:
    return None


def _check(texts: dict[str, str], key: str, parents: list[tuple[str, str]] | None,
           seconds: float) -> CheckReport:
    """Check `texts` against the parents in service (parsed once per set, by `key`)."""
    global _parents
    if _parents[0] != key:
        if parents is None:
            raise LookupError(key)  # this process has not seen the set: the caller sends it
        sources = []
        for name, text in parents:
            try:
                sources.append(load_text(text, name))
            except PolicyError:
                continue  # a parent in service always parses; this never happens
        _parents = (key, sources)
    with analysis_budget(seconds):
        report = validate_files(texts, registry=_registry, base_sources=_parents[1])
    return CheckReport(policies=dict.fromkeys(report.policies), errors=report.errors,  # type: ignore[arg-type]
                       warnings=report.warnings, test_errors=report.test_errors)


class Validator:
    """Check documents against the policies in service, in processes of their own, within a time budget."""

    def __init__(self, plugins: Sequence[Path] = (), processes: int = 0, seconds: float = 30.0) -> None:
        self.plugins = [str(p) for p in plugins]
        self.processes = processes
        self.seconds = seconds
        self.waiting = 0
        self._executor: ProcessPoolExecutor | None = None
        self._stopped: list[threading.Thread] = []  # the manager threads of pools stopped without waiting
        self._warm: asyncio.Future[list[None]] | None = None
        self._threads = CapacityLimiter(2)

    def start(self) -> None:
        """Start the processes (they load the plugins) so the first check does not wait for them."""
        if self.processes and self._executor is None:
            loop = asyncio.get_running_loop()
            executor = self._executor = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                initargs=(self.plugins,))
            self._warm = asyncio.gather(*(loop.run_in_executor(executor, _ready) for _ in range(self.processes)))

    async def _pool(self) -> ProcessPoolExecutor:
        self.start()
        assert self._executor is not None and self._warm is not None
        await asyncio.shield(self._warm)  # the time budget starts once a process is there to check
        return self._executor

    async def check(self, engine: Engine, texts: Mapping[str, str],
                    allowed: Sequence[str] | None = None) -> CheckReport:
        """Check `texts` against the policies of `engine` that `allowed` names (all when None)."""
        if self.waiting >= max(self.processes, 1) * 4:
            raise ApiProblem("validation-busy", f"{self.waiting} documents are being checked; retry shortly")
        sources = engine.sources(allowed)
        self.waiting += 1
        try:
            if self.processes == 0:
                return await to_thread.run_sync(self._in_thread, texts, sources, limiter=self._threads)
            return await self._in_process(dict(texts), sources)
        finally:
            self.waiting -= 1

    def _in_thread(self, texts: Mapping[str, str], sources: list[SourceFile]) -> CheckReport:
        with analysis_budget(self.seconds / 2):
            return validate_files(texts, registry=None, base_sources=sources)

    async def _in_process(self, texts: dict[str, str], sources: list[SourceFile]) -> CheckReport:
        parents = [(s.name, s.text) for s in sources]
        key = hashlib.sha256(repr(parents).encode("utf-8", "surrogatepass")).hexdigest()
        loop = asyncio.get_running_loop()
        pool = await self._pool()
        try:
            try:
                run = loop.run_in_executor(pool, _check, texts, key, None, self.seconds / 2)
                return await asyncio.wait_for(run, self.seconds)
            except LookupError:
                run = loop.run_in_executor(pool, _check, texts, key, parents, self.seconds / 2)
                return await asyncio.wait_for(run, self.seconds)
        except TimeoutError:
            self.stop()  # the process is still at it: stop it, and start afresh for the next document
            self.start()
            raise ApiProblem("validation-timeout", f"the document was not checked within {self.seconds:g} s; "
                                                   "split it, or check it with `kinerja check`") from None

    def stop(self, wait: bool = False) -> None:
        """Kill the processes; `wait` joins them and every pool stopped before (at the server's stop, so
        the interpreter's exit does not race a pool's manager thread for its wake-up pipe)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
            manager = manager_of(executor)
            executor.shutdown(wait=False, cancel_futures=True)
            if manager is not None:
                self._stopped = [t for t in self._stopped if t.is_alive()] + [manager]
        if wait:
            while self._stopped:
                self._stopped.pop().join(30.0)

