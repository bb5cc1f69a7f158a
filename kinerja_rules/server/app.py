"""The Litestar application: controllers over the engine, which they receive by injection (the
decision endpoints take it from the state, which costs less)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from anyio import to_thread
from litestar import Controller, Litestar, Request, Response, Router, get, post
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Operation, RequestBody, SecurityScheme
from litestar.openapi.spec import OpenAPIMediaType as MediaTypeSpec
from litestar.params import FromPath, FromQuery
from litestar.response.base import ASGIResponse
from litestar.static_files import create_static_files_router
from litestar.types import HTTPResponseStartEvent, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST

from kinerja_rules import Decision, Engine, EvaluationError, RecordError, __version__
from kinerja_rules.catalogue import DEFAULT_LANGUAGE, translate
from kinerja_rules.decision import ENCODER
from kinerja_rules.documents import policy_schema
from kinerja_rules.engine import Reload
from kinerja_rules.evaluation.decide import in_language
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.registry import BrokenPlugin
from kinerja_rules.server.auth import AuthMiddleware, KeyRing, check_key, key_scope
from kinerja_rules.server.batch import TOO_LARGE, decide, decide_population, unpack
from kinerja_rules.server.bodies import (
    JSON,
    BatchError,
    BatchRequest,
    BatchResult,
    BrokenPluginOut,
    EvaluateRequest,
    Limits,
    PolicyDetail,
    PolicyList,
    PolicySummary,
    PopulationRequest,
    PopulationResult,
    Readiness,
    ReadyResult,
    ReloadResult,
    ValidateFiles,
    ValidateResult,
    batch_length,
    check_json,
    content_type,
    decode,
    decode_record,
    plain_evaluate,
    record_as_sent,
    too_large,
    unique_members,
    within_limits,
)
from kinerja_rules.server.decisions import DecisionController, Recorder, impact_endpoint
from kinerja_rules.server.keberatan import KeberatanController
from kinerja_rules.server.logs import LineWriter, to_stream
from kinerja_rules.server.metrics import AccessLog, Metrics, ObserveMiddleware
from kinerja_rules.server.openapi import finish_general, policy_document
from kinerja_rules.server.problems import (
    EXCEPTION_HANDLERS,
    PROBLEM_MEDIA_TYPE,
    PROBLEMS,
    ApiProblem,
    DiagnosticOut,
    Problem,
    asked_language,
)
from kinerja_rules.server.service import PolicyService
from kinerja_rules.server.surat import surat_endpoint, what_if_endpoint
from kinerja_rules.server.validation import Validator
from kinerja_rules.server.work import Work, client_gone
from kinerja_rules.store import IDS, Run

_ENCODER = ENCODER
RELOAD_CONVERGE_SECONDS = 60  # a reload answers once every worker serves the new generation, or after this
SWAGGER_UI_VERSION = "5.35.0"  # the files in server/static/swagger-ui (see its README)
ASSETS = "/assets/swagger-ui"
_STATIC = Path(__file__).parent / "static" / "swagger-ui"
_THREAD_AT = 64  # batches this long are decided off the event loop, so probes stay responsive
_log = logging.getLogger("kinerja_rules.server")


def _json(value: Any) -> Response[bytes]:
    return Response(_ENCODER.encode(value), media_type=JSON)


def _with_body(kind: type[Any], media_type: str = JSON, also: dict[str, type[Any]] | None = None) -> type[Operation]:
    """An OpenAPI operation whose request body is `kind` (and `also` these other media types), for
    handlers that decode bodies themselves."""

    def schema_of(body: type[Any]) -> dict[str, Any]:
        if body is str:
            return {"type": "string", "description": "A policy document (YAML)"}
        return msgspec.json.schema(body)["$defs"][body.__name__]  # type: ignore[no-any-return]  # a flat Struct

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            content = {kind_type: MediaTypeSpec(schema=schema_of(body))  # type: ignore[arg-type]
                       for kind_type, body in {media_type: kind, **(also or {})}.items()}
            self.request_body = RequestBody(content=content, required=True)

    return WithBody


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {status: ResponseSpec(Problem, media_type=PROBLEM_MEDIA_TYPE, generate_examples=False,
                                 description="; ".join(f"{name}: {title}" for name, (s, title, _) in PROBLEMS.items()
                                                       if s == status))
            for status in statuses}


class _Answer(ASGIResponse):
    """A 200 JSON answer of a body already encoded, tagged with the policy digest. It sends its two
    messages itself: building the headers the general way costs some 12 µs, a tenth of an evaluate."""

    def __init__(self, body: bytes, digest: str) -> None:  # nothing reads the general response's fields
        self.body = body
        self._start: HTTPResponseStartEvent = {
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                        (b"etag", b'"%s"' % digest.encode())]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self._start)
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


_ETAG = re.compile(r'\s*(W/)?"([0-9a-f]{64})"\s*')


def _pinned(request: Request[Any, Any, Any], digest: str) -> None:
    """Refuse the request when its `If-Match` names policy digests and not the one in service."""
    raw = next((v for k, v in request.scope["headers"] if k == b"if-match"), None)
    if raw is None:
        return
    text = raw.decode("latin-1")
    if text.strip() == "*":
        return
    tags = text.split(",")
    if len(tags) > 16 or not all(_ETAG.fullmatch(t) for t in tags):
        raise ApiProblem("bad-request", 'If-Match must be "*" or up to 16 quoted policy digests (64 hex digits)')
    # strong comparison (RFC 9110 13.1.1): a weak tag matches nothing
    expected = [m.group(2) for t in tags if (m := _ETAG.fullmatch(t)) and not m.group(1)]
    if digest not in expected:
        wanted = ", ".join(expected) or "(weak tags only, which If-Match never matches)"
        raise ApiProblem("policy-changed", f"the request expects policy digest {wanted}; the policy in service has "
                                           f"digest {digest}")


def _limits(request: Request[Any, Any, Any]) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def _work(request: Request[Any, Any, Any]) -> Work:
    work: Work = request.app.state.work
    return work


def _engine(request: Request[Any, Any, Any]) -> Engine:
    """The engine for this request, for the decision endpoints: taking it from the state costs
    nothing, where resolving the `engine` dependency costs some 18 µs a request."""
    service: PolicyService = request.app.state.service
    return service.current()


def _metrics(request: Request[Any, Any, Any]) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


class PolicyController(Controller):
    """Evaluate records against the policies in service, and describe those policies."""

    path = "/v1/policies"
    tags = ["policies"]

    @get("/", operation_id="listPolicies", summary="List the policies in service", responses={
        200: ResponseSpec(PolicyList, generate_examples=False, description="The policies"), **_problems(401)})
    async def list_policies(self, request: Request[Any, Any, Any], engine: NamedDependency[Engine]) -> Response[bytes]:
        key = key_scope(request)
        return _json({"policies": [p.describe() for p in engine.policies() if key is None or key.allows(p.id)]})

    @get("/{policy_id:str}", operation_id="describePolicy",
         summary="Describe a policy: input schema, outputs, parameters, references",
         responses={200: ResponseSpec(PolicyDetail, generate_examples=False, description="The policy"),
                    **_problems(401, 403, 404, 412)})
    async def describe(self, request: Request[Any, Any, Any], policy_id: FromPath[str],
                       engine: NamedDependency[Engine]) -> Response[bytes]:
        policy = engine.policy(policy_id)
        _pinned(request, policy.digest)
        return Response(_ENCODER.encode(policy.metadata(_limits(request).unknown_fields)), media_type=JSON,
                        headers={"etag": f'"{policy.digest}"'})

    @get("/{policy_id:str}/openapi.json", operation_id="policyOpenAPI",
         summary="The OpenAPI document of one policy: its record, decision outputs and trace typed",
         responses={200: ResponseSpec(dict[str, Any], generate_examples=False, description="OpenAPI 3.1"),
                    **_problems(401, 403, 404, 412)})
    async def policy_openapi(self, request: Request[Any, Any, Any], policy_id: FromPath[str],
                             engine: NamedDependency[Engine]) -> Response[bytes]:
        policy = engine.policy(policy_id)
        _pinned(request, policy.digest)
        secured = bool(request.app.state.api_keys)
        return Response(_ENCODER.encode(policy_document(policy, secured, _limits(request).unknown_fields)),
                        media_type=JSON, headers={"etag": f'"{policy.digest}"'})

    @post("/{policy_id:str}/evaluate", operation_id="evaluate", status_code=200, summary="Decide one record",
          operation_class=_with_body(EvaluateRequest), responses={
              200: ResponseSpec(Decision, generate_examples=False, description="The decision"),
              **_problems(400, 401, 403, 404, 412, 413, 415, 422)})
    async def evaluate(self, request: Request[Any, Any, Any], policy_id: FromPath[str]) -> ASGIResponse:
        engine = _engine(request)
        policy, limits, raw = await _request_of(request, engine, policy_id)
        metrics = _metrics(request)
        plain = None if policy.calls_plugins else plain_evaluate(raw, limits)
        clean = None if plain is None else engine.read_plain(policy.id, plain.record)
        body = None if clean is not None else _evaluate_body(raw, limits)  # the reading that names every problem
        try:
            if body is None:  # plainly valid: read and checked in C
                assert plain is not None and clean is not None
                decision = engine.evaluate_plain(policy.id, clean, plain.as_of, plain.explain)
            elif policy.calls_plugins:  # plugin code may be slow: never on the event loop, bounded in a pool
                decision = await _off_the_loop(request.app.state.service, engine, policy, body, limits)
            else:
                decision = engine.evaluate(policy.id, body.record, body.as_of, body.explain, limits.unknown_fields)
        except RecordError:
            metrics.observe_decisions(policy.id, "error")
            raise
        except EvaluationError as exc:
            metrics.observe_decisions(policy.id, "error")
            raise ApiProblem("evaluation-failed", exc.detail, where=exc.where, paths=list(exc.paths),
                             policy=policy.ref) from None
        metrics.observe_decisions(policy.id, "decided")
        recorder: Recorder | None = request.app.state.recorder
        if recorder is not None:  # durable before it is answered, with the record as it came
            if body is None:
                assert plain is not None
                record = record_as_sent(plain.record)
            else:
                record = body.record
            decision = await recorder.keep_one(request, policy, decision, record)
        encoded = _ENCODER.encode(decision)
        if len(encoded) > limits.max_response_bytes:
            raise too_large(limits)
        return _Answer(encoded, policy.digest)

    @post("/{policy_id:str}/evaluate/batch", operation_id="evaluateBatch", status_code=200,
          summary="Decide many records, each on its own",
          operation_class=_with_body(BatchRequest), responses={
              200: ResponseSpec(BatchResult, generate_examples=False, description="One result per record, in order"),
              **_problems(400, 401, 403, 404, 412, 413, 415, 422)})
    async def evaluate_batch(self, request: Request[Any, Any, Any], policy_id: FromPath[str]) -> ASGIResponse:
        engine = _engine(request)
        policy, limits, raw = await _request_of(request, engine, policy_id)
        body: BatchRequest = decode(raw, BatchRequest, limits)
        unique_members(raw, {})  # each record is checked on its own, as it is decoded
        records = body.records
        batch_length(len(records), body.explain, limits)
        answer = None
        metrics = _metrics(request)
        recorder: Recorder | None = request.app.state.recorder
        recording = recorder.recording(request) if recorder is not None else None
        pool = request.app.state.service.pool
        if pool is not None and pool.usable(policy.id, policy.digest, len(records), policy.calls_plugins):
            answer = await pool.decide(policy.id, policy.digest, records, body.as_of, body.explain, limits, recording)
        metrics.batch_records.labels("service" if answer is None else "batch_processes").inc(len(records))
        if answer is None:
            run = partial(decide, engine, policy.id, records, body.as_of, body.explain, limits, 0, recording)
            off_loop = len(records) >= _THREAD_AT or policy.calls_plugins
            answer = await to_thread.run_sync(run) if off_loop else run()
        if answer is None or answer is TOO_LARGE:
            raise too_large(limits)
        joined, failed, rows, chunks = answer
        if recorder is not None:
            await recorder.keep_rows(policy, rows, chunks=chunks)
        metrics.observe_decisions(policy.id, "decided", len(records) - failed)
        if failed:
            metrics.observe_decisions(policy.id, "error", failed)
        if failed:
            joined = _said(request, policy, joined)
        return _Answer(b'{"results":[' + joined + b"]}", policy.digest)


    @post("/{policy_id:str}/evaluate/population", operation_id="evaluatePopulation", status_code=200,
          summary="Decide records together: the kurva distribusi of each group, an assignment to seats",
          operation_class=_with_body(PopulationRequest), responses={
              200: ResponseSpec(PopulationResult, generate_examples=False,
                                description="One result per record, in order, and a report per group"),
              **_problems(400, 401, 403, 404, 412, 413, 415, 422)})
    async def evaluate_population(self, request: Request[Any, Any, Any], policy_id: FromPath[str]) -> ASGIResponse:
        engine = _engine(request)
        policy, limits, raw = await _request_of(request, engine, policy_id)
        body: PopulationRequest = decode(raw, PopulationRequest, limits)
        unique_members(raw, {})  # records, each group's data and each seat are checked as they are decoded
        if policy.population is None:
            raise ApiProblem("no-population-stage", f"policy {policy.id!r} has no population stage")
        records = body.records
        batch_length(len(records), body.explain, limits)
        groups = None if body.groups is None else {
            key: decode_record(value, limits, f"groups[{_ENCODER.encode(key).decode()}]")
            for key, value in body.groups.items()}
        seats = None if body.seats is None else [decode_record(value, limits, f"seats[{i}]")
                                                 for i, value in enumerate(body.seats)]
        answer: Any = None
        recorder: Recorder | None = request.app.state.recorder
        run = Run(id=IDS.next(), made_at=dt.datetime.now(dt.UTC), policy_id=policy.id,
                  policy_digest=policy.digest, groups=groups, seats=seats, as_of=body.as_of)
        recording = recorder.recording(request, run.id) if recorder is not None else None
        pool = request.app.state.service.pool
        if policy.calls_plugins and pool is not None and pool.usable(policy.id, policy.digest, len(records), True):
            answer = await pool.population(policy.id, policy.digest, records, groups, seats, body.as_of,
                                           body.explain, limits, recording)  # plugin calls bounded in time, there
        if answer is None:
            run_it = partial(decide_population, engine, policy.id, records, groups, seats, body.as_of, body.explain,
                             limits, recording)
            answer = await _work(request).run(f"a population run of {len(records)} records", run_it,
                                              disconnected=partial(client_gone, request))
        if answer is None or answer is TOO_LARGE:
            raise too_large(limits)
        metrics = _metrics(request)
        metrics.batch_records.labels("service").inc(len(records))
        joined, reports, failed, rows = answer
        if recorder is not None:  # the run once, and each member's decision pointing to it
            await recorder.keep_rows(policy, rows, [run])
        metrics.observe_decisions(policy.id, "decided", len(records) - failed)
        if failed:
            metrics.observe_decisions(policy.id, "error", failed)
        if failed:
            joined = _said(request, policy, joined)
        return _Answer(b'{"results":[' + joined + b'],"groups":[' + reports + b"]}", policy.digest)


def _said(request: Request[Any, Any, Any], policy: CompiledPolicy, joined: bytes) -> bytes:
    """The results of a batch (their JSON texts joined by commas) with each record error's messages
    in the request's language (Accept-Language); as they are in English."""
    lang = asked_language(request)
    if lang == DEFAULT_LANGUAGE:
        return joined
    results = msgspec.json.decode(b"[" + joined + b"]", type=list[msgspec.Raw])
    out = []
    for raw in results:
        text = bytes(raw)
        if text.startswith(b'{"result":"error"'):
            failed = msgspec.json.decode(text, type=BatchError)
            text = _ENCODER.encode(msgspec.structs.replace(failed, error=in_language(failed.error, lang, policy)))
        out.append(text)
    return b",".join(out)


