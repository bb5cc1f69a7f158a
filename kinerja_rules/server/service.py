"""The policies in service, replaced policy by policy on reload, the same in every worker.

A request takes the engine once, when it starts, and keeps it: a reload that lands
meanwhile replaces the reference for later requests only, so nothing in flight changes
policy half-way.

A reload re-reads the folder: each policy that compiles replaces its previous version, and
one that fails keeps its last good version (or stays out if new), with the policies that
extend it. Every set put in service is a numbered *generation*. With several worker
processes the generation is shared through a folder of their own (`Shared`): the worker
that reloads publishes the files behind the new set, the others compile those same texts
(never the folder, which may have changed since), and a worker the supervisor starts
afresh reads the newest generation. The reload answers once every worker serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules import Engine
from kinerja_rules.engine import Reload, SourceGroup, reload_paths, ship, source_groups
from kinerja_rules.server.batch import BatchPool
from kinerja_rules.server.bodies import FailedPolicy
from kinerja_rules.server.problems import DiagnosticOut

_log = logging.getLogger("kinerja_rules.server")
WATCH_SECONDS = 0.2  # how often a worker looks for a newer generation
RETRY_SECONDS = 5.0  # after a newer generation could not be served, before trying it again


class _Group(msgspec.Struct, frozen=True):
    files: dict[str, str]
    ids: list[str]


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    """One set of policies in service, as every worker compiles it."""

    generation: int
    groups: list[_Group]
    failed: list[FailedPolicy] = []

    def source_groups(self) -> list[SourceGroup]:
        return [SourceGroup(files=g.files, ids=tuple(g.ids)) for g in self.groups]


def generation_of(number: int, engine: Engine, failed: Sequence[FailedPolicy] = ()) -> Generation:
    return Generation(generation=number, failed=list(failed),
                      groups=[_Group(dict(g.files), list(g.ids)) for g in source_groups(engine.policies())])


class Shared:
    """The folder the worker processes of one service share: the newest generation, and which
    generation each worker serves (one file per process id)."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.folder = folder
        self.workers = workers
        self._current = folder / "generation.json"
        (folder / "workers").mkdir(parents=True, exist_ok=True)

    def publish(self, generation: Generation) -> None:
        part = self._current.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(msgspec.json.encode(generation))
        os.replace(part, self._current)  # atomic: a reader sees the old generation or the new, whole

    def stamp(self) -> int:
        try:
            return self._current.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def read(self) -> Generation | None:
        try:
            return msgspec.json.decode(self._current.read_bytes(), type=Generation)
        except FileNotFoundError:
            return None

    def serving(self, generation: int) -> None:
        """Say that this process serves `generation`."""
        (self.folder / "workers" / str(os.getpid())).write_text(str(generation))

    def leave(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "workers" / str(os.getpid())).unlink()

    def behind(self, generation: int) -> int:
        """How many workers do not serve `generation` yet (missing workers count as behind)."""
        serving = 0
        for entry in (self.folder / "workers").iterdir():
            try:
                os.kill(int(entry.name), 0)
                number = int(entry.read_text() or 0)
            except (ProcessLookupError, ValueError, FileNotFoundError):
                continue  # a worker that has exited (the supervisor replaces it; the new one reads the generation)
            except PermissionError:  # alive, but another user's (a reused process id): not ours
                continue
            serving += number >= generation
        return max(self.workers - serving, 0)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One reload at a time across the workers."""
        with open(self.folder / "reload.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class PolicyService:
    """Hold the engine in service and replace it when a reload, here or in another worker, lands."""

    def __init__(self, engine: Engine, policies: Sequence[Path] = (), *, plugins: Sequence[Path] = (),
                 batch_processes: int = 0, shared: Shared | None = None, generation: int = 0,
                 failed: Sequence[FailedPolicy] = (), plugin_call_seconds: float | None = None) -> None:
        self._engine = engine
        self.policies = tuple(policies)
        self.plugins = tuple(plugins)
        self.batch_processes = batch_processes if self.policies else 0  # pool processes compile the set's files
        self.plugin_call_seconds = plugin_call_seconds  # the time budget of one plugin call, in the pool processes
        self.shared = shared
        self.generation = generation
        self.failed: list[FailedPolicy] = list(failed)
        self.draining = False
        self.pool: BatchPool | None = None
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired: list[BatchPool] = []  # closed without waiting; joined at stop

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start the batch processes (if configured) and, with several workers, watch for reloads."""
        await self.start_pool()
        if self.shared is not None:
            self.shared.serving(self.generation)
            self._spawn(self._watch())

    async def stop(self) -> None:
        self.draining = True
        for task in list(self._tasks):
            task.cancel()
        if self.shared is not None:
            self.shared.leave()
        self.stop_pool(wait=True)
        # A pool retired by a reload may still be closing: join it, or the interpreter's own exit
        # races its manager thread for the wake-up pipe (a traceback at Ctrl-C).
        while self._retired:
            self._retired.pop().join()

    async def start_pool(self) -> None:
        """Start the batch processes, if configured; batches are decided here until they are up."""
        if self.batch_processes > 0:
            pool = self.pool = BatchPool(self.batch_processes, ship(self._engine.policies()), self.plugins,
                                         call_seconds=self.plugin_call_seconds,
                                         on_broken=lambda: self._spawn(self._replace_pool(pool)))
            self._spawn(pool.start())

    async def _replace_pool(self, broken: BatchPool) -> None:
        if self.pool is broken and not self.draining:  # not replaced by a reload meanwhile
            await self.renew_pool()

    async def renew_pool(self) -> None:
        """Replace the batch processes after a reload, so they hold the new policies."""
        self.stop_pool()
        await self.start_pool()

    def stop_pool(self, wait: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(wait)
            if not wait:
                self._retired = [p for p in self._retired if p.closing] + [self.pool]
            self.pool = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def current(self) -> Engine:
        """The engine for a request that starts now (the dependency the controllers receive)."""
        return self._engine

    @property
    def ready(self) -> bool:
        return not self.draining and bool(self._engine.ids)

    def reload(self) -> Reload:
        """Re-read the policies folder, policy by policy, and put the result in service as a new generation.

        Plugins are code and stay as loaded; a changed plugin needs a restart.
        """
        with self._lock, self.shared.lock() if self.shared is not None else contextlib.nullcontext():
            self._catch_up()  # another worker's reload is the base of this one
            outcome = reload_paths(self.policies, self._engine.registry,
                                   {p.id: p for p in self._engine.policies()})
            if outcome.refused:
                return outcome
            engine = Engine(outcome.policies, self._engine.registry, outcome.warnings)
            failed = [FailedPolicy(policy=pid, diagnostics=[DiagnosticOut.of(d) for d in diags])
                      for pid, diags in outcome.failed.items()]
            number = self.generation + 1
            if self.shared is not None:
                self.shared.publish(generation_of(number, engine, failed))
            self._swap(engine, number, failed)
            return outcome

    def _swap(self, engine: Engine, number: int, failed: Sequence[FailedPolicy]) -> None:
        self._engine, self.generation, self.failed = engine, number, list(failed)
        if self.shared is not None:
            self.shared.serving(number)

    def _catch_up(self) -> bool:
        """Serve the newest shared generation, if this worker is behind; whether it changed."""
        if self.shared is None:
            return False
        current = self.shared.read()
        if current is None or current.generation <= self.generation:
            return False
        engine = Engine.from_groups(current.source_groups(), self._engine.registry)
        self._swap(engine, current.generation, current.failed)
        _log.info("serving generation %d (%d policies)", current.generation, len(engine.ids))
        return True

    async def _watch(self) -> None:
        assert self.shared is not None
        seen: int | None = None  # the first look always compares generations: one may have been published
        # between this worker's start and now, and its stamp would look like nothing changed
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            stamp = self.shared.stamp()
            if stamp == seen:
                continue
            seen = stamp
            try:
                changed = await asyncio.to_thread(self._locked_catch_up)
            except Exception:  # the same texts compiled in another worker: this is a fault of ours, logged
                _log.exception("could not serve the newest generation; keeping generation %d", self.generation)
                seen = None  # try again, after a pause
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if changed:
                await self.renew_pool()

    def _locked_catch_up(self) -> bool:
        with self._lock:
            return self._catch_up()

    async def converged(self, generation: int, timeout: float) -> int:
        """Wait until every worker serves `generation`; how many still do not when `timeout` passes."""
        if self.shared is None:
            return 0
        deadline = time.monotonic() + timeout
        while (behind := self.shared.behind(generation)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return behind
