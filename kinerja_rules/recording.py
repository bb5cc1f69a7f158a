"""Decision records: what the store keeps of a decision, and replaying it with the archived policy.

`Recording` is the one sink every recorder (`kinerja eval --record`, the service, its batch
processes) keeps decisions through: a row per decision (`store.decision_row`), or, for a batch
kept as it came, chunks (`Chunker`, `store.Chunk`).

A replay compiles the policy from the sources archived under the decision's digest (not from
the files in service, which may have changed since) and decides the recorded input again with
the same `as_of`; a population member is decided again with the whole run it was decided in.
An appeal does the same with amended inputs and keeps the result as a new record naming the
original (`appeal_of`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kinerja_rules.decision import Decision, ErrorResult
from kinerja_rules.documents import tests_only
from kinerja_rules.engine import Engine, SourceGroup
from kinerja_rules.errors import KinerjaError, PolicyError
from kinerja_rules.policy import CompiledPolicy, plugins_used
from kinerja_rules.registry import Registry
from kinerja_rules.store import (
    CHUNK_DECISIONS,
    IDS,
    NO_REDACTION,
    Chunk,
    DecisionRecord,
    Redactor,
    Row,
    Source,
    Store,
    decision_row,
    findable,
    kept_subject,
)

MAX_SET = 64
"""The most fields one appeal (or replay) may set."""
MAX_CHAIN = 1000
"""The longest chain of appeals (an appeal of an appeal ...) followed back to its first decision."""
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,6}")


class ReplayError(KinerjaError):
    """A decision cannot be replayed as asked; `kind` says why (for the HTTP problem type)."""

    def __init__(self, kind: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.fields = fields or []


_SOURCES: dict[str, Source] = {}
_SOURCES_LOCK = threading.Lock()


def source_of(policy: CompiledPolicy) -> Source:
    """The archive entry of a compiled policy: its files (test-case files left out; they never
    change a decision) and the plugins it uses."""
    known = _SOURCES.get(policy.digest)
    if known is None:
        files = {s.name: s.text for s in policy.checked.assembled.sources if not tests_only(s.text)}
        known = Source(policy.digest, policy.id, files, plugins_used(policy.checked))
        with _SOURCES_LOCK:
            if len(_SOURCES) > 256:
                _SOURCES.clear()
            _SOURCES[policy.digest] = known
    return known


def record_of(decision: Decision, record: Any, *, made_at: dt.datetime | None = None, key_id: str | None = None,
              run_id: str | None = None, appeal_of: str | None = None, request_id: str | None = None,
              redactor: Redactor = NO_REDACTION, keberatan_id: str | None = None,
              alasan: str | None = None) -> DecisionRecord:
    """The record that keeps `decision` of `record` (its id is the decision's, or a new one)."""
    kept, redacted = redactor.apply(record)
    nip = kept.get("nip") if isinstance(kept, dict) else None
    periode = kept.get("periode") if isinstance(kept, dict) else None
    population = decision.population if isinstance(decision.population, dict) else None
    subject = decision.subject if isinstance(decision.subject, dict) else None
    if subject is not None and redacted:
        subject = kept_subject(subject, redactor)
    return DecisionRecord(subject=subject,
        id=decision.decision_id if isinstance(decision.decision_id, str) else IDS.next(),
        made_at=made_at or dt.datetime.now(dt.UTC), policy_id=decision.policy.id,
        policy_version=decision.policy.version, policy_digest=decision.policy.digest, as_of=decision.as_of,
        input=kept, outputs=decision.outputs, trace=decision.trace, nip=nip if isinstance(nip, str) else None,
        periode=periode if isinstance(periode, str) else None, key_id=key_id, run_id=run_id, appeal_of=appeal_of,
        redacted=redacted, population=population, request_id=request_id, keberatan_id=keberatan_id, alasan=alasan)


def with_id(decision: Decision) -> Decision:
    """`decision` with a new decision id."""
    return msgspec.structs.replace(decision, decision_id=IDS.next())


# ---- amended values ----

# ---- the recording sink: a decision's row, or a batch's chunks ----

@dataclass(frozen=True)
class Recording:
    """How decisions are recorded: who asked (key, request), which fields are redacted, and the
    population run they belong to. Travels to the batch processes, which make the rows there."""

    redactor: Redactor = NO_REDACTION
    key_id: str | None = None
    request_id: str | None = None
    run_id: str | None = None
    made_at: str = ""  # when the request came (ISO 8601, UTC); now when not given

    @property
    def chunked(self) -> bool:
        """Whether a batch's decisions are kept in chunks, as they came and were answered: not when
        fields are redacted, which must not be kept as they came."""
        return not self.redactor.fields

    def keep(self, decision: Decision, record: Any, rows: list[Row]) -> Decision:
        """`decision` with its id, its row added to `rows`."""
        decision = with_id(decision)
        rows.append(decision_row(decision, record, self.made_at or dt.datetime.now(dt.UTC).isoformat(),
                                 key_id=self.key_id, run_id=self.run_id, request_id=self.request_id,
                                 redactor=self.redactor))
        return decision


class Chunker:
    """Keeps a batch's decisions in chunks (`Chunk`), as they are decided: where each decision's record
    and result lie, and the columns it is found by, and nothing else of it held on to."""

    def __init__(self, recording: Recording, records: Sequence[msgspec.Raw | bytes], results: list[bytes]) -> None:
        self.recording, self.records, self.results = recording, records, results
        self.made_at = recording.made_at or dt.datetime.now(dt.UTC).isoformat()
        self.chunks: list[Chunk] = []
        self._decisions: list[tuple[Any, ...]] = []
        self._first = self._last = self._input_at = self._answer_at = 0
        self._policy = ("", "", "")

    def add(self, position: int, result: Any, record: Any) -> None:
        """`results[position]`, just added: a decision (with its id) of `record`, or an error."""
        if type(result) is Decision:
            if not self._decisions:  # ids count up: the chunk's id, its first decision's, sorts first
                self._first, self._input_at, self._answer_at = position, 0, 0
                policy = result.policy
                self._policy = (policy.id, policy.version, policy.digest)
            nip = periode = None
            if type(record) is dict:
                nip, periode = record.get("nip"), record.get("periode")
            input_len, answer_len = len(self.records[position]), len(self.results[position])
            self._decisions.append((result.decision_id, findable(nip), findable(periode), result.as_of,
                                    self._input_at, input_len, self._answer_at, answer_len))
            self._last = position
        if self._decisions:
            self._input_at += len(self.records[position])
            self._answer_at += len(self.results[position]) + 1
            if len(self._decisions) == CHUNK_DECISIONS:
                self.close()

    def close(self) -> None:
        """End the chunk being filled."""
        if self._decisions:
            first, last = self._first, self._last + 1
            self.chunks.append(Chunk.of(b"".join(self.records[first:last]), b",".join(self.results[first:last]),
                                        self._decisions, self.made_at, self._policy, self.recording.key_id,
                                        self.recording.request_id))
            self._decisions = []


def parse_set(values: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    """Dotted field names (`perilaku.atasan`, `skp.indikator.0.capaian`) and their new values;
    raises ReplayError naming the first that is not one."""
    if len(values) > MAX_SET:
        raise ReplayError("invalid-set", f"at most {MAX_SET} fields can be set at once, not {len(values)}")
    out: dict[tuple[str, ...], Any] = {}
    for name, value in values.items():
        parts = tuple(name.split("."))
        if len(name) > 300 or len(parts) > 16 or not all(_PART.fullmatch(p) for p in parts) or parts[0].isdigit():
            raise ReplayError("invalid-set", f"set: {name[:80]!r} is not a field's dotted name (such as "
                                             "perilaku.atasan or skp.indikator.0.capaian)", [name[:80]])
        out[parts] = value
    return out


IDENTITY = ("nip", "periode")
"""The fields that say whom and when a decision is for: never changed by an appeal or a replay."""


def _value_at(record: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if isinstance(record, dict):
            record = record.get(part)
        elif isinstance(record, list) and part.isdigit() and int(part) < len(record):
            record = record[int(part)]
        else:
            return None
    return record


def amended(record: Any, changes: Mapping[tuple[str, ...], Any]) -> Any:
    """`record` with each change applied (copies along the way; the record itself is untouched)."""
    for parts, value in changes.items():
        record = _put(record, parts, value, ".".join(parts))
    return record


def _put(holder: Any, parts: tuple[str, ...], value: Any, name: str) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(holder, list):
        if not head.isdigit() or int(head) >= len(holder):
            raise ReplayError("invalid-set", f"set: {name}: the record has no item {head} there", [name])
        copy: Any = list(holder)
        index: Any = int(head)
    elif isinstance(holder, dict):
        copy, index = dict(holder), head
    else:
        raise ReplayError("invalid-set", f"set: {name}: the record holds no fields under {head!r}", [name])
    if rest:
        inner = copy[index] if (isinstance(copy, list) or index in copy) else {}
        copy[index] = _put(inner, rest, value, name)
    else:
        copy[index] = value
    return copy


# ---- replay ----

@dataclass
class Replay:
    """A recorded decision decided again: with its archived policy, its input (amended for an
    appeal) and its `as_of`."""

    original: DecisionRecord
    result: Decision | ErrorResult | None  # None: the archived policy could not be compiled here
    differences: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    before: Decision | ErrorResult | None = None  # an appeal: the original decided again, with its trace

    @property
    def identical(self) -> bool:
        return self.result is not None and not self.differences and not self.notes and not isinstance(
            self.result, ErrorResult)

    def answer(self) -> dict[str, Any]:
        """What `POST /v1/decisions/{id}/replay` and `kinerja replay` answer."""
        out: dict[str, Any] = {"decision_id": self.original.id, "identical": self.identical}
        if not self.identical:
            out["differences"] = self.differences
        if self.notes:
            out["notes"] = self.notes
        if isinstance(self.result, ErrorResult):
            out["error"] = self.result.error
        return out


class Replayer:
    """Replays and appeals over a store; keeps the policies it compiled from archived sources (by
    digest, a few at a time)."""

    def __init__(self, store: Store, registry: Registry, keep: int = 8) -> None:
        self.store = store
        self.registry = registry
        self._engines: OrderedDict[str, tuple[Engine | None, list[str]]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def record(self, decision_id: str) -> DecisionRecord:
        found = self.store.get(decision_id)
        if found is None:
            raise ReplayError("unknown-decision", f"no decision {decision_id!r} is recorded")
        return found

    def compiled(self, digest: str) -> tuple[Engine | None, list[str]]:
        """The engine of an archived policy version, and notes on what differs from the archive
        (a plugin missing or at another version or code); None when it does not compile here."""
        with self._lock:
            if digest in self._engines:
                self._engines.move_to_end(digest)
                return self._engines[digest]
        source = self.store.source(digest)
        if source is None:
            raise ReplayError("sources-missing", f"the sources of policy digest {digest} are not in the store")
        notes = self._plugin_notes(source)
        try:
            engine: Engine | None = Engine.from_groups([SourceGroup(source.files, (source.policy_id,))],
                                                       self.registry)
        except PolicyError as exc:
            engine = None
            notes.append("the archived policy does not compile with the plugins installed here: "
                         + "; ".join(d.message for d in exc.diagnostics[:3]))
        if engine is not None and engine.policy(source.policy_id).digest != digest and not notes:
            notes.append("the archived policy compiles to another digest here (another kinerja-rules version), "
                         "so its decisions may differ")
        with self._lock:
            self._engines[digest] = (engine, notes)
            while len(self._engines) > self._keep:
                self._engines.popitem(last=False)
        return engine, notes

    def _plugin_notes(self, source: Source) -> list[str]:
        notes = []
        for name, archived in sorted(source.plugins.items()):
            installed = self.registry.plugins.get(name)
            if installed is None:
                notes.append(f"plugin {name} {archived.get('version', '')} is not installed".replace("  ", " "))
            elif installed != archived.get("version", ""):
                notes.append(f"plugin {name} is installed at version {installed or '(none)'}, not "
                             f"{archived.get('version') or '(none)'} as archived")
        return notes

    def replay(self, decision_id: str, fill: Mapping[str, Any] | None = None, explain: bool = False) -> Replay:
        """Decide a recorded decision again; `fill` gives the values of its redacted fields (which
        the store does not hold), and nothing else."""
        original = self.record(decision_id)
        changes = self._checked_set(original, fill or {})
        others = sorted(".".join(p) for p in changes if ".".join(p) not in original.redacted)
        if others:
            raise ReplayError("invalid-set", "a replay sets only redacted fields; to change "
                              f"{', '.join(others)} appeal the decision", others)
        return self._again(original, changes, explain or original.trace is not None)

    def appeal(self, decision_id: str, values: Mapping[str, Any], *, key_id: str | None = None,
               request_id: str | None = None, keberatan_id: str | None = None,
               alasan: str | None = None) -> tuple[Replay, DecisionRecord | None]:
        """Decide a recorded decision again with amended inputs, both with traces; the new decision
        as a record naming the original (and the keberatan whose putusan it is, and why), None when it
        did not decide, for the caller to keep."""
        original = self.record(decision_id)
        changes = self._checked_set(original, values)
        if not any(".".join(p) not in original.redacted for p in changes):
            raise ReplayError("invalid-set", "an appeal sets at least one field that is not redacted "
                                             "(such as perilaku.atasan)")
        before = self._again(original, {p: v for p, v in changes.items() if ".".join(p) in original.redacted}, True)
        after = self._again(original, changes, True)
        after.before = before.result
        if isinstance(before.result, Decision) and isinstance(after.result, Decision):
            after.differences = differences(before.result.outputs, after.result.outputs)
        new = None
        if isinstance(after.result, Decision):
            kept = amended(original.input, {p: v for p, v in changes.items() if ".".join(p) not in original.redacted})
            new = dataclasses.replace(  # redacted fields stay kept as their hashes, as in the original
                record_of(with_id(after.result), kept, key_id=key_id, run_id=original.run_id, appeal_of=original.id,
                          request_id=request_id, keberatan_id=keberatan_id, alasan=alasan),
                redacted=original.redacted, nip=original.nip)
            if new.subject is not None and original.redacted:
                new = dataclasses.replace(new, subject=kept_subject(new.subject, self.store.redactor))
            after.result = msgspec.structs.replace(after.result, decision_id=new.id)
        return after, new

    def _checked_set(self, original: DecisionRecord, values: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
        """`values` as changes to `original`'s input: never to whom or when it is (`nip`, `periode`),
        and a redacted field only to the value whose keyed hash the store holds."""
        changes = parse_set(values)
        for parts, value in changes.items():
            name = ".".join(parts)
            if name in original.redacted:
                if _value_at(original.input, parts) != self.store.redactor.hash(value):
                    raise ReplayError("redacted-value-mismatch", f"set: {name}: the value given is not the one "
                                      "recorded (the store keeps its keyed hash, and it differs)", [name])
            elif name in IDENTITY:
                raise ReplayError("invalid-set", f"set: {name} says whom and when the decision is for; an appeal "
                                  "or a replay cannot change it", [name])
        return changes

    def _again(self, original: DecisionRecord, changes: Mapping[tuple[str, ...], Any], explain: bool) -> Replay:
        missing = sorted(set(original.redacted) - {".".join(p) for p in changes})
        if missing:
            raise ReplayError("redacted-fields", f"the store keeps {', '.join(missing)} of this decision as a keyed "
                              "hash, not its value: supply "
                              + (" ".join(f"--set {m}=VALUE" for m in missing)) + " (over HTTP: "
                              + '"set": {' + ", ".join(f'"{m}": …' for m in missing) + "})", missing)
        engine, notes = self.compiled(original.policy_digest)
        if engine is None:
            return Replay(original, None, notes=notes)
        record = amended(original.input, changes)
        if original.run_id is None:
            result: Decision | ErrorResult = engine.evaluate_safely(original.policy_id, record, original.as_of, explain)
        else:
            result = self._in_run(engine, original, record, explain)
        replay = Replay(original, result, notes=list(notes))
        if isinstance(result, Decision):
            replay.differences = differences(original.outputs, result.outputs)
        return replay

    def _in_run(self, engine: Engine, original: DecisionRecord, record: Any, explain: bool) -> Decision | ErrorResult:
        """Decide `record` (the member `original`, as amended) again within the run it was decided in."""
        found = self.store.run(original.run_id or "")
        if found is None:
            raise ReplayError("sources-missing", f"the population run {original.run_id} is not in the store")
        run, members = found
        own = self._member_of(original, {member.id for member in members})
        for member in members:
            missing = set(member.redacted) - set(original.redacted)
            if member.redacted and member.id != own and missing:
                raise ReplayError("redacted-fields", f"the run holds redacted fields of other members "
                                  f"({', '.join(sorted(missing))}); it cannot be decided again", sorted(missing))
        records = [record if member.id == own else member.input for member in members]
        position = [member.id for member in members].index(own)
        # only this member's decision is traced; the others are decided as the run needs them, no more
        results = [r for r in engine.evaluate_population(original.policy_id, records, run.groups, run.seats,
                                                         run.as_of, frozenset({position}) if explain else False)
                   if isinstance(r, (Decision, ErrorResult))]
        return results[position]

    def _member_of(self, decision: DecisionRecord, members: set[str]) -> str:
        """The member of its run that `decision` stands for: itself, or what its chain of appeals
        (an appeal of an appeal ...) goes back to."""
        seen: set[str] = set()
        record: DecisionRecord | None = decision
        while record is not None and record.id not in members:
            if record.appeal_of is None or record.id in seen or len(seen) >= MAX_CHAIN:
                record = None
                break
            seen.add(record.id)
            record = self.store.get(record.appeal_of)
        if record is None:
            raise ReplayError("sources-missing", f"decision {decision.id} goes back to no member of its run "
                                                 f"{decision.run_id} (retention deleted it)")
        return record.id


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The outputs whose values differ, by dotted name in order: `{output, before, after}` (an output
    one side lacks is null there). Equal parts are passed over whole."""
    out: list[dict[str, Any]] = []
    _differ(before, after, "", out)
    return out


def _differ(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str, out: list[dict[str, Any]]) -> None:
    for name in [*before, *(n for n in after if n not in before)]:
        a, b = before.get(name), after.get(name)
        if type(a) is type(b) and a == b:
            continue
        if type(a) is dict and type(b) is dict and a and b:
            _differ(a, b, f"{prefix}{name}.", out)
        else:
            out.append({"output": f"{prefix}{name}", "before": a, "after": b})


def traces_of(before: Decision | ErrorResult | None, after: Decision | ErrorResult | None,
              names: list[str]) -> dict[str, dict[str, Any]]:
    """Both traces of each output named, side by side."""
    def one(result: Decision | ErrorResult | None, name: str) -> Any:
        if not isinstance(result, Decision) or not result.trace:
            return None
        entry = result.trace.get("outputs", {}).get(name)
        if not isinstance(entry, dict):
            return entry
        known = result.trace.get("definitions", {})
        uses = {d: known[d] for d in entry.get("uses", ()) if d in known}  # the definitions it was reached by
        return {**entry, "definitions": uses} if uses else entry

    return {name: {"before": one(before, name), "after": one(after, name)} for name in names}