def _evaluate_body(raw: bytes, limits: Limits) -> EvaluateRequest:
    """An evaluate body read and checked the way that names each problem it finds."""
    body: EvaluateRequest = decode(raw, EvaluateRequest, limits)
    within_limits(body.record, raw, limits)
    unique_members(raw, {"record": body.record})
    return body


async def _off_the_loop(service: PolicyService, engine: Engine, policy: CompiledPolicy, body: EvaluateRequest,
                        limits: Limits) -> Decision:
    """Decide a record of a policy that runs plugin code: in a pool process, where each plugin call
    has its time budget, or (no process up) in a thread, so the event loop keeps serving."""
    pool = service.pool
    if pool is not None and pool.usable(policy.id, policy.digest, 1, calls_plugins=True):
        outcome = await pool.evaluate(policy.id, policy.digest, body.record, body.as_of, body.explain,
                                      limits.unknown_fields)
        if outcome is not None:
            return unpack(outcome)
    return await to_thread.run_sync(partial(engine.evaluate, policy.id, body.record, body.as_of, body.explain,
                                            limits.unknown_fields))


async def _request_of(request: Request[Any, Any, Any], engine: Engine,
                      policy_id: str) -> tuple[CompiledPolicy, Limits, bytes]:
    """The policy a decision request names (as pinned by If-Match), the limits in force and the JSON body."""
    policy = engine.policy(policy_id)
    _pinned(request, policy.digest)
    check_json(request)
    return policy, _limits(request), await request.body()


