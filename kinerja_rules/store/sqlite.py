"""The SQLite store, and the process its writes run in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kinerja_rules.store.base import DELETE_CHUNKS, MIGRATIONS, Store
from kinerja_rules.store.keberatan import DELETE_KEBERATAN, KEPT_BY_KEBERATAN, Execute
from kinerja_rules.store.records import SELECT, StoreError
from kinerja_rules.store.redaction import NO_REDACTION, Redactor
from kinerja_rules.store.writer import Committer, InThread, Pending, settle_one

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not a POSIX system
    fcntl = None

DIRECT_ROWS = 64
"""The most rows an event loop writes to the writer process itself (more go through the writer thread)."""
_DEAD: Any = object()  # a direct pipe whose process died: requests go through the writer thread until it restarts


class InProcess:
    """Commits in a child process (see `SQLiteStore`), over two pipes: the writer thread's (a batch
    down, what failed back), and the event loop's own, which the loop writes to and reads from
    itself, so a request waiting for its commit needs no thread of the service at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._waiting: dict[int, Pending] = {}
        self._sent = 0
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        # the loop's pipes go one way each: the loop watches its answers' end, and its requests' end
        # stays blocking (a watched descriptor may be made non-blocking, and a message written in part
        # would be lost)
        child_requests, self._requests = context.Pipe(duplex=False)
        self._direct, child_answers = context.Pipe(duplex=False)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop reading the direct pipe's answers
        self._outbox: list[tuple[Any, ...]] = []  # what the loop sends once its callbacks of this turn ran
        self._process = context.Process(target=_commit_in_child,
                                        args=(str(self.path), child, child_requests, child_answers),
                                        daemon=True, name="kinerja-decision-store")
        self._process.start()
        for end in (child, child_requests, child_answers):
            end.close()

    def send(self, pending: Pending) -> bool:
        """Hand `pending` to the writer process from the running event loop; its future is settled by
        the loop once committed. False when this loop cannot (another loop holds the pipe): queue it."""
        if pending.size > DIRECT_ROWS:  # a large batch: its writing could hold up the loop
            return False
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._direct.fileno(), self._answered)
            os.set_blocking(self._direct.fileno(), True)  # an answer is read whole once it starts to arrive
        elif self._loop is not loop:
            return False
        self._sent += 1
        self._waiting[self._sent] = pending
        self._outbox.append((self._sent, pending.rows, pending.sources, pending.runs, pending.chunks))
        if len(self._outbox) == 1:  # what else this turn of the loop sends goes with it, in one write
            loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        sending, self._outbox = self._outbox, []
        if not sending or self._loop is _DEAD:  # the process died meanwhile: what it held has failed already
            return
        try:
            self._requests.send_bytes(pickle.dumps(sending, protocol=5))
        except OSError:  # the process died: these and whatever waits fail; the writer thread restarts it
            self._answered()

    def _answered(self) -> None:
        try:
            if not self._process.is_alive():
                raise EOFError
            while self._direct.poll():
                for sent, error in pickle.loads(self._direct.recv_bytes()):
                    pending = self._waiting.pop(sent)
                    if error is not None:
                        pending.error = StoreError(error)
                    settle_one(pending)
        except (EOFError, OSError) as exc:  # the process died: what waits fails; the writer thread restarts it
            if self._loop is not None:
                self._loop.remove_reader(self._direct.fileno())
            for pending in self._waiting.values():
                pending.error = StoreError(f"the decision store's writer stopped ({type(exc).__name__})")
                settle_one(pending)
            self._waiting.clear()
            self._loop = _DEAD

    def tidy(self) -> None:
        """Nothing here: the writer process tidies after its own commits."""

    def commit(self, batch: list[Pending]) -> None:
        try:
            self._pipe.send_bytes(pickle.dumps([(p.rows, p.sources, p.runs, p.chunks) for p in batch], protocol=5))
            errors = pickle.loads(self._pipe.recv_bytes())
        except (EOFError, OSError) as exc:  # the process died: these fail, the next ones go to a new one
            for pending in batch:
                pending.error = StoreError(f"the decision store's writer stopped ({type(exc).__name__})")
            self._pipe.close()
            self._process.join(timeout=5)
            if self._loop is not None and self._loop is not _DEAD:  # the old pipe stays open until then: its
                self._loop.call_soon_threadsafe(_drop_reader, self._loop, self._direct)  # number is not reused
            self._start()
            return
        for pending, error in zip(batch, errors, strict=True):
            if error is not None:
                pending.error = StoreError(error)

    def close(self) -> None:
        try:
            self._pipe.send_bytes(b"")  # stop, once what came before is committed
        except OSError:
            pass
        self._process.join(timeout=30)
        if self._loop is not None and self._loop is not _DEAD and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(_drop_reader, self._loop, self._direct)
            except RuntimeError:  # the loop closed meanwhile
                self._direct.close()
        else:
            self._direct.close()
        self._requests.close()
        self._pipe.close()


