"""Decision records over HTTP: every decision kept before it is answered, then read, replayed and
appealed by its id.

A `Recorder` sits between the endpoints and the store. The evaluate endpoints hand it each
decision (the batch processes hand it rows they made themselves), and it answers once the store
has committed them; the decisions endpoints read, replay and appeal through it. With API keys, a
record is readable only through a key for its policy (or an admin key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, Any, TypeVar

import msgspec
from anyio import CapacityLimiter, to_thread
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from kinerja_rules.decision import ENCODER, Decision, ErrorResult
from kinerja_rules.documents import declared_id
from kinerja_rules.engine import Engine, validate_files
from kinerja_rules.keberatan import MAX_TEXT, KeberatanError, text
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.recording import Recording, Replayer, ReplayError, source_of, traces_of
from kinerja_rules.server.auth import key_scope
from kinerja_rules.server.bodies import (
    JSON,
    FileName,
    Limits,
    batch_length,
    check_json,
    decode,
    decode_record,
    too_large,
    unique_members,
    within_limits,
)
from kinerja_rules.server.problems import ApiProblem, DiagnosticOut
from kinerja_rules.server.work import Work, client_gone
from kinerja_rules.store import Chunk, DecisionRecord, Row, Run, Store, StoreError, row_of

_log = logging.getLogger("kinerja_rules.server")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PERIODE = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_POLICY_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_PAGE = 1000
_UTC_NOW = partial(dt.datetime.now, dt.UTC)
T = TypeVar("T")


class Recorder:
    """Keeps the service's decisions in `store`; deletes what is older than `retention_days`. `clock`
    says when a decision is made and a keberatan step taken (a test sets the day)."""

    def __init__(self, store: Store, retention_days: int | None = None, timeout: float = 5.0,
                 clock: Callable[[], dt.datetime] = _UTC_NOW) -> None:
        self.store = store
        self.clock = clock
        self.retention_days = retention_days
        self.timeout = timeout  # --store-timeout: past it, a request the store has not answered is a 503
        self.stalled = False  # the store let a request wait past `timeout`, and has answered none since
        self._replayers: dict[int, Replayer] = {}
        self._pruning: asyncio.Task[None] | None = None
        self._threads = CapacityLimiter(8)  # reads of a store that stopped answering hold these, no more
        self._probe: asyncio.Future[Any] | None = None
        self._probed = 0.0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` (a store read) on a thread, answered within `timeout`; a store that does not
        answer in time is a 503 `not-recorded`, and the service not ready until it answers again."""
        try:
            result = await asyncio.wait_for(to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True,
                                                               limiter=self._threads), self.timeout)
        except TimeoutError:
            raise self._stall() from None
        self.stalled = False
        return result

    def _stall(self) -> ApiProblem:
        self.stalled = True
        _log.error("the decision store did not answer within %g s (--store-timeout)", self.timeout)
        return ApiProblem("not-recorded", f"the decision store did not answer within {self.timeout:g} s; nothing "
                                          "was answered: try again")

    async def responsive(self) -> bool:
        """Whether the store answers a trivial read within `timeout` (asked at most once a second, and
        never while the last question waits)."""
        now = time.monotonic()
        if self._probe is None and now - self._probed >= 1.0:
            self._probed = now
            self._probe = asyncio.ensure_future(self._ask())
        if self._probe is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._probe), min(self.timeout, 2.0))
            except TimeoutError:
                self.stalled = True
        return not self.stalled

    async def _ask(self) -> None:
        try:
            await self.call(self.store.ping)
        except (ApiProblem, StoreError):
            self.stalled = True
        finally:
            self._probe = None

    def recording(self, request: Request[Any, Any, Any], run_id: str | None = None) -> Recording:
        key = key_scope(request)
        return Recording(redactor=self.store.redactor, key_id=key.name if key is not None else None,
                         request_id=request.scope.get("state", {}).get("request_id"), run_id=run_id,
                         made_at=self.clock().isoformat())

    async def keep_one(self, request: Request[Any, Any, Any], policy: CompiledPolicy, decision: Decision,
                       record: Any) -> Decision:
        """`decision` with its id, once its record is committed."""
        rows: list[Row] = []
        decision = self.recording(request).keep(decision, record, rows)
        await self.keep_rows(policy, rows)
        return decision

    async def keep_rows(self, policy: CompiledPolicy, rows: list[Row], runs: Sequence[Run] = (),
                        chunks: Sequence[Chunk] = ()) -> None:
        """Commit `rows` (and the `runs` and `chunks` they name), archiving the policy's sources with
        them; the request fails (503 not-recorded) when the store cannot keep them, and nothing is
        answered."""
        if not rows and not chunks:
            return
        try:  # shielded: a commit that comes after the answer gave up is still a whole one
            await asyncio.wait_for(asyncio.shield(self.store.put_async(rows, [source_of(policy)], runs, chunks)),
                                   self.timeout)
        except TimeoutError:
            raise self._stall() from None
        except StoreError as exc:
            _log.error("%s", exc)
            raise ApiProblem("not-recorded", "the decision store could not keep the decision(s); nothing was "
                                             "answered: try again") from None

    def replayer(self, engine: Engine) -> Replayer:
        key = id(engine.registry)
        found = self._replayers.get(key)
        if found is None:
            self._replayers = {key: (found := Replayer(self.store, engine.registry))}
        return found

    async def start(self) -> None:
        self.store.reopen()  # an application started again after a stop
        if self.retention_days is not None:
            self._pruning = asyncio.get_running_loop().create_task(self._prune_daily())

    async def _prune_daily(self) -> None:
        days = self.retention_days or 0
        while True:
            try:
                deleted = await to_thread.run_sync(self.store.delete_older_than, days)
                if deleted:
                    _log.info("retention: deleted %d decision record(s) older than %d days", deleted, days)
            except StoreError as exc:
                _log.error("retention: %s", exc)
            await asyncio.sleep(3600)

    def close(self) -> None:
        if self._pruning is not None:
            self._pruning.cancel()
        self.store.close()


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Replay a recorded decision; `set` gives the values of its redacted fields, if it has any."""

    set: dict[str, Any] = {}
    explain: bool = False


class AppealRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Decide a recorded decision again with amended inputs, by dotted field name; `alasan`, why."""

    set: dict[str, Any]
    alasan: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None


class ReplayResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    decision_id: str
    identical: bool
    differences: list[dict[str, Any]] = []
    notes: list[str] = []


class AppealResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    decision_id: str
    appeal_of: str
    identical: bool
    differences: list[dict[str, Any]] = []
    traces: dict[str, Any] = {}
    decision: Decision | None = None
    notes: list[str] = []


class DecisionList(msgspec.Struct, frozen=True, kw_only=True):
    decisions: list[dict[str, Any]]
    next_cursor: str | None


_READ_AT_ONCE = 8  # decisions read from the store at a time while a page is filled


def page_of(read: Callable[[str | None, int], list[DecisionRecord]], cursor: str | None, limit: int,
            max_bytes: int) -> bytes:
    """A `DecisionList` of at most `limit` decisions after `cursor`, encoded, that stops before it would
    pass `max_bytes` (its `next_cursor` then goes on from there). The store is read a few decisions at
    a time, so that neither the page nor what is read for it outgrows the limit. Raises a 422
    `response-too-large` for a first decision larger than the limit on its own."""
    out: list[bytes] = []
    size = len(b'{"decisions":[],"next_cursor":""}') + 36
    after, more = cursor, False
    while len(out) < limit:
        wanted = min(_READ_AT_ONCE, limit - len(out))
        found = read(after, wanted + 1)
        for record in found[:wanted]:
            encoded = ENCODER.encode(record.describe())
            if size + len(encoded) + 1 > max_bytes:
                if not out:
                    raise ApiProblem("response-too-large", f"decision {record.id} is larger than the {max_bytes} "
                                     "bytes the service sends in one answer; read it alone with a larger "
                                     "--max-response-bytes")
                return _page(out, after)
            out.append(encoded)
            size += len(encoded) + 1
            after = record.id
        more = len(found) > wanted
        if not more:
            break
    return _page(out, after if more else None)


def _page(decisions: list[bytes], next_cursor: str | None) -> bytes:
    return b'{"decisions":[' + b",".join(decisions) + b'],"next_cursor":' + ENCODER.encode(next_cursor) + b"}"


def _work(request: Request[Any, Any, Any]) -> Work:
    work: Work = request.app.state.work
    return work


