"""The letter of a recorded decision over HTTP: `GET /v1/decisions/{id}/surat` (HTML, or a PDF
printed by Chromium), in Indonesian unless `?lang=en` or `Accept-Language: en` asks for English."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from kinerja_rules.decision import ENCODER
from kinerja_rules.engine import Engine
from kinerja_rules.recording import ReplayError
from kinerja_rules.server.bodies import JSON, Limits, check_json, decode, decode_record
from kinerja_rules.server.decisions import _decision_of, _problem, _work
from kinerja_rules.server.keberatan import _desk
from kinerja_rules.server.problems import ApiProblem
from kinerja_rules.server.work import client_gone
from kinerja_rules.surat import LANGUAGES, PDF_SECONDS, SuratError, pdf, render, stored_letter
from kinerja_rules.whatif import WhatIfError, goal_of, what_if


def language(request: Request[Any, Any, Any], lang: str | None) -> str:
    """The language of a document for people: `lang`, else the first of Accept-Language we write,
    else Indonesian."""
    if lang is not None:
        if lang not in LANGUAGES:
            raise ApiProblem("bad-request", f"lang: one of {', '.join(LANGUAGES)}")
        return lang
    for part in request.headers.get("accept-language", "")[:200].split(",")[:10]:
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "id"


@get("/v1/decisions/{decision_id:str}/surat", operation_id="decisionLetter", tags=["decisions"],
     summary="The letter explaining a recorded decision to its employee (HTML, or PDF with ?format=pdf)",
     responses={200: ResponseSpec(str, generate_examples=False, media_type="text/html",
                                  description="The letter (text/html, or application/pdf)")})
async def surat_endpoint(request: Request[Any, Any, Any], decision_id: FromPath[str],
                         format: FromQuery[str] = "html",
                         lang: FromQuery[str | None] = None) -> Response[bytes]:
    if format not in ("html", "pdf"):
        raise ApiProblem("bad-request", "format: html or pdf")
    words = language(request, lang)
    recorder, desk = _desk(request)
    record = await _decision_of(request, recorder, decision_id)
    work = _work(request)
    limits: Limits = request.app.state.limits

    def make() -> bytes:
        policy, letter = stored_letter(desk, record, limits.what_if_seconds)
        page = render(policy, letter, words)
        return pdf(page, min(work.seconds, PDF_SECONDS)) if format == "pdf" else page.encode("utf-8")

    try:
        body = await work.run(f"the letter of {decision_id}", make, disconnected=partial(client_gone, request))
    except ReplayError as exc:
        raise _problem(exc) from None
    except SuratError as exc:
        raise ApiProblem("letter-failed", str(exc)) from None
    if format == "pdf":
        return Response(body, media_type="application/pdf",
                        headers={"content-disposition": f'inline; filename="surat-{record.id}.pdf"'})
    return Response(body, media_type="text/html", headers={"content-language": words})


class WhatIfRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A record and a goal: `{output, at_least}` on an ordered enumeration or a number."""

    record: msgspec.Raw
    goal: dict[str, Any]
    as_of: dt.date | None = None


class WhatIfResult(msgspec.Struct, frozen=True, kw_only=True):
    reachable: bool | str
    optimal: bool
    changes: list[dict[str, Any]]
    outputs: dict[str, Any]


@post("/v1/policies/{policy_id:str}/what-if", operation_id="whatIf", tags=["policies"], status_code=200,
      summary="What would it take: the fewest, smallest changes to what a person can change that reach a goal",
      responses={200: ResponseSpec(WhatIfResult, generate_examples=False, description="The nearest change")})
async def what_if_endpoint(request: Request[Any, Any, Any], policy_id: FromPath[str]) -> Response[bytes]:
    check_json(request)
    limits: Limits = request.app.state.limits
    raw = await request.body()
    body: WhatIfRequest = decode(raw, WhatIfRequest, limits)
    record = decode_record(body.record, limits, "record")
    engine: Engine = request.app.state.service.current()
    engine.policy(policy_id)  # an unknown policy is a 404 naming those there are
    try:
        goal = goal_of(engine, policy_id, body.goal)
    except WhatIfError as exc:
        raise ApiProblem("invalid-goal", str(exc), errors=list(exc.fields)) from None
    found = await _work(request).run(
        f"a what-if of {policy_id}", partial(what_if, engine, policy_id, record, goal, body.as_of,
                                             limits.what_if_seconds), disconnected=partial(client_gone, request))
    return Response(ENCODER.encode(found.answer()), media_type=JSON)