def _drop_reader(loop: asyncio.AbstractEventLoop, connection: Any) -> None:
    loop.remove_reader(connection.fileno())
    connection.close()




def _commit_in_child(path: str, pipe: Any, direct: Any, answers: Any) -> None:  # noqa: C901
    """The writer process of a SQLite store: commits what both pipes bring, together, and answers each
    what failed."""
    from multiprocessing.connection import wait

    store = SQLiteStore.__new__(SQLiteStore)
    store.path = Path(path)
    store.where = path
    committer = InThread(store)
    channels = [pipe, direct]
    while True:
        batch: list[Pending] = []
        thread: list[Pending] | None = None  # the writer thread's batch, answered as one
        direct_ids: list[tuple[int, Pending]] = []
        stop = False
        ready: list[Any] = wait(channels)
        for channel in ready:
            try:
                while channel.poll():
                    data = channel.recv_bytes()
                    if channel is pipe:
                        if not data:
                            stop = True
                            break
                        thread = [Pending(*given) for given in pickle.loads(data)]
                        batch.extend(thread)
                    else:
                        for sent, *given in pickle.loads(data):
                            direct_ids.append((sent, Pending(*given)))
                            batch.append(direct_ids[-1][1])
            except (EOFError, OSError):  # the service is gone (or stopped using the direct pipe)
                if channel is pipe:
                    stop = True
                else:
                    channels = [pipe]
        if batch:
            committer.commit(batch)
        if thread is not None:
            pipe.send_bytes(pickle.dumps([None if p.error is None else str(p.error) for p in thread]))
        if direct_ids:
            try:
                answers.send_bytes(pickle.dumps([(sent, None if p.error is None else str(p.error))
                                                 for sent, p in direct_ids]))
            except OSError:
                channels = [pipe]
        if stop:
            break
        committer.tidy()
    committer.close()