def _recorder(request: Request[Any, Any, Any]) -> Recorder:
    recorder: Recorder | None = request.app.state.recorder
    if recorder is None:
        raise ApiProblem("no-decision-store", "this service records no decisions (it was started with --no-store)")
    return recorder


def _readable(request: Request[Any, Any, Any], record: DecisionRecord | None, decision_id: str) -> DecisionRecord:
    key = key_scope(request)
    if record is None or (key is not None and not key.admin and not key.allows(record.policy_id)):
        raise ApiProblem("unknown-decision", f"no decision {decision_id!r} is recorded"
                         + (" that this key may read" if key is not None else ""))
    return record


async def _decision_of(request: Request[Any, Any, Any], recorder: Recorder, decision_id: str) -> DecisionRecord:
    """The recorded decision `decision_id`, read within the store's time budget, if the key may read it."""
    return _readable(request, await recorder.call(recorder.store.get, _id(decision_id)), decision_id)


def _problem(exc: ReplayError) -> ApiProblem:
    kind = exc.kind if exc.kind in ("unknown-decision", "redacted-fields", "invalid-set",
                                    "redacted-value-mismatch") else "not-replayable"
    if exc.fields:
        return ApiProblem(kind, str(exc), paths=exc.fields)
    return ApiProblem(kind, str(exc))


def _id(decision_id: str) -> str:
    if not _UUID.fullmatch(decision_id):
        raise ApiProblem("unknown-decision", "a decision id is a UUID such as 0190b1a4-7c1e-7d2a-9f00-3b1c2d4e5f60")
    return decision_id


def set_body(raw: bytes, kind: type[Any], limits: Limits) -> Any:
    """A body with a `set` of amended values (or none), decoded and bounded."""
    body = decode(raw, kind, limits)
    if body.set is not None:
        within_limits(body.set, raw, limits, "set")
        unique_members(raw, {"set": body.set})
    return body


def page_scope(request: Request[Any, Any, Any], what: str, policy: str | None, nip: str | None, limit: int,
               cursor: str | None) -> list[str] | None:
    """The query of a page of `what` (decisions, keberatan) checked; the policies the key may read
    (None: all)."""
    if policy is not None and not _POLICY_ID.fullmatch(policy):
        raise ApiProblem("bad-request", "policy: a policy id (lower case letters, digits, '-', '_')")
    if nip is not None and not (0 < len(nip) <= 64):
        raise ApiProblem("bad-request", "nip: at most 64 characters")
    if not 1 <= limit <= MAX_PAGE:
        raise ApiProblem("bad-request", f"limit: from 1 to {MAX_PAGE}")
    if cursor is not None and not _UUID.fullmatch(cursor):
        raise ApiProblem("bad-request", "cursor: the next_cursor of the previous page")
    key = key_scope(request)
    if key is None or key.admin or "*" in key.policies:
        return None
    if policy is not None and policy not in key.policies:
        raise ApiProblem("forbidden", f"key {key.name!r} may not read {what} of policy {policy!r}", policy=policy)
    return list(key.policies)


