"""The policies in service, swapped whole on reload.

A request takes the engine once, when it starts, and keeps it: a reload that lands
meanwhile replaces the reference for later requests only, so nothing in flight changes
policy half-way. A reload that does not compile completely changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from kinerja_rules import CheckReport, Engine, check_paths
from kinerja_rules.server.batch import BatchPool


class PolicyService:
    """Hold the engine in service and replace it atomically when a reload compiles."""

    def __init__(self, engine: Engine, policies: Sequence[Path] = (), *, plugins: Sequence[Path] = (),
                 batch_processes: int = 0, restart_workers: bool = False) -> None:
        self._engine = engine
        self.policies = tuple(policies)
        self.plugins = tuple(plugins)
        self.batch_processes = batch_processes if self.policies else 0  # pool processes compile the folder
        self.restart_workers = restart_workers  # several worker processes: a reload restarts them all
        self.draining = False
        self.pool: BatchPool | None = None
        self._lock = threading.Lock()
        self._warming: set[asyncio.Task[None]] = set()

    async def start_pool(self) -> None:
        """Start the batch processes, if configured; batches are decided here until they are up."""
        if self.batch_processes > 0:
            pool = self.pool = BatchPool(self.batch_processes, self.policies, self.plugins)
            task = asyncio.create_task(pool.start())
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def renew_pool(self) -> None:
        """Replace the batch processes after a reload, so they hold the new policies."""
        self.stop_pool()
        await self.start_pool()

    def stop_pool(self, wait: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(wait)
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

    def reload(self) -> CheckReport:
        """Re-read the policies folder; put the new set in service only if every policy compiles.

        Plugins are code and stay as loaded; a changed plugin needs a restart.
        """
        with self._lock:
            report = check_paths(self.policies, self._engine.registry)
            if report.errors:
                return report
            self._engine = Engine(report.policies, self._engine.registry, report.warnings)
            if self.restart_workers:  # the supervisor brings up fresh workers before retiring the old
                os.kill(os.getppid(), signal.SIGHUP)
            return report