def plugins_listing(engine: Engine) -> dict[str, Any]:
    """What the service loaded: each plugin with its version, functions and indicators."""
    registry = engine.registry
    out: dict[str, dict[str, Any]] = {name: {"name": name, "version": version, "functions": [], "indicators": []}
                                      for name, version in sorted(registry.plugins.items())}
    for spec in sorted(registry.functions.values(), key=lambda f: f.name):
        entry = out.setdefault(spec.plugin, {"name": spec.plugin, "version": spec.version, "functions": [],
                                             "indicators": []})
        entry["functions"].append({"name": spec.name, "params": [{"name": n, "type": t} for n, t in spec.params],
                                   "returns": spec.returns, "description": spec.description,
                                   **({"cite": spec.cite} if spec.cite else {})})
    for ind in sorted(registry.indicators.values(), key=lambda i: i.name):
        entry = out.setdefault(ind.plugin, {"name": ind.plugin, "version": ind.version, "functions": [],
                                            "indicators": []})
        entry["indicators"].append({"name": ind.name, "source": ind.source, "source_type": ind.source_type,
                                    "returns": ind.returns, "description": ind.description,
                                    **({"cite": ind.cite} if ind.cite else {})})
    return {"plugins": list(out.values()), "broken": [broken_out(b) for b in registry.broken]}