class DecisionController(Controller):
    """Recorded decisions: read them, replay them with the policy in force then, appeal them."""

    path = "/v1/decisions"
    tags = ["decisions"]

    @get("/{decision_id:str}", operation_id="getDecision", summary="A recorded decision: its input, outputs, "
         "policy version and trace", responses={200: ResponseSpec(dict[str, Any], generate_examples=False,
                                                                   description="The decision record")})
    async def get_decision(self, request: Request[Any, Any, Any], decision_id: FromPath[str]) -> Response[bytes]:
        recorder = _recorder(request)
        record = await recorder.call(recorder.store.get, _id(decision_id))
        limits: Limits = request.app.state.limits
        encoded = ENCODER.encode(_readable(request, record, decision_id).describe())
        if len(encoded) > limits.max_response_bytes:
            raise ApiProblem("response-too-large", f"decision {decision_id} is larger than the "
                             f"{limits.max_response_bytes} bytes the service sends in one answer")
        return Response(encoded, media_type=JSON)

    @get("/", operation_id="findDecisions", summary="Recorded decisions by policy, NIP and periode, page by page",
         responses={200: ResponseSpec(DecisionList, generate_examples=False, description="A page of decisions")})
    async def find(self, request: Request[Any, Any, Any], policy: FromQuery[str | None] = None,
                   nip: FromQuery[str | None] = None, periode: FromQuery[str | None] = None,
                   limit: FromQuery[int] = 100, cursor: FromQuery[str | None] = None) -> Response[bytes]:
        recorder = _recorder(request)
        if periode is not None and not _PERIODE.fullmatch(periode):
            raise ApiProblem("bad-request", "periode: YYYY-MM, such as 2025-03")
        allowed = page_scope(request, "decisions", policy, nip, limit, cursor)
        limits: Limits = request.app.state.limits

        def read(after: str | None, count: int) -> list[DecisionRecord]:
            return recorder.store.find(policy_id=policy, nip=nip, periode=periode, limit=count, after=after,
                                       policies=allowed)

        return Response(await recorder.call(page_of, read, cursor, limit, limits.max_response_bytes), media_type=JSON)

    @post("/{decision_id:str}/replay", operation_id="replayDecision", status_code=200,
          summary="Decide a recorded decision again with its archived policy and as_of: identical or not",
          responses={200: ResponseSpec(ReplayResult, generate_examples=False, description="The replay")})
    async def replay(self, request: Request[Any, Any, Any], decision_id: FromPath[str]) -> Response[bytes]:
        recorder = _recorder(request)
        raw = await request.body()
        body = set_body(raw, ReplayRequest, request.app.state.limits) if raw.strip() else ReplayRequest()
        replayer = recorder.replayer(request.app.state.service.current())
        _readable(request, await recorder.call(recorder.store.get, _id(decision_id)), decision_id)
        try:
            outcome = await _work(request).run(f"the replay of {decision_id}", replayer.replay, decision_id, body.set,
                                               body.explain, disconnected=partial(client_gone, request))
        except ReplayError as exc:
            raise _problem(exc) from None
        return Response(ENCODER.encode(outcome.answer()), media_type=JSON)

    @post("/{decision_id:str}/appeal", operation_id="appealDecision", status_code=200,
          summary="Decide a recorded decision again with amended inputs: a new record naming the original",
          responses={200: ResponseSpec(AppealResult, generate_examples=False, description="The appeal")})
    async def appeal(self, request: Request[Any, Any, Any], decision_id: FromPath[str]) -> Response[bytes]:
        recorder = _recorder(request)
        body: AppealRequest = set_body(await request.body(), AppealRequest, request.app.state.limits)
        try:
            reason = None if body.alasan is None else text(body.alasan, "alasan", MAX_TEXT, single_line=False)
        except KeberatanError as exc:
            raise ApiProblem("invalid-body", str(exc), errors=list(exc.fields)) from None
        replayer = recorder.replayer(request.app.state.service.current())
        original = _readable(request, await recorder.call(recorder.store.get, _id(decision_id)), decision_id)
        how = recorder.recording(request)
        try:
            outcome, new = await _work(request).run(
                f"the appeal of {decision_id}", partial(replayer.appeal, decision_id, body.set, key_id=how.key_id,
                                                        request_id=how.request_id, alasan=reason),
                disconnected=partial(client_gone, request))
        except ReplayError as exc:
            raise _problem(exc) from None
        if new is None:
            error = outcome.result.error if isinstance(outcome.result, ErrorResult) else None
            if error is not None and error.kind == "record":
                raise ApiProblem("invalid-record", "the amended record is not valid: " + "; ".join(
                    f"{f.path}: {f.message}" for f in error.fields), errors=error.fields)
            raise ApiProblem("evaluation-failed", "the amended record was not decided: "
                             + (error.message if error is not None else "; ".join(outcome.notes)))
        engine, _ = replayer.compiled(original.policy_digest)
        assert engine is not None
        await recorder.keep_rows(engine.policy(original.policy_id), [row_of(new)])
        names = [d["output"] for d in outcome.differences]
        result = AppealResult(decision_id=new.id, appeal_of=original.id, identical=not outcome.differences,
                              differences=outcome.differences, traces=traces_of(outcome.before, outcome.result, names),
                              decision=outcome.result if isinstance(outcome.result, Decision) else None,
                              notes=outcome.notes)
        return Response(ENCODER.encode(result), media_type=JSON)


