"""Keberatan over HTTP: a decision's pemberitahuan, the keberatan against it and its putusan
(`kinerja_rules.keberatan`), scoped by the key's policies like the decisions they concern.

Each step's work (the deadline from the archived policy, the decision made again) runs within the
work budget, and its writing within the store's time budget, so nothing is kept half.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from kinerja_rules.decision import ENCODER, Decision
from kinerja_rules.keberatan import (
    KEBERATAN_STATUS,
    MAX_BUKTI,
    MAX_BUKTI_TEXT,
    MAX_NAME,
    MAX_TEXT,
    Desk,
    KeberatanError,
    Putusan,
    Who,
)
from kinerja_rules.server.auth import key_scope
from kinerja_rules.server.bodies import JSON, decode
from kinerja_rules.server.decisions import (
    _UUID,
    Recorder,
    _decision_of,
    _recorder,
    _work,
    page_scope,
    set_body,
)
from kinerja_rules.server.problems import ApiProblem
from kinerja_rules.server.work import client_gone

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
Reason = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class PemberitahuanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The day the decision reached the employee."""

    tanggal: dt.date


class KeberatanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A keberatan, filed by the employee the decision is for."""

    diajukan_oleh: Name
    tanggal: dt.date
    alasan: Reason
    bukti: Annotated[list[Annotated[str, msgspec.Meta(max_length=MAX_BUKTI_TEXT)]],
                     msgspec.Meta(max_length=MAX_BUKTI)] = []


class PutusanRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The final decision on a keberatan; `set` (for diterima and diubah) the fields it changes."""

    diputus_oleh: Name
    tanggal: dt.date
    hasil: str
    alasan: Reason
    set: dict[str, Any] | None = None


class KeberatanFiled(msgspec.Struct, frozen=True, kw_only=True):
    keberatan_id: str
    status: str
    batas: str


class PutusanResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    keberatan: dict[str, Any]
    decision_id: str | None = None
    appeal_of: str | None = None
    identical: bool | None = None
    differences: list[dict[str, Any]] = []
    traces: dict[str, Any] = {}
    decision: Decision | None = None
    notes: list[str] = []


class KeberatanList(msgspec.Struct, frozen=True, kw_only=True):
    keberatan: list[dict[str, Any]]
    next_cursor: str | None


def _who(recorder: Recorder, request: Request[Any, Any, Any]) -> Who:
    how = recorder.recording(request)
    return Who(key_id=how.key_id, request_id=how.request_id)


def _desk(request: Request[Any, Any, Any]) -> tuple[Recorder, Desk]:
    recorder = _recorder(request)
    engine = request.app.state.service.current()

    def current(policy_id: str) -> Any:
        return engine.policy(policy_id) if policy_id in engine.ids else None

    return recorder, Desk(recorder.store, recorder.replayer(engine), current, recorder.clock)


_KINDS = frozenset({"invalid-keberatan", "keberatan-late", "keberatan-exists", "already-notified", "putusan-final",
                    "invalid-record", "evaluation-failed", "unknown-decision", "redacted-fields", "invalid-set",
                    "redacted-value-mismatch"})


def _problem(exc: KeberatanError) -> ApiProblem:
    kind = exc.kind if exc.kind in _KINDS else "not-replayable"  # sources or the run are not in the store
    extra: dict[str, Any] = {"errors": list(exc.fields)} if exc.fields else {}
    return ApiProblem(kind, str(exc), **extra, **exc.extra)


async def _step(request: Request[Any, Any, Any], what: str, fn: Any, *args: Any) -> Any:
    """`fn(*args)` within the work budget; a refusal is its problem."""
    try:
        return await _work(request).run(what, fn, *args, disconnected=partial(client_gone, request))
    except KeberatanError as exc:
        raise _problem(exc) from None


async def _kept(recorder: Recorder, fn: Any, *args: Any) -> None:
    """`fn(*args)` (a write) within the store's time budget; a conflict is its problem."""
    try:
        await recorder.call(fn, *args)
    except KeberatanError as exc:
        raise _problem(exc) from None


async def _keberatan(request: Request[Any, Any, Any], recorder: Recorder, keberatan_id: str) -> dict[str, Any]:
    found = await recorder.call(recorder.store.keberatan, keberatan_id) if _UUID.fullmatch(keberatan_id) else None
    key = key_scope(request)
    if found is None or (key is not None and not key.admin and not key.allows(found["policy_id"])):
        raise ApiProblem("unknown-keberatan", f"no keberatan {keberatan_id[:64]!r} is recorded"
                         + (" that this key may read" if key is not None else ""))
    return found