def broken_out(broken: BrokenPlugin) -> BrokenPluginOut:
    return BrokenPluginOut(plugin=broken.plugin, version=broken.version, reason=broken.reason, file=broken.file,
                           line=broken.line)


@cache
def _policy_schema_json() -> bytes:
    return msgspec.json.encode(policy_schema())


def _region_files(raw: bytes, limits: Limits) -> dict[str, str] | None:
    """A JSON body `{"files": {name: text}}`: a region's files, checked together; None for a JSON policy document."""
    try:
        probe = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None  # not JSON after all: read as YAML, which reports where it breaks
    if not isinstance(probe, dict) or "files" not in probe:
        return None
    files = dict(decode(raw, ValidateFiles, limits).files)
    unique_members(raw, {"files": files})
    return files


class ServiceController(Controller):
    """Check policy documents, and reload the policies in service."""

    tags = ["service"]

    @post("/v1/validate", operation_id="validatePolicy", status_code=200,
          summary="Check a policy document; nothing is put in service",
          operation_class=_with_body(ValidateFiles, JSON, also={"application/yaml": str}),
          responses={200: ResponseSpec(ValidateResult, generate_examples=False, description="The diagnostics"),
                     **_problems(400, 401, 413, 415, 422, 503)})
    async def validate(self, request: Request[Any, Any, Any], engine: NamedDependency[Engine],
                       name: FromQuery[str] = "policy.yaml") -> Response[bytes]:
        kind = content_type(request)
        if kind and not (kind.startswith("text/") or "yaml" in kind or kind == JSON):
            raise ApiProblem("unsupported-media-type", f"send the policy as application/yaml or text/plain, not {kind}")
        raw = await request.body()
        if not raw.strip():
            raise ApiProblem("missing-body", "send a policy document (YAML) as the body")
        texts = _region_files(raw, _limits(request)) if kind == JSON else None
        if texts is None:
            try:
                texts = {name: raw.decode("utf-8")}
            except UnicodeDecodeError as exc:
                raise ApiProblem("bad-request", f"the body is not UTF-8 text (byte {exc.start})") from None
        key = key_scope(request)  # a key sees only the policies it may use, as parents and in suggestions
        allowed = None if key is None or "*" in key.policies else [pid for pid in engine.ids if key.allows(pid)]
        validator: Validator = request.app.state.validator
        report = await validator.check(engine, texts, allowed)
        lang = asked_language(request)
        return _json(ValidateResult(valid=report.ok, policies=sorted(report.policies),
                                    diagnostics=[DiagnosticOut.of(translate(d, lang)) for d in report.problems],
                                    warnings=[DiagnosticOut.of(translate(d, lang)) for d in report.warnings]))

    @get("/v1/plugins", operation_id="listPlugins",
         summary="The plugins the service loaded: versions, functions and indicators")
    async def plugins(self, engine: NamedDependency[Engine]) -> Response[bytes]:
        return _json(plugins_listing(engine))

    @get("/v1/schema/policy", operation_id="policyFileSchema",
         summary="The JSON Schema of a policy file (for editors with a YAML language server)")
    async def policy_schema(self) -> Response[bytes]:
        return Response(content=_policy_schema_json(), media_type="application/schema+json")

    @post("/v1/admin/reload", operation_id="reloadPolicies", status_code=200, opt={"admin": True},
          summary="Re-read the policies folder",
          responses={200: ResponseSpec(ReloadResult, generate_examples=False, description="The new set"),
                     **_problems(401, 403, 409, 422, 503)})
    async def reload(self, request: Request[Any, Any, Any], service: NamedDependency[PolicyService]) -> Response[bytes]:
        if not service.policies:
            raise ApiProblem("reload-unavailable")
        outcome, behind = await reload_now(service, _metrics(request))
        if outcome.refused:
            raise ApiProblem("reload-failed", f"{len(outcome.refused)} error(s); the policies in service are kept",
                             diagnostics=[DiagnosticOut.of(d) for d in outcome.refused])
        generation = service.generation
        if behind:
            raise ApiProblem("reload-pending", f"generation {generation} is published but {behind} worker(s) do not "
                             f"serve it after {RELOAD_CONVERGE_SECONDS} s; they take it up when they can",
                             generation=generation)
        return _json(ReloadResult(generation=generation, reloaded=list(outcome.reloaded), failed=service.failed,
                                  removed=list(outcome.removed),
                                  policies=[PolicySummary(**p.describe()) for p in service.engine.policies()],
                                  warnings=[DiagnosticOut.of(d) for d in outcome.warnings]))