class ProposedFiles(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The proposed policy files, named as `POST /v1/validate` names them (`policy.yaml`)."""

    files: Annotated[dict[FileName, str], msgspec.Meta(min_length=1, max_length=64)]


class ImpactRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Records decided under the policy in service (or an archived version) and under proposed files."""

    policy: str
    proposed: ProposedFiles
    records: list[msgspec.Raw]
    groups: dict[str, msgspec.Raw] | None = None
    seats: list[msgspec.Raw] | None = None
    as_of: dt.date | None = None
    base_digest: str | None = None
    explain: bool = False


_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_PROPOSED_FILES = 64


@post("/v1/impact", operation_id="impact", status_code=200, tags=["decisions"],
      summary="What a policy change does: predikat transitions, TPP totals before and after, who changes",
      responses={200: ResponseSpec(dict[str, Any], generate_examples=False, description="The impact report")})
async def impact_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    from kinerja_rules.impact import impact
    from kinerja_rules.server.batch import decode_records

    check_json(request)
    limits: Limits = request.app.state.limits
    raw = await request.body()
    body: ImpactRequest = decode(raw, ImpactRequest, limits)
    unique_members(raw, {"proposed": {"files": body.proposed.files}})
    key = key_scope(request)
    if key is not None and not key.admin and not key.allows(body.policy):
        raise ApiProblem("forbidden", f"key {key.name!r} may not use policy {body.policy!r}", policy=body.policy)
    batch_length(len(body.records), body.explain, limits)
    files = dict(body.proposed.files)
    if not files or len(files) > MAX_PROPOSED_FILES:
        raise ApiProblem("invalid-body", f"proposed.files: from 1 to {MAX_PROPOSED_FILES} files")
    engine: Engine = request.app.state.service.current()
    if body.base_digest is not None:
        if not _DIGEST.fullmatch(body.base_digest):
            raise ApiProblem("invalid-body", "base_digest: a policy digest (64 hex digits)")
        recorder = _recorder(request)
        try:
            base, notes = await to_thread.run_sync(recorder.replayer(engine).compiled, body.base_digest)
        except ReplayError as exc:
            raise _problem(exc) from None
        if base is None:
            raise ApiProblem("not-replayable", "; ".join(notes))
    else:
        base = engine
    base.policy(body.policy)  # an unknown policy is 404, naming those there are
    validator = request.app.state.validator
    allowed = _parents_for(engine, files, key)
    checked = await validator.check(engine, files, allowed)  # within its time budget, before it is compiled here
    if not checked.ok:
        raise ApiProblem("invalid-proposal", f"the proposed files have {len(checked.problems)} problem(s)",
                         diagnostics=[DiagnosticOut.of(d) for d in checked.problems])
    work: Work = request.app.state.work
    gone = partial(client_gone, request)
    report = await work.run("compiling the proposed files", partial(
        validate_files, files, registry=engine.registry, base_sources=engine.sources(allowed)), disconnected=gone)
    if body.policy not in report.policies:
        raise ApiProblem("invalid-proposal", f"the proposed files do not hold policy {body.policy!r} (they hold "
                         f"{', '.join(sorted(report.policies)) or 'none'})")
    proposed = Engine(report.policies, engine.registry)
    groups = None if body.groups is None else {
        k: decode_record(v, limits, f"groups[{ENCODER.encode(k).decode()}]") for k, v in body.groups.items()}
    seats = None if body.seats is None else [decode_record(v, limits, f"seats[{i}]") for i, v in enumerate(body.seats)]
    records = decode_records(base.policy(body.policy), body.records, limits)
    outcome = await work.run(f"an impact report over {len(records)} records", lambda: impact(
        base, proposed, body.policy, list(enumerate(records, start=1)), groups, seats, body.as_of,
        body.explain).report(), disconnected=gone)
    encoded = ENCODER.encode(outcome)
    if len(encoded) > limits.max_response_bytes:
        raise too_large(limits)
    return Response(encoded, media_type=JSON)


def _parents_for(engine: Engine, files: dict[str, str], key: Any) -> list[str]:
    """The policies in service the proposed files may extend: every one the key may use, except the
    policies the files propose anew and those extending them (their files would declare them twice)."""
    proposed = {declared for text in files.values() if (declared := declared_id(text)) is not None}

    def chain(policy_id: str) -> set[str]:
        seen: set[str] = set()
        while policy_id and policy_id not in seen and policy_id in engine.ids:
            seen.add(policy_id)
            policy_id = engine.policy(policy_id).extends or ""
        return seen

    return [pid for pid in engine.ids if not chain(pid) & proposed and (key is None or key.admin or key.allows(pid))]