@contextlib.contextmanager
def _migration_lock(database: str) -> Iterator[None]:
    """Held while one process sets up or migrates the schema of `database` (an exclusive lock on
    `<database>.lock`, released when the process ends, however it ends)."""
    if not database or fcntl is None:  # in memory, or a system without flock: one process only
        yield
        return
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SQLiteStore(Store):
    """Decisions in a SQLite file (WAL): no server to set up.

    Its writes run in a process of their own (`writer_process`): SQLite's Python binding takes the
    GIL back for every row, and in the service's process that contends with the event loop, which
    then answers far fewer requests. The process commits and says so before anyone is answered.

    Decisions are found by person through the table `people`, which is not written as each decision
    is. An index entry per decision, in a tree far larger than one commit, makes each commit write
    about one page per decision: that was half of what recording a batch cost. The writer adds the
    decisions to `people` in bulk instead, in key order, once `INDEX_ROWS` are waiting
    (`people_mark` says up to which decision), and a look-up reads `people` and scans the
    decisions after the mark.
    """

    def __init__(self, path: Path, redactor: Redactor = NO_REDACTION, writer_process: bool = True) -> None:
        self.path = Path(path)
        self.writer_process = writer_process
        self.where = str(self.path)
        self.redactor = redactor
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot open the decision store {self.path}: {exc}") from None
        self._open()
        self._ready_committer = self._committer()  # started here, so a failure to start is seen here
        self._start()

    def _committer(self) -> Committer:
        if self.writer_process:
            try:
                return InProcess(self.path)
            except (OSError, RuntimeError) as exc:  # a program that cannot start processes: write here
                logging.getLogger("kinerja_rules").warning(
                    "the decision store writes in this process (its writer process did not start: %s)", exc)
        return InThread(self)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # committed means on disk, even if the machine stops
        connection.execute("PRAGMA foreign_keys=ON")
        # Index pages by person are written all over the file: a larger cache keeps them, and checkpoints
        # further apart copy a page changed by many commits once
        connection.execute("PRAGMA cache_size=-65536")
        connection.execute("PRAGMA wal_autocheckpoint=16384")
        return connection

    @staticmethod
    def migrate(connection: sqlite3.Connection) -> int:
        """Bring the schema up to date, each step in its own transaction; returns the version."""
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"the decision store has schema version {version}; this kinerja-rules knows up to "
                             f"{len(MIGRATIONS)}: upgrade kinerja-rules")
        for step in range(version, len(MIGRATIONS)):
            try:  # one transaction per step: a step applies whole or not at all
                connection.executescript(
                    f"BEGIN IMMEDIATE; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1}; COMMIT;")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return len(MIGRATIONS)

    def _open(self) -> None:
        """`Store._open` (connect, set up or migrate the schema) while no other process does it for the
        same database: processes starting together on a new folder take turns (a lock file beside
        it), each reading the schema version once the one before it is done."""
        with _migration_lock(str(self.path)):
            super()._open()

    def _read(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                rows: list[tuple[Any, ...]] = self._reader.execute(query, args).fetchall()
                return rows
            except sqlite3.Error as exc:
                raise StoreError(f"the decision store {self.where} could not be read: {exc}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Execute]:
        with self._read_lock:
            self._reader.execute("BEGIN IMMEDIATE")
            try:
                yield self._reader.execute
                self._reader.execute("COMMIT")
            except BaseException:
                self._reader.execute("ROLLBACK")
                raise

    def _by_person(self, where: str, args: list[Any], limit: int) -> list[tuple[Any, ...]]:
        # one statement, so one snapshot: a decision is either in people or after the mark
        return self._read(f"{SELECT} WHERE id IN (SELECT id FROM people {where} UNION ALL SELECT id FROM "
                          f"decisions {where} AND rowid > (SELECT last_rowid FROM people_mark)) ORDER BY id LIMIT ?",
                          (*args, *args, limit))

    def _unindexed(self, connection: sqlite3.Connection) -> int:
        found = connection.execute("SELECT coalesce(max(rowid), 0) - (SELECT last_rowid FROM people_mark) "
                                   "FROM decisions").fetchone()
        return max(0, int(found[0]))

    def _index(self, connection: sqlite3.Connection) -> int:
        """Add the decisions after the mark to `people`, in key order, and move the mark: a tree written
        in order, many decisions at a time, changes each of its pages once, not once per decision."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("INSERT OR IGNORE INTO people SELECT coalesce(nip, x''), policy_id, "
                                   "coalesce(periode, x''), id FROM decisions WHERE rowid > "
                                   "(SELECT last_rowid FROM people_mark) ORDER BY 1, 2, 3, 4")
                connection.execute("UPDATE people_mark SET last_rowid = (SELECT coalesce(max(rowid), 0) "
                                   "FROM decisions)")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # look-ups still find them after the mark; the next turn tries again
            logging.getLogger("kinerja_rules").warning("the decision store %s could not index decisions by "
                                                       "person: %s", self.where, exc)
            return 0
        return 0

    def _delete(self, cutoff: str) -> int:
        with self._transaction() as execute:
            count = execute("DELETE FROM decisions WHERE id < ? AND id NOT IN (SELECT appeal_of FROM decisions "
                            f"WHERE appeal_of IS NOT NULL AND id >= ?) AND id NOT IN ({KEPT_BY_KEBERATAN})",
                            (cutoff, cutoff, cutoff)).rowcount
            execute("DELETE FROM people WHERE id < ? AND id NOT IN (SELECT id FROM decisions WHERE id < ?)",
                    (cutoff, cutoff))
            # the next decision's rowid follows the last one left: the mark must not be past it
            execute("UPDATE people_mark SET last_rowid = min(last_rowid, (SELECT coalesce(max(rowid), 0) "
                    "FROM decisions))")
            execute("DELETE FROM runs WHERE id < ? AND id NOT IN (SELECT run_id FROM decisions WHERE run_id IS NOT "
                    "NULL)", (cutoff,))
            execute(DELETE_CHUNKS, (cutoff, cutoff))
            for statement in DELETE_KEBERATAN:
                execute(statement, (cutoff,))
        return int(count)

    def _close_reader(self) -> None:
        self._reader.close()
