"""Keberatan: the employee objects to a recorded decision within its deadline, and the rater's
superior gives the final putusan (PP 30/2019 art. 59; PermenPANRB 6/2022 ch. V).

Three steps, each kept in the decision store with when, which key and which request:

- **pemberitahuan**: the day the decision reached the employee (kept once). Without one, the day
  the decision was recorded counts.
- **keberatan**: filed by the employee the decision is for, with a reason and evidence, on or
  before its deadline, `batas_keberatan` days after the pemberitahuan, counted as
  `jenis_hari_keberatan` says (calendar days, or working days that skip `hari_libur`): the
  parameters of the policy version that made the decision, in force on the day it reached the
  employee. One per decision.
- **putusan**: by someone other than the employee and the rater (`penilaian.penilai_nip`), and
  final. `ditolak` keeps the decision; `diterima` and `diubah` decide it again with the values the
  putusan sets (the appeal machinery), and the new decision names the keberatan and the original.

`Desk` does all of it over a store, for the service and the CLI alike; what it refuses is a
`KeberatanError` whose `kind` is the problem type the service answers with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.errors import FieldError, KinerjaError
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.recording import Replay, Replayer, ReplayError, traces_of
from kinerja_rules.store import IDS, DecisionRecord, Store, row_of
from kinerja_rules.store.keberatan import KEBERATAN_STATUS, KeberatanConflict

WIT = dt.timezone(dt.timedelta(hours=9), "WIT")
"""A day is a day in eastern Indonesia (UTC+9): no region's date is later, so no employee's deadline
starts, and no `today` ends, before it does where they are."""

HASIL = ("ditolak", "diterima", "diubah")
MAX_NAME = 64  # a NIP is 18 digits; a name of a filer or decider at most this
MAX_TEXT = 4000  # a reason
MAX_BUKTI = 20  # pieces of evidence, each a text (a reference, a link, a short description)
MAX_BUKTI_TEXT = 1000
MAX_DAYS = 366  # the most a policy's deadline may give
DEFAULT_DAYS = (14, "kalender")  # PP 30/2019 art. 59, for a policy that does not say (one not extending nasional)


class KeberatanError(KinerjaError):
    """A step refused: `kind` is the problem type, `fields` the places in what was sent."""

    def __init__(self, kind: str, message: str, fields: Sequence[FieldError] = (), **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.fields = tuple(fields)
        self.extra = extra


def _refuse(path: str, message: str) -> KeberatanError:
    return KeberatanError("invalid-keberatan", f"{path}: {message}", [FieldError(path=path, message=message)])


@dataclasses.dataclass(frozen=True)
class Who:
    """Who takes a step: the API key's name and the request (None from the CLI)."""

    key_id: str | None = None
    request_id: str | None = None

    def step(self, name: str, now: dt.datetime) -> dict[str, Any]:
        return {"langkah": name, "waktu": now.isoformat(timespec="milliseconds"),
                **({"key_id": self.key_id} if self.key_id else {}),
                **({"request_id": self.request_id} if self.request_id else {})}


def text(value: Any, path: str, limit: int, *, single_line: bool = True) -> str:
    """`value` as a bounded text with something in it, and no control characters (a reason may hold
    line breaks)."""
    if not isinstance(value, str):
        raise _refuse(path, "a text")
    if len(value) > limit:
        raise _refuse(path, f"at most {limit} characters")
    allowed = "" if single_line else "\n\t"
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value):
        raise _refuse(path, "a control character" + ("" if single_line else " other than a line break"))
    if not value.strip():
        raise _refuse(path, "empty")
    return value.strip()


