"""RFC 9457 problem details: every error the service answers with, and their stable types.

Each problem type is a relative URI (`/problems/invalid-record`) that the service itself
serves, so a client can look up what a type means; the name after `/problems/` never changes.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from kinerja_rules import Diagnostic, EvaluationError, FieldError, PopulationInputError, RecordError, UnknownPolicyError
from kinerja_rules.catalogue import (
    DEFAULT_LANGUAGE,
    language,
    own_messages,
    problem_title,
    translate_field,
    translate_message,
    translate_record_message,
)
from kinerja_rules.decision import PolicyRef

PROBLEM_MEDIA_TYPE = "application/problem+json"

# name -> (status, title, what it means)
PROBLEMS: dict[str, tuple[int, str, str]] = {
    "invalid-record": (422, "Invalid record",
                       "The record does not match the policy's input schema; `errors` lists every bad field path."),
    "evaluation-failed": (422, "Evaluation failed",
                          "The policy faulted on this record (such as a division by zero on odd data); `where` "
                          "names the part of the policy and `paths` the record fields it read."),
    "invalid-body": (422, "Invalid request body",
                     "The JSON is well formed but a field has the wrong type or is missing; `errors` names it."),
    "malformed-json": (400, "Malformed JSON", "The request body is not valid JSON."),
    "missing-body": (400, "Missing request body", "The endpoint needs a request body and none was sent."),
    "body-too-large": (413, "Request body too large", "The request body is larger than the service accepts."),
    "batch-too-long": (422, "Batch too long", "The batch has more records than the service accepts in one request."),
    "invalid-population": (422, "Invalid group data or seats", "What a population run sends beside its records "
                           "cannot be used: `errors` names the place (`groups`, `seats[2].kelas`)."),
    "no-population-stage": (422, "No population stage", "The policy decides each record on its own; evaluate "
                            "its records one by one or in a batch."),
    "response-too-large": (422, "Response too large", "The answer would be larger than the service sends "
                                                       "(`--max-response-bytes`); the work stopped there. Ask "
                                                       "without `explain`, or send fewer records per request."),
    "duplicate-key": (422, "Duplicate key", "A JSON object gives the same key twice; `errors` names the object "
                                            "and the key. (Decoders would keep one of them silently.)"),
    "too-deep": (422, "Nested too deeply", "A record nests objects or lists deeper than the service accepts."),
    "list-too-long": (422, "List too long", "A list in a record is longer than the service accepts."),
    "unsupported-media-type": (415, "Unsupported media type", "The request body has a content type this "
                                                              "endpoint does not read."),
    "unknown-policy": (404, "Unknown policy", "No policy with that id is in service."),
    "unknown-decision": (404, "Unknown decision",
                         "No decision with that id is recorded (or the API key may not read its policy's decisions)."),
    "no-decision-store": (404, "No decision store",
                          "The service records no decisions (it was started with --no-store)."),
    "not-recorded": (503, "Decision not recorded",
                     "The decision store could not keep the decision, so it is not answered; try again."),
    "redacted-fields": (422, "Redacted fields",
                        "The store keeps these fields of the decision as keyed hashes: send their values in `set`."),
    "invalid-set": (422, "Invalid set", "`set` names a field that cannot be set (`nip` and `periode` say whom "
                                        "and when a decision is for, and never change), or too many."),
    "redacted-value-mismatch": (409, "Redacted value mismatch", "A value given for a redacted field is not the "
                                                                "one recorded: its keyed hash differs from the "
                                                                "one the store holds."),
    "invalid-proposal": (422, "Invalid proposal", "The proposed policy files do not check (`diagnostics` lists "
                                                  "each problem with file:line:col), or do not hold the policy named."),
    "not-replayable": (422, "Not replayable",
                       "The decision's archived sources or population run are not in the store."),
    "unknown-keberatan": (404, "Unknown keberatan",
                          "No keberatan with that id is recorded (or the API key may not read its policy's)."),
    "invalid-keberatan": (422, "Invalid keberatan",
                          "A pemberitahuan, keberatan or putusan that cannot be taken as sent: `errors` names the "
                          "field (a date before the decision or after today, a keberatan not filed by the "
                          "employee, a putusan by the filer or the rater, `set` missing or out of place)."),
    "already-notified": (409, "Already notified", "The decision's pemberitahuan is kept already; it is kept once."),
    "keberatan-late": (422, "Keberatan late", "The keberatan is dated after its deadline, which `batas` names "
                                              "(batas_keberatan days after the decision reached the employee)."),
    "keberatan-exists": (409, "Keberatan exists", "A keberatan against this decision is filed already; a decision "
                                                  "takes one (and a pemberitahuan cannot follow it)."),
    "putusan-final": (409, "Putusan final", "The keberatan has its putusan already, or the decision is a putusan's: "
                                            "a putusan is final."),
    "invalid-goal": (422, "Invalid goal", "A what-if's goal names an output the policy does not have, one that is "
                                          "neither a number nor an ordered enumeration, or a value it cannot take: "
                                          "`errors` names the field."),
    "letter-failed": (503, "Letter not made", "The letter could not be printed: a PDF needs Chromium on the "
                                              "server, which is missing, failed or ran out of time. The HTML "
                                              "letter does not need it."),
    "not-found": (404, "Not found", "No endpoint has this path."),
    "unknown-problem": (404, "Unknown problem type", "No problem type has this name."),
    "method-not-allowed": (405, "Method not allowed", "The endpoint does not answer this HTTP method."),
    "unauthorized": (401, "Unauthorized", "The service needs `Authorization: Bearer <key>` with a valid API key."),
    "forbidden": (403, "Forbidden", "The API key is valid but not for this policy or this operation."),
    "reload-failed": (422, "Reload failed", "The policies folder could not be read as a whole (a mistake no "
                                            "policy can be named for), so the policies in service were kept; "
                                            "`diagnostics` lists every problem."),
    "reload-pending": (503, "Reload pending", "The new generation is published, but not every worker serves it "
                                              "yet; `generation` names it, and `/ready` shows each worker's."),
    "reload-unavailable": (409, "Reload unavailable", "The service was started without a policies folder."),
    "not-ready": (503, "Not ready", "The service has no policies in service, or is shutting down."),
    "headers-too-large": (431, "Request header fields too large", "The request line and headers are larger, or "
                                                                  "more, than the service reads (`--max-header-bytes`, "
                                                                  "`--max-headers`); the connection is closed."),
    "request-timeout": (408, "Request timeout", "The headers did not arrive within `--header-timeout` seconds, or the "
                                                "body paused longer than `--body-timeout`; the connection is closed."),
    "too-many-connections": (503, "Too many connections", "The worker holds `--max-connections` open connections; "
                                                          "the new one is closed at once. Retry later."),
    "validation-timeout": (422, "Validation timed out", "The document was not checked within "
                                                        "`--validate-seconds`; its check was stopped. Split it, or "
                                                        "check it with `kinerja check`."),
    "validation-busy": (503, "Validation busy", "As many documents as the service checks at once are waiting; "
                                                "retry shortly."),
    "policy-changed": (412, "Policy changed", "The request's `If-Match` names a policy digest other than the one "
                                              "in service; `detail` names both. Nothing was decided."),
    "work-timeout": (422, "Work timed out", "The request's work (a population run, an impact report, a replay "
                                            "or an appeal) did not finish within `--work-seconds` and was stopped; "
                                            "send less."),
    "work-busy": (503, "Work busy", "As many expensive requests as the service runs at once (`--max-work`) "
                                    "are running; retry after the `Retry-After` seconds."),
    "bad-request": (400, "Bad request", "The request could not be read."),
    "internal-error": (500, "Internal error", "An unexpected fault; it has been logged. Please report it."),
}

_log = logging.getLogger("kinerja_rules.server")


class DiagnosticOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A policy diagnostic as the API shows it: where, what, and the rendered text."""

    code: str
    message: str
    severity: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str = ""
    rendered: str = ""

    @classmethod
    def of(cls, d: Diagnostic) -> DiagnosticOut:
        span = d.span
        return cls(code=d.code, message=d.message, severity=d.severity, hint=d.hint, rendered=d.render(),
                   file=span.file if span else None, line=span.line if span else None,
                   column=span.column if span else None)


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem details object, with this service's extension members."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[FieldError] = []
    diagnostics: list[DiagnosticOut] = []
    where: str = ""
    paths: list[str] = []
    batas: str = ""  # keberatan-late: the deadline
    policy: PolicyRef | str = ""  # the policy that decided (id, version, digest), or the id a key may not use
    generation: int | None = None


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with a problem of a named type."""

    def __init__(self, name: str, detail: str = "", *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or PROBLEMS[name][1])
        self.name = name
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def problem(self, instance: str) -> Problem:
        status, title, _ = PROBLEMS[self.name]
        return Problem(type=f"/problems/{self.name}", title=title, status=status, detail=self.detail,
                       instance=instance, **self.extra)


def _respond(request: Request[Any, Any, Any], exc: ApiProblem) -> Response[Problem]:
    problem = exc.problem(request.url.path)
    lang = asked_language(request)
    headers = exc.headers
    if lang != DEFAULT_LANGUAGE:
        problem = in_language(problem, lang, _own(request, lang))
        headers = {**headers, "content-language": lang}
    return Response(problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def asked_language(request: Request[Any, Any, Any]) -> str:
    """The language of the messages a request is answered with: its Accept-Language (bounded), else
    $KINERJA_LANG, else English."""
    return language(request.headers.get("accept-language", "")[:200] or None)


def in_language(problem: Problem, lang: str, own: dict[str, str] | None = None) -> Problem:
    """A problem as people read it in `lang`: its title, detail, each field error and diagnostic from
    the catalogue (the type and the paths stay as they are: clients match on them)."""
    return msgspec.structs.replace(
        problem, title=problem_title(problem.type.rsplit("/", 1)[-1], lang, problem.title),
        detail=translate_record_message(problem.detail, lang, own) if problem.detail else problem.detail,
        errors=[translate_field(e, lang, own) for e in problem.errors],
        diagnostics=[msgspec.structs.replace(d, message=translate_message(d.code, d.message, lang))
                     for d in problem.diagnostics])


def _own(request: Request[Any, Any, Any], lang: str) -> dict[str, str] | None:
    """The messages of the policy a request names (its checks'), for its record errors."""
    policy_id = request.path_params.get("policy_id") if request.scope.get("path_params") else None
    service = getattr(request.app.state, "service", None)
    if not isinstance(policy_id, str) or service is None:
        return None
    try:
        return own_messages(service.engine.policy(policy_id).checked.words, lang)
    except Exception:  # an unknown policy, or none in service: no messages of its own
        return None


def handle_api_problem(request: Request[Any, Any, Any], exc: ApiProblem) -> Response[Problem]:
    return _respond(request, exc)


def handle_record_error(request: Request[Any, Any, Any], exc: RecordError) -> Response[Problem]:
    n = len(exc.errors)
    return _respond(request, ApiProblem("invalid-record", f"{n} invalid field{'s' if n != 1 else ''}: {exc}",
                                        errors=list(exc.errors)))


def handle_population_input_error(request: Request[Any, Any, Any], exc: PopulationInputError) -> Response[Problem]:
    return _respond(request, ApiProblem("invalid-population", str(exc), errors=list(exc.errors)))


def handle_evaluation_error(request: Request[Any, Any, Any], exc: EvaluationError) -> Response[Problem]:
    return _respond(request, ApiProblem("evaluation-failed", exc.detail, where=exc.where, paths=list(exc.paths)))


def handle_unknown_policy(request: Request[Any, Any, Any], exc: UnknownPolicyError) -> Response[Problem]:
    return _respond(request, ApiProblem("unknown-policy", str(exc), policy=exc.policy_id))


_HTTP_NAMES = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 413: "body-too-large", 415: "unsupported-media-type",
               503: "not-ready"}


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    name = _HTTP_NAMES.get(exc.status_code)
    if name is None:
        status = exc.status_code
        title = exc.detail or "Error"
        problem = Problem(type="about:blank", title=title, status=status, instance=request.url.path)
        return Response(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=exc.headers)
    detail = exc.detail if exc.detail and exc.detail != PROBLEMS[name][1] else ""
    extra: dict[str, Any] = {}
    if name == "bad-request" and isinstance(exc.extra, list):  # path parameters Litestar could not read
        extra["errors"] = [FieldError(path=str(e.get("key", "")), message=str(e.get("message", "")))
                           for e in exc.extra if isinstance(e, dict)]
    return _respond(request, ApiProblem(name, detail, headers=dict(exc.headers or {}), **extra))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    _log.exception("unexpected fault on %s %s", request.method, request.url.path, exc_info=exc)
    return _respond(request, ApiProblem("internal-error"))


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ApiProblem: handle_api_problem,
    RecordError: handle_record_error,
    PopulationInputError: handle_population_input_error,
    EvaluationError: handle_evaluation_error,
    UnknownPolicyError: handle_unknown_policy,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
