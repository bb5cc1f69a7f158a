"""What the store keeps beside decisions for the people they concern: when a decision reached its
employee (pemberitahuan), the keberatan filed against it, and the putusan that ends it.

These are written one at a time, by people, and each write checks what is there in the same
transaction (a second notification, a second keberatan, a second putusan are conflicts), so
they go straight through the store's reading connection rather than the decisions' group commit.
A putusan's new decision is written in the same transaction as the putusan: both or neither.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kinerja_rules.store.records import CANONICAL, DECODER, Row, StoreError, insert_sql
from kinerja_rules.store.redaction import NO_REDACTION, Redactor

Execute = Callable[..., Any]
"""Runs one statement (its parameters written `?`) in the open transaction; returns its cursor."""

KEBERATAN_STATUS = ("diajukan", "ditolak", "diterima", "diubah")

DELETE_KEBERATAN = (
    "DELETE FROM keberatan WHERE id < ?",
    # a notification goes with its decision
    "DELETE FROM pemberitahuan WHERE decision_id < ? AND decision_id NOT IN (SELECT id FROM decisions)",
)
"""Retention: a keberatan filed before the cutoff goes (its decision, older still, goes too); run
after the decisions are deleted, each statement with the cutoff."""

KEPT_BY_KEBERATAN = "SELECT decision_id FROM keberatan WHERE id >= ?"
"""Retention keeps a decision with a keberatan filed after the cutoff, however old it is."""


class KeberatanConflict(StoreError):
    """What is stored already forbids the write: `kind` is the problem type (`already-notified`,
    `keberatan-exists`, `putusan-final`, `notice-changed`)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class KeberatanTables(abc.ABC):
    """The keberatan part of a `Store`."""

    where: str
    redactor: Redactor = NO_REDACTION
    _conflicts: tuple[type[BaseException], ...] = ()
    _errors: tuple[type[BaseException], ...] = ()

    @abc.abstractmethod
    def _read(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows `query` selects (its parameters written `?`)."""

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Execute]:
        """A transaction on the reading connection (no other read or write of it meanwhile)."""

    @contextlib.contextmanager
    def _writing(self, what: str, duplicate: KeberatanConflict | None = None) -> Iterator[Execute]:
        """A transaction; a unique key violated (another host wrote the same meanwhile) is `duplicate`."""
        try:
            with self._transaction() as execute:
                yield execute
        except KeberatanConflict:
            raise
        except self._errors as exc:
            if duplicate is not None and isinstance(exc, self._conflicts):
                raise duplicate from None
            raise StoreError(f"the decision store {self.where} could not keep {what}: {str(exc).strip()}") from None

    # ---- pemberitahuan ----
    def pemberitahuan(self, decision_id: str) -> dict[str, Any] | None:
        """The notification of a decision, as it was answered; None before one."""
        rows = self._read("SELECT body FROM pemberitahuan WHERE decision_id = ?", (decision_id,))
        return DECODER.decode(rows[0][0]) if rows else None

    def notify(self, decision_id: str, tanggal: str, body: dict[str, Any]) -> None:
        """Keep when a decision reached its employee: once, and not after a keberatan was filed (its
        deadline was counted without it)."""
        with self._writing("the notification", _notified(decision_id)) as execute:
            if execute("SELECT 1 FROM keberatan WHERE decision_id = ?", (decision_id,)).fetchone():
                raise KeberatanConflict("keberatan-exists", f"a keberatan against decision {decision_id} is "
                                        "filed already; its deadline was counted from what was known then")
            if execute("SELECT 1 FROM pemberitahuan WHERE decision_id = ?", (decision_id,)).fetchone():
                raise _notified(decision_id)
            execute("INSERT INTO pemberitahuan (decision_id, tanggal, body) VALUES (?, ?, ?)",
                    (decision_id, tanggal, CANONICAL.encode(body)))

    # ---- keberatan ----
    def keberatan(self, keberatan_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT body FROM keberatan WHERE id = ?", (keberatan_id,))
        return DECODER.decode(rows[0][0]) if rows else None

    def keberatan_of(self, decision_id: str) -> dict[str, Any] | None:
        """The keberatan filed against a decision, if any."""
        rows = self._read("SELECT body FROM keberatan WHERE decision_id = ?", (decision_id,))
        return DECODER.decode(rows[0][0]) if rows else None

    def file_keberatan(self, entry: dict[str, Any], nip: str | None, notice: str | None) -> None:
        """Keep a keberatan (`entry` as answered, `nip` the decision's as the store holds it); `notice`
        is the notification date its deadline was counted from (a conflict when that changed)."""
        decision_id = entry["decision_id"]
        with self._writing("the keberatan", _exists(decision_id)) as execute:
            if execute("SELECT 1 FROM keberatan WHERE decision_id = ?", (decision_id,)).fetchone():
                raise _exists(decision_id)
            found = execute("SELECT tanggal FROM pemberitahuan WHERE decision_id = ?", (decision_id,)).fetchone()
            if (found[0] if found else None) != notice:
                raise KeberatanConflict("notice-changed", "the decision's notification changed meanwhile")
            execute("INSERT INTO keberatan (id, decision_id, policy_id, nip, status, body) VALUES (?, ?, ?, ?, ?, ?)",
                    (entry["keberatan_id"], decision_id, entry["policy_id"], nip, entry["status"],
                     CANONICAL.encode(entry)))

    def decide_keberatan(self, entry: dict[str, Any], row: Row | None) -> None:
        """Keep a keberatan's putusan (`entry` as answered, its status the putusan's) and, for one that
        changed the decision, the new decision's `row`, in one transaction; a conflict when the
        keberatan has a putusan already."""
        with self._writing("the putusan") as execute:
            changed = execute("UPDATE keberatan SET status = ?, body = ? WHERE id = ? AND status = 'diajukan'",
                              (entry["status"], CANONICAL.encode(entry), entry["keberatan_id"])).rowcount
            if changed != 1:
                raise KeberatanConflict("putusan-final", f"keberatan {entry['keberatan_id']} has its putusan "
                                        "already, and a putusan is final")
            if row is not None:
                execute(insert_sql(1), row)

    def find_keberatan(self, policy_id: str | None = None, nip: str | None = None, status: str | None = None,
                       limit: int = 100, after: str | None = None,
                       policies: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Keberatan in id order (filing order), filtered as `Store.find` filters decisions."""
        if any(value is not None and "\x00" in value for value in (policy_id, nip, status, after)):
            return []
        if nip is not None and "nip" in self.redactor.fields:
            nip = self.redactor.hash(nip)
        clauses, args = [], []
        for column, value in (("policy_id", policy_id), ("nip", nip), ("status", status), ("id >", after)):
            if value is not None:
                clauses.append(f"{column} ?" if column.endswith(">") else f"{column} = ?")
                args.append(value)
        if policies is not None:
            clauses.append(f"policy_id IN ({', '.join('?' * len(policies))})" if policies else "1 = 0")
            args.extend(policies)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(f"SELECT body FROM keberatan {where} ORDER BY id LIMIT ?",
                          (*args, max(1, min(limit, 10_000))))
        return [DECODER.decode(body) for body, in rows]


def _notified(decision_id: str) -> KeberatanConflict:
    return KeberatanConflict("already-notified", f"decision {decision_id} was notified already; a notification "
                             "is kept once")


def _exists(decision_id: str) -> KeberatanConflict:
    return KeberatanConflict("keberatan-exists", f"a keberatan against decision {decision_id} is filed already; "
                             "a decision takes one")