def day(value: Any, path: str) -> dt.date:
    """`value` (a date, or its ISO text YYYY-MM-DD) as a date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _refuse(path, "a date YYYY-MM-DD")


@dataclasses.dataclass(frozen=True)
class Deadline:
    """The last day a keberatan may be filed, and how it was counted."""

    notified: dt.date
    source: str  # "pemberitahuan", or "dicatat" (the day the decision was recorded)
    days: int
    kind: str  # kalender | kerja
    last: dt.date

    def describe(self) -> dict[str, Any]:
        return {"pemberitahuan": {"tanggal": self.notified.isoformat(), "sumber": self.source},
                "batas": self.last.isoformat(), "batas_keberatan": {"hari": self.days, "jenis_hari": self.kind}}

    def words(self) -> str:
        counted = "calendar days" if self.kind == "kalender" else "working days"
        said = "it reached the employee" if self.source == "pemberitahuan" else "it was recorded (no pemberitahuan)"
        return f"{self.days} {counted} after {self.notified.isoformat()}, when {said}"


def deadline(policy: CompiledPolicy | None, notified: dt.date, source: str) -> Deadline:
    """The deadline of a keberatan against a decision of `policy` that reached the employee on
    `notified`: the policy's parameters in force that day."""
    days, kind = DEFAULT_DAYS
    holidays: frozenset[dt.date] = frozenset()
    if policy is not None and "batas_keberatan" in policy.checked.params:
        values, _ = policy.params_for(max(notified, policy.effective))
        named = dict(zip(policy.checked.params, values, strict=True))
        kind = str(named.get("jenis_hari_keberatan", kind))
        by_kind = named["batas_keberatan"]
        days = by_kind.get(kind, days) if isinstance(by_kind, Mapping) else int(by_kind)
        holidays = frozenset(d for d in named.get("hari_libur", ()) if isinstance(d, dt.date))
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS or kind not in ("kalender", "kerja"):
        raise KeberatanError("invalid-keberatan", f"policy {policy.id if policy else ''!r} gives batas_keberatan "
                             f"{days!r} {kind}; from 1 to {MAX_DAYS} days, kalender or kerja")
    if kind == "kalender":
        return Deadline(notified, source, days, kind, notified + dt.timedelta(days=days))
    last, counted = notified, 0
    while counted < days:
        last += dt.timedelta(days=1)
        if last.weekday() < 5 and last not in holidays:
            counted += 1
    return Deadline(notified, source, days, kind, last)


def recorded_on(record: DecisionRecord) -> dt.date:
    """The day a decision was recorded, as a day in `WIT`."""
    made = record.made_at if record.made_at.tzinfo else record.made_at.replace(tzinfo=dt.UTC)
    return made.astimezone(WIT).date()


@dataclasses.dataclass
class Putusan:
    """A keberatan decided: the keberatan as kept, and for `diterima` or `diubah` the decision made
    again (`outcome`) and its record (`new`)."""

    keberatan: dict[str, Any]
    outcome: Replay | None = None
    new: DecisionRecord | None = None

    def answer(self) -> dict[str, Any]:
        """What `POST /v1/keberatan/{id}/putusan` and `kinerja keberatan putus` answer: the keberatan,
        and for one that changed the decision, the new decision as an appeal answers it."""
        outcome, new = self.outcome, self.new
        if outcome is None or new is None:
            return {"keberatan": self.keberatan}
        names = [d["output"] for d in outcome.differences]
        return {"keberatan": self.keberatan, "decision_id": new.id, "appeal_of": new.appeal_of,
                "identical": not outcome.differences, "differences": outcome.differences,
                "traces": traces_of(outcome.before, outcome.result, names),
                **({"decision": outcome.result} if isinstance(outcome.result, Decision) else {}),
                **({"notes": outcome.notes} if outcome.notes else {})}


