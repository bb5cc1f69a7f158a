"""The letter of a recorded decision over HTTP: `GET /v1/decisions/{id}/surat` (HTML, or a PDF
printed by Chromium), in Indonesian unless `?lang=en` or `Accept-Language: en` asks for English."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery

from kinerja_rules.recording import ReplayError
from kinerja_rules.server.decisions import _decision_of, _problem, _work
from kinerja_rules.server.keberatan import _desk
from kinerja_rules.server.problems import ApiProblem
from kinerja_rules.server.work import client_gone
from kinerja_rules.surat import LANGUAGES, PDF_SECONDS, SuratError, pdf, render, stored_letter


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

    def make() -> bytes:
        policy, letter = stored_letter(desk, record)
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