async def reload_now(service: PolicyService, metrics: Metrics) -> tuple[Reload, int]:
    """Re-read the policies folder (`POST /v1/admin/reload`, SIGHUP): the outcome, and how many
    workers do not serve the new generation in time (0 once they all do)."""
    outcome = await to_thread.run_sync(service.reload)
    metrics.observe_reload(outcome.timings)
    if outcome.refused:
        metrics.reloads.labels("failed").inc()
        _log.warning("reload refused with %d error(s); the policies in service are kept", len(outcome.refused))
        return outcome, 0
    metrics.reloads.labels("partial" if outcome.failed else "ok").inc()
    generation = service.generation
    behind = await service.converged(generation, RELOAD_CONVERGE_SECONDS)
    if behind:
        return outcome, behind
    await service.renew_pool()
    for failed in service.failed:
        _log.warning("reload: %s did not compile and keeps its last good version (%d diagnostic(s))",
                     failed.policy, len(failed.diagnostics))
    _log.info("reloaded: generation %d, %d policies compiled, %d failed", generation, len(outcome.reloaded),
              len(outcome.failed))
    return outcome, 0


def reload_on_hangup(service: PolicyService, metrics: Metrics) -> None:
    """SIGHUP re-reads the policies folder, as `POST /v1/admin/reload` does (the event loop's thread
    must be the main thread; elsewhere nothing is installed)."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    def hangup() -> None:
        _log.info("SIGHUP: re-reading the policies folder")
        task = loop.create_task(reload_now(service, metrics))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, hangup)


class ProbeController(Controller):
    """Liveness, readiness, metrics, and what each problem type means."""

    tags = ["operations"]

    @get("/health", operation_id="health", summary="Liveness: the process answers")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", operation_id="ready", summary="Readiness: policies are in service", responses={
        200: ResponseSpec(ReadyResult, generate_examples=False, description="Ready"), **_problems(503)})
    async def ready(self, request: Request[Any, Any, Any], service: NamedDependency[PolicyService]) -> Response[bytes]:
        if not service.ready:
            raise ApiProblem("not-ready", "shutting down" if service.draining else "no policies in service")
        recorder: Recorder | None = request.app.state.recorder
        if recorder is not None and not await recorder.responsive():
            raise ApiProblem("not-ready", "the decision store does not answer")
        ring: KeyRing = request.app.state.api_keys
        if ring:  # the details (policies, their diagnostics, plugins) are for a caller with a key
            try:
                check_key(ring, request.scope)
            except ApiProblem:
                return _json(Readiness(status="ready"))
        pool = service.pool
        return _json(ReadyResult(status="ready", generation=service.generation, policies=service.engine.ids,
                                 failed=service.failed, batch_processes=pool.ready if pool is not None else 0,
                                 broken_plugins=[broken_out(b) for b in service.engine.registry.broken]))

    @get("/metrics", operation_id="metrics",
         summary="Prometheus metrics (with keys: an admin key, unless served with --public-metrics)",
         media_type=CONTENT_TYPE_LATEST, opt={"admin": True}, responses=_problems(401, 403))
    async def metrics(self, request: Request[Any, Any, Any], engine: NamedDependency[Engine],
                      service: NamedDependency[PolicyService]) -> ASGIResponse:
        ring: KeyRing = request.app.state.api_keys
        if ring and not request.app.state.public_metrics:  # the metrics name every policy and its digest
            check_key(ring, request.scope)
        text = _metrics(request).render([(p.id, p.version, p.digest) for p in engine.policies()], service.generation)
        return ASGIResponse(body=text, headers={"content-type": CONTENT_TYPE_LATEST})  # as it is: one charset

    @get("/problems/{name:str}", operation_id="problemType", summary="What a problem type means",
         responses=_problems(404))
    async def problem_type(self, name: FromPath[str]) -> dict[str, Any]:
        if name not in PROBLEMS:
            raise ApiProblem("unknown-problem", f"no problem type {name!r}")
        status, title, meaning = PROBLEMS[name]
        return {"type": f"/problems/{name}", "title": title, "status": status, "description": meaning}


def create_app(engine: Engine | PolicyService, *, policies: Sequence[Path] = (), keys: KeyRing | None = None,
               limits: Limits | None = None, access_log: BinaryIO | LineWriter | None = None,
               validator: Validator | None = None, public_metrics: bool = False,
               cors_origins: Sequence[str] = (), recorder: Recorder | None = None,
               work: Work | None = None, hangup_reloads: bool = False) -> Litestar:
    """The HTTP service over `engine`; `policies` is the folder a reload re-reads.

    With keys, `/metrics` needs an admin key unless `public_metrics`. `cors_origins` are the browser
    origins (`https://portal.example.go.id`) allowed to call the service; none by default.
    `validator` checks documents sent to `/v1/validate` (default: on a thread, within a time budget).
    `access_log` takes one JSON line per request: a binary stream, or a `LineWriter` (`kinerja serve`
    gives standard output's). Lines are written from a thread of their own, never from a request.
    `recorder` keeps every decision (with its `decision_id`) before it is answered; none: nothing is kept.
    `work` bounds the expensive requests (population runs, impact, replays, appeals) in time and number.
    `hangup_reloads`: SIGHUP re-reads the policies folder (`kinerja serve`, whose process is the app's).
    """
    service = engine if isinstance(engine, PolicyService) else PolicyService(engine, policies)
    checker = validator or Validator(service.plugins)
    limits = limits or Limits()
    metrics = Metrics()

    async def serving(app: Litestar) -> None:
        finish_general(app.plugins.get(OpenAPIPlugin).provide_openapi_schema(), secured=bool(keys))
        service.draining = False
        await service.start()
        checker.start()
        if recorder is not None:
            await recorder.start()
        if hangup_reloads and service.policies:
            reload_on_hangup(service, metrics)

    if access_log is not None and not isinstance(access_log, LineWriter):
        access_log = LineWriter(to_stream(access_log), "access")
    log = AccessLog(access_log) if access_log is not None else None


    async def draining() -> None:
        await service.stop()
        checker.stop(wait=True)
        if recorder is not None:
            recorder.close()
        if log is not None:
            log.close()

    app = Litestar(
        # The key check costs nothing when no keys are configured: it is not installed.
        route_handlers=[Router("/", route_handlers=[PolicyController, ServiceController, DecisionController,
                                                    KeberatanController, impact_endpoint, surat_endpoint,
                                                    what_if_endpoint],
                               middleware=[AuthMiddleware] if keys else []), ProbeController,
                        create_static_files_router(path=ASSETS, directories=[_STATIC], include_in_schema=False,
                                                   cache_control=CacheControlHeader(max_age=86400))],
        dependencies={"engine": Provide(service.current, sync_to_thread=False),
                      "service": Provide(lambda: service, sync_to_thread=False, use_cache=True)},
        exception_handlers=EXCEPTION_HANDLERS,
        state=State({"api_keys": keys or KeyRing(), "limits": limits, "metrics": metrics, "validator": checker,
                     "service": service, "recorder": recorder, "work": work or Work(),
                     "public_metrics": public_metrics}),
        request_max_body_size=limits.max_body_bytes,
        cors_config=CORSConfig(allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                               allow_headers=["authorization", "content-type", "if-match", "x-request-id",
                                              "accept-language"],
                               expose_headers=["etag", "x-request-id"], max_age=600) if cors_origins else None,
        on_startup=[serving],
        on_shutdown=[draining],
        logging_config=None,  # the host process configures logging (`kinerja serve` does)
        openapi_config=OpenAPIConfig(
            title="kinerja-rules", version=__version__, path="/docs",
            description="Decisions on ASN performance, TPP and placement from policies written as code.",
            render_plugins=[SwaggerRenderPlugin(  # served from the package: /docs works without internet
                path="/", js_url=f"{ASSETS}/swagger-ui-bundle.js", css_url=f"{ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>")],
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")})),
    )
    # Outermost, so requests that match no route are counted and logged too.
    app.asgi_handler = ObserveMiddleware(app.asgi_handler, metrics, log)
    return app