class Desk:
    """The three steps over a store; `current` gives the policy in service of an id (for a decision
    whose archived version does not compile here), `now` the time."""

    def __init__(self, store: Store, replayer: Replayer,
                 current: Callable[[str], CompiledPolicy | None] = lambda _: None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.store = store
        self.replayer = replayer
        self.current = current
        self.now = now

    def _today(self) -> dt.date:
        return self.now().astimezone(WIT).date()

    def _dated(self, value: Any, path: str, earliest: dt.date, what: str) -> dt.date:
        when = day(value, path)
        if when < earliest:
            raise _refuse(path, f"{when.isoformat()} is before {what} ({earliest.isoformat()})")
        if when > self._today():
            raise _refuse(path, f"{when.isoformat()} is after today ({self._today().isoformat()}, WIT)")
        return when

    def _policy(self, record: DecisionRecord) -> CompiledPolicy | None:
        try:
            engine, _ = self.replayer.compiled(record.policy_digest)
        except ReplayError:
            engine = None
        if engine is not None:
            return engine.policy(record.policy_id)
        return self.current(record.policy_id)

    def deadline_of(self, record: DecisionRecord) -> Deadline:
        notice = self.store.pemberitahuan(record.id)
        if notice is None:
            return deadline(self._policy(record), recorded_on(record), "dicatat")
        return deadline(self._policy(record), dt.date.fromisoformat(notice["tanggal"]), "pemberitahuan")

    # ---- the steps: each made (`notice`, `filing`, `putusan`: work, no writing), then kept ----
    def notify(self, record: DecisionRecord, tanggal: Any, who: Who) -> dict[str, Any]:
        """`notice` and `keep_notice`."""
        body = self.notice(record, tanggal, who)
        self.keep_notice(body)
        return body

    def file(self, record: DecisionRecord, body: Mapping[str, Any], who: Who) -> dict[str, Any]:
        """`filing` and `keep_filing` (counted again once when a notification came in between)."""
        try:
            entry = self.filing(record, body, who)
            self.keep_filing(entry)
        except KeberatanError as exc:
            if exc.kind != "notice-changed":
                raise
            entry = self.filing(record, body, who)
            self.keep_filing(entry)
        return entry

    def decide(self, keberatan: Mapping[str, Any], body: Mapping[str, Any], who: Who) -> Putusan:
        """`putusan` and `keep_putusan`."""
        done = self.putusan(keberatan, body, who)
        self.keep_putusan(done)
        return done

    def notice(self, record: DecisionRecord, tanggal: Any, who: Who) -> dict[str, Any]:
        """The notification that `record` reached its employee on `tanggal`, as answered."""
        when = self._dated(tanggal, "tanggal", recorded_on(record), "the day the decision was recorded")
        made = deadline(self._policy(record), when, "pemberitahuan")
        return {"decision_id": record.id, "tanggal": when.isoformat(), "batas": made.last.isoformat(),
                "batas_keberatan": made.describe()["batas_keberatan"], **who.step("pemberitahuan", self.now())}

    def keep_notice(self, body: dict[str, Any]) -> None:
        self._stored(self.store.notify, body["decision_id"], body["tanggal"], body)

    def filing(self, record: DecisionRecord, body: Mapping[str, Any], who: Who) -> dict[str, Any]:
        """A keberatan against `record` as answered: `body` holds diajukan_oleh, tanggal, alasan and
        bukti."""
        filer = text(body.get("diajukan_oleh"), "diajukan_oleh", MAX_NAME)
        if record.nip is not None and self._as_kept(record, "nip", filer) != record.nip:
            raise _refuse("diajukan_oleh", "a keberatan is filed by the employee the decision is for (nip "
                          + ("kept redacted" if "nip" in record.redacted else record.nip) + ")")
        reason = text(body.get("alasan"), "alasan", MAX_TEXT, single_line=False)
        evidence = body.get("bukti") or []
        if not isinstance(evidence, list) or len(evidence) > MAX_BUKTI:
            raise _refuse("bukti", f"a list of at most {MAX_BUKTI} texts")
        evidence = [text(item, f"bukti[{i}]", MAX_BUKTI_TEXT, single_line=False) for i, item in enumerate(evidence)]
        if record.keberatan_id is not None:
            raise KeberatanError("putusan-final", f"decision {record.id} is the putusan of keberatan "
                                 f"{record.keberatan_id}, and a putusan is final")
        limit = self.deadline_of(record)
        filed = self._dated(body.get("tanggal"), "tanggal", limit.notified,
                            "the day the decision reached the employee" if limit.source == "pemberitahuan"
                            else "the day the decision was recorded")
        if filed > limit.last:
            raise KeberatanError("keberatan-late", f"filed on {filed.isoformat()}, after its deadline "
                                 f"{limit.last.isoformat()} ({limit.words()})",
                                 [FieldError(path="tanggal", message=f"after the deadline {limit.last}")],
                                 batas=limit.last.isoformat())
        return {"keberatan_id": IDS.next(), "decision_id": record.id, "policy_id": record.policy_id,
                "status": "diajukan", **({"nip": record.nip} if record.nip is not None else {}),
                **({"periode": record.periode} if record.periode is not None else {}),
                "diajukan_oleh": self._as_kept(record, "nip", filer), "tanggal": filed.isoformat(),
                "alasan": reason, "bukti": evidence, **limit.describe(), "langkah": [who.step("diajukan", self.now())]}

    def keep_filing(self, entry: dict[str, Any]) -> None:
        """Keep a keberatan made by `filing`; a `notice-changed` error when a notification came in
        between (make it again)."""
        notice = entry["pemberitahuan"]
        self._stored(self.store.file_keberatan, entry, entry.get("nip"),
                     notice["tanggal"] if notice["sumber"] == "pemberitahuan" else None)

    def putusan(self, keberatan: Mapping[str, Any], body: Mapping[str, Any], who: Who) -> Putusan:
        """The putusan of `keberatan`: `body` holds diputus_oleh, tanggal, hasil, set (for diterima and
        diubah) and alasan."""
        if keberatan["status"] != "diajukan":
            raise KeberatanError("putusan-final", f"keberatan {keberatan['keberatan_id']} has its putusan "
                                 f"({keberatan['status']}) already, and a putusan is final")
        record = self.replayer.record(keberatan["decision_id"])
        decider = text(body.get("diputus_oleh"), "diputus_oleh", MAX_NAME)
        if self._as_kept(record, "nip", decider) == keberatan.get("diajukan_oleh"):
            raise _refuse("diputus_oleh", "the employee who filed the keberatan cannot decide it")
        for where, rater in _raters(record.input):
            if self._as_kept(record, where, decider) == rater:
                raise _refuse("diputus_oleh", f"the rater ({where}) cannot decide a keberatan against their own "
                              "rating; the rater's superior does")
        outcome = body.get("hasil")
        if outcome not in HASIL:
            raise _refuse("hasil", f"one of {', '.join(HASIL)}")
        when = self._dated(body.get("tanggal"), "tanggal", dt.date.fromisoformat(keberatan["tanggal"]),
                           "the day the keberatan was filed")
        reason = text(body.get("alasan"), "alasan", MAX_TEXT, single_line=False)
        changes = body.get("set")
        if outcome == "ditolak" and changes:
            raise _refuse("set", "a keberatan ditolak keeps the decision: it sets nothing")
        if outcome != "ditolak" and (not isinstance(changes, Mapping) or not changes):
            raise _refuse("set", f"a keberatan {outcome} says what changes: the fields and their values, such as "
                          '{"penilaian.rating_perilaku_kerja": "sesuai_ekspektasi"}')
        putusan: dict[str, Any] = {"diputus_oleh": decider, "tanggal": when.isoformat(), "hasil": outcome,
                                   "alasan": reason}
        done = Putusan(dict(keberatan))
        if outcome != "ditolak":
            assert isinstance(changes, Mapping)
            try:
                done.outcome, done.new = self.replayer.appeal(
                    record.id, changes, key_id=who.key_id, request_id=who.request_id,
                    keberatan_id=keberatan["keberatan_id"], alasan=reason)
            except ReplayError as exc:
                raise KeberatanError(exc.kind, str(exc), [FieldError(path=f"set.{f}", message=str(exc))
                                                          for f in exc.fields]) from None
            if done.new is None:
                raise _not_decided(done.outcome)
            putusan.update(set=dict(changes), decision_id=done.new.id)
        done.keberatan.update(status=outcome, putusan=putusan,
                              langkah=[*keberatan.get("langkah", []), who.step("diputus", self.now())])
        return done

    def keep_putusan(self, done: Putusan) -> None:
        """Keep a putusan and its new decision, both or neither."""
        self._stored(self.store.decide_keberatan, done.keberatan, None if done.new is None else row_of(done.new))

    # ---- helpers ----
    def _as_kept(self, record: DecisionRecord, field: str, value: str) -> str:
        """`value` as the store keeps `field` of `record`: its keyed hash when the field is redacted."""
        return self.store.redactor.hash(value) if field in record.redacted else value

    @staticmethod
    def _stored(write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except KeberatanConflict as exc:
            raise KeberatanError(exc.kind, str(exc)) from None


def _raters(record: Any) -> list[tuple[str, Any]]:
    """Who rated the record, by where it says so: `penilaian.penilai_nip`, and each SKP segment's."""
    if not isinstance(record, dict):
        return []
    found = []
    rated = record.get("penilaian")
    if isinstance(rated, dict) and rated.get("penilai_nip") is not None:
        found.append(("penilaian.penilai_nip", rated["penilai_nip"]))
    skp = record.get("skp")
    segments = skp.get("segmen") if isinstance(skp, dict) else None
    for i, segment in enumerate(segments if isinstance(segments, list) else []):
        rated = segment.get("penilaian") if isinstance(segment, dict) else None
        if isinstance(rated, dict) and rated.get("penilai_nip") is not None:
            found.append((f"skp.segmen[{i}].penilaian.penilai_nip", rated["penilai_nip"]))
    return found


def _not_decided(outcome: Replay | None) -> KeberatanError:
    result = outcome.result if outcome is not None else None
    error = result.error if isinstance(result, ErrorResult) else None
    if error is not None and error.kind == "record":
        return KeberatanError("invalid-record", "the record as the putusan sets it is not valid: " + "; ".join(
            f"{f.path}: {f.message}" for f in error.fields), [FieldError(path=f"set.{f.path}", message=f.message)
                                                              for f in error.fields])
    return KeberatanError("evaluation-failed", "the record as the putusan sets it was not decided: "
                          + (error.message if error is not None else "; ".join(outcome.notes if outcome else [])))


__all__ = ["Deadline", "Desk", "HASIL", "KEBERATAN_STATUS", "KeberatanError", "Putusan", "Who",
           "deadline", "recorded_on"]