class KeberatanController(Controller):
    """Pemberitahuan, keberatan and putusan."""

    path = "/v1"
    tags = ["keberatan"]

    @post("/decisions/{decision_id:str}/pemberitahuan", operation_id="notifyDecision", status_code=201,
          summary="When the decision reached the employee: its keberatan deadline counts from that day",
          responses={201: ResponseSpec(dict[str, Any], generate_examples=False, description="The notification")})
    async def notify(self, request: Request[Any, Any, Any], decision_id: FromPath[str]) -> Response[bytes]:
        recorder, desk = _desk(request)
        body: PemberitahuanRequest = decode(await request.body(), PemberitahuanRequest, request.app.state.limits)
        record = await _decision_of(request, recorder, decision_id)
        notice = await _step(request, f"the pemberitahuan of {record.id}", desk.notice, record, body.tanggal,
                             _who(recorder, request))
        await _kept(recorder, desk.keep_notice, notice)
        return Response(ENCODER.encode(notice), media_type=JSON, status_code=201)

    @post("/decisions/{decision_id:str}/keberatan", operation_id="fileKeberatan", status_code=201,
          summary="The employee objects to the decision, on or before its deadline (batas)",
          responses={201: ResponseSpec(KeberatanFiled, generate_examples=False, description="The keberatan filed")})
    async def file(self, request: Request[Any, Any, Any], decision_id: FromPath[str]) -> Response[bytes]:
        recorder, desk = _desk(request)
        body: KeberatanRequest = decode(await request.body(), KeberatanRequest, request.app.state.limits)
        record = await _decision_of(request, recorder, decision_id)
        given = msgspec.structs.asdict(body)
        for attempt in range(2):  # a notification kept in between: counted again with it
            entry = await _step(request, f"the keberatan against {record.id}", desk.filing, record, given,
                                _who(recorder, request))
            try:
                await recorder.call(desk.keep_filing, entry)
                break
            except KeberatanError as exc:
                if attempt or exc.kind != "notice-changed":
                    raise _problem(exc) from None
        return Response(ENCODER.encode(KeberatanFiled(keberatan_id=entry["keberatan_id"], status=entry["status"],
                                                      batas=entry["batas"])), media_type=JSON, status_code=201)

    @post("/keberatan/{keberatan_id:str}/putusan", operation_id="decideKeberatan", status_code=200,
          summary="The final putusan: ditolak keeps the decision; diterima and diubah decide it again",
          responses={200: ResponseSpec(PutusanResult, generate_examples=False, description="The putusan")})
    async def decide(self, request: Request[Any, Any, Any], keberatan_id: FromPath[str]) -> Response[bytes]:
        recorder, desk = _desk(request)
        body: PutusanRequest = set_body(await request.body(), PutusanRequest, request.app.state.limits)
        found = await _keberatan(request, recorder, keberatan_id)
        done: Putusan = await _step(request, f"the putusan of keberatan {keberatan_id}", desk.putusan, found,
                                    msgspec.structs.asdict(body), _who(recorder, request))
        await _kept(recorder, desk.keep_putusan, done)
        return Response(ENCODER.encode(done.answer()), media_type=JSON)

    @get("/keberatan/{keberatan_id:str}", operation_id="getKeberatan", summary="A keberatan: its filing, "
         "deadline, putusan and every step", responses={200: ResponseSpec(dict[str, Any], generate_examples=False,
                                                                         description="The keberatan")})
    async def get_keberatan(self, request: Request[Any, Any, Any], keberatan_id: FromPath[str]) -> Response[bytes]:
        return Response(ENCODER.encode(await _keberatan(request, _recorder(request), keberatan_id)), media_type=JSON)

    @get("/keberatan", operation_id="findKeberatan", summary="Keberatan by policy, NIP and status, page by page",
         responses={200: ResponseSpec(KeberatanList, generate_examples=False, description="A page of keberatan")})
    async def find(self, request: Request[Any, Any, Any], policy: FromQuery[str | None] = None,
                   nip: FromQuery[str | None] = None, status: FromQuery[str | None] = None,
                   limit: FromQuery[int] = 100, cursor: FromQuery[str | None] = None) -> Response[bytes]:
        recorder = _recorder(request)
        if status is not None and status not in KEBERATAN_STATUS:
            raise ApiProblem("bad-request", f"status: one of {', '.join(KEBERATAN_STATUS)}")
        allowed = page_scope(request, "keberatan", policy, nip, limit, cursor)
        found = await recorder.call(partial(recorder.store.find_keberatan, policy_id=policy, nip=nip, status=status,
                                            limit=limit + 1, after=cursor, policies=allowed))
        page = found[:limit]
        more = len(found) > limit
        return Response(ENCODER.encode(KeberatanList(keberatan=page, next_cursor=page[-1]["keberatan_id"]
                                                     if more else None)), media_type=JSON)
