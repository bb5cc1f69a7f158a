"""Request and response bodies, and reading them within the service's limits.

Bodies are decoded by msgspec straight from bytes, with JSON numbers that have a fraction
becoming `Decimal`, so no money or percentage passes through a binary float.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from litestar import Request

from kinerja_rules import Decision, ErrorResult, FieldError
from kinerja_rules.jsontext import Bounds, Unread, check_shape, duplicate_key, field_path, not_utf8, read_json
from kinerja_rules.population_run import GroupReport
from kinerja_rules.server.problems import ApiProblem, DiagnosticOut


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """What one request may hold. Each has a `kinerja serve` option."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    max_depth: int = 32
    max_list_items: int = 10_000
    max_response_bytes: int = 64 * 1024 * 1024  # what one answer may hold (explain traces are what grows)
    max_explain_batch: int = 1_000  # records in one batch with explain: true
    unknown_fields: str | None = None  # overrides every policy's rule for fields it does not declare
    what_if_seconds: float = 1.0  # the search of one what-if (and of a letter's nearest goal)


class EvaluateRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One record to decide; `as_of` defaults to the first day of the record's period."""

    record: dict[str, Any]
    as_of: dt.date | None = None
    explain: bool = False


class _PlainEvaluate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`EvaluateRequest` with its record left as text, and each member told given or not."""

    record: msgspec.Raw
    as_of: dt.date | None | msgspec.UnsetType = msgspec.UNSET
    explain: bool | msgspec.UnsetType = msgspec.UNSET


_PLAIN_EVALUATE = msgspec.json.Decoder(_PlainEvaluate)


class PlainEvaluate(NamedTuple):
    record: bytes  # its JSON text, as it came
    as_of: dt.date | None
    explain: bool


def plain_evaluate(raw: bytes, limits: Limits) -> PlainEvaluate | None:
    """(record text, as_of, explain) of an evaluate body that is plainly well formed: each member
    given once, within the depth and list limits; None for anything else, which `decode` and the
    checks after it read and answer with the problem they find."""
    try:
        body = _PLAIN_EVALUATE.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    record = bytes(body.record)
    as_of, explain = body.as_of, body.explain
    # outside the record, a `:` can only follow a member's name (the names are fixed, `as_of` a date),
    # so one more `:` than members given is a member given twice
    given = 1 + (as_of is not msgspec.UNSET) + (explain is not msgspec.UNSET)
    if raw.count(b":") - record.count(b":") != given or not fits(raw, limits):
        return None
    return PlainEvaluate(record, None if as_of is msgspec.UNSET else as_of, explain is True)


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Records to decide in one request; each gets its own decision or error, in order."""

    records: list[msgspec.Raw]  # each record is decoded on its own, so one bad record fails alone
    as_of: dt.date | None = None
    explain: bool = False


class BatchDecision(Decision, frozen=True, kw_only=True, tag_field="result", tag="decision"):
    """A decided record of a batch: the decision the evaluate endpoint gives, marked `result: decision`."""


class BatchError(ErrorResult, frozen=True, kw_only=True, tag_field="result", tag="error"):
    """A record of a batch that could not be decided, marked `result: error`; the others are unaffected."""


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """One result per record, in the order sent: a decision or an error, told apart by `result`."""

    results: list[BatchDecision | BatchError]


class PopulationRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Records decided together as a population: each group's data by its key (the unit_kerja),
    and the seats of an assignment."""

    records: list[msgspec.Raw]  # each record is decoded on its own, so one bad record fails alone
    groups: dict[str, msgspec.Raw] | None = None
    seats: list[msgspec.Raw] | None = None
    as_of: dt.date | None = None
    explain: bool = False


class PopulationResult(msgspec.Struct, frozen=True, kw_only=True):
    """One result per record in the order sent, then a report per group (and one for an assignment)."""

    results: list[BatchDecision | BatchError]
    groups: list[GroupReport]


class PolicySummary(msgspec.Struct, frozen=True, kw_only=True):
    """A policy in service: who it is, its parent, and every date a value of it changes."""

    id: str
    title: str
    version: str
    digest: str
    extends: str | None
    effective: dt.date
    effective_dates: list[dt.date]


class PolicyList(msgspec.Struct, frozen=True, kw_only=True):
    policies: list[PolicySummary]


class Acknowledged(msgspec.Struct, frozen=True, kw_only=True):
    """A warning the policy allows (`allow:`), with the reason its authors gave."""

    code: str
    message: str
    reason: str


class CheckOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A condition a record must meet before it is decided (the policy's `checks:`); a record that
    fails it is a 422 whose error names the check."""

    require: str
    message: str
    at: str  # the field the error names (`skp.segmen[*]`: each item of a list)
    cite: str = ""


class PolicyDetail(PolicySummary, frozen=True, kw_only=True):
    """A policy with what a client needs to call it."""

    doc: str
    unknown_fields: Literal["warn", "error", "ignore"]  # what a record's undeclared field is, in this server
    input_schema: dict[str, Any]  # JSON Schema 2020-12 of the record
    outputs: dict[str, dict[str, Any]]
    parameters: dict[str, dict[str, Any]]  # each with its dated `values`
    references: dict[str, dict[str, str]]
    population: dict[str, Any] | None = None  # what a population run needs beside the records, and does
    acknowledged: list[Acknowledged] = []  # warnings of the checker the policy's authors accept, and why
    checks: dict[str, CheckOut] = {}


class FailedPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A policy whose files did not compile: it keeps its last good version, or stays out if new."""

    policy: str
    diagnostics: list[DiagnosticOut]


class BrokenPluginOut(msgspec.Struct, frozen=True, kw_only=True):
    """A plugin left out at start: the policies that use what it gives are not in service."""

    plugin: str
    version: str
    reason: str
    file: str  # where the fault is, when known
    line: int


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """`/ready` to a caller without a key, when the service has keys: ready, and nothing more."""

    status: str


class ReadyResult(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    generation: int  # the same in every worker once a reload has answered
    policies: list[str]
    failed: list[FailedPolicy]  # policies whose folder files did not compile (at start or the last reload)
    batch_processes: int
    broken_plugins: list[BrokenPluginOut]  # plugins left out: each policy using them is in `failed`


class ReloadResult(msgspec.Struct, frozen=True, kw_only=True):
    """A reload: every policy that compiled is in service; one that failed kept its last good version."""

    generation: int
    reloaded: list[str]
    failed: list[FailedPolicy]
    removed: list[str]
    policies: list[PolicySummary]
    warnings: list[DiagnosticOut] = []


FileName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


class ValidateFiles(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A region's policy files, by file name, checked together (`policy.yaml`, `tests.yaml`)."""

    files: Annotated[dict[FileName, str], msgspec.Meta(min_length=1, max_length=64)]


class ValidateResult(msgspec.Struct, frozen=True, kw_only=True):
    """The diagnostics for a policy document; `diagnostics` is empty when it is valid."""

    valid: bool
    policies: list[str]
    diagnostics: list[DiagnosticOut]
    warnings: list[DiagnosticOut]


_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[Any]) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, float_hook=Decimal)
    return decoder


def decode(body: bytes, kind: type[Any], limits: Limits) -> Any:
    """Decode a JSON body into `kind`, answering with a problem that names the bad field."""
    if not body.strip():
        raise ApiProblem("missing-body", "send a JSON object")
    try:
        return _decoder(kind).decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        if (bad := not_utf8(body)) is not None:
            raise ApiProblem("malformed-json", f"the body is {bad}") from None
        if isinstance(exc, msgspec.ValidationError):
            path, text = field_path(str(exc))
            raise ApiProblem("invalid-body", f"{path}: {text}" if path else text,
                             errors=[FieldError(path=path, message=text)]) from None
        raise ApiProblem("malformed-json", str(exc)) from None
    except RecursionError:
        raise ApiProblem("too-deep", f"the body nests deeper than {limits.max_depth} levels") from None


_RECORD = msgspec.json.Decoder(float_hook=Decimal)
_MEMBERS = msgspec.json.Decoder(dict[str, msgspec.Raw])
def unique_keys(raw: bytes, decoded: Any, path: str = "") -> None:
    """Refuse JSON whose objects give a key twice (decoders keep the last one, silently)."""
    found = duplicate_key(raw, decoded)
    if found is not None:
        where, key = found
        place = f"{path}{where}".lstrip(".")
        message = f"gives the key {key!r} more than once"
        raise ApiProblem("duplicate-key", f"{place or 'the body'}: {message}",
                         errors=[FieldError(path=place, message=message)])


def unique_members(raw: bytes, fields: dict[str, Any]) -> None:
    """`unique_keys` for a request body: its own members, then each of `fields` (name: decoded value)."""
    try:
        members = _MEMBERS.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return  # the body itself was refused already, or is not an object
    inner = sum(bytes(value).count(b":") + key.count(":") for key, value in members.items())
    if raw.count(b":") - inner != len(members):
        unique_keys(raw, None)
    for name, value in fields.items():
        if name in members:
            unique_keys(bytes(members[name]), value, name)


def record_as_sent(text: bytes) -> Any:
    """The record `plain_evaluate` gave the text of, as sent (to be recorded): it is plainly valid,
    so read without the checks `decode_record` makes."""
    return _RECORD.decode(text)


def bounds(limits: Limits) -> Bounds:
    """The depth and list bounds of `limits`, as the record intake takes them."""
    return Bounds(limits.max_depth, limits.max_list_items)


def decode_record(raw: msgspec.Raw | bytes, limits: Limits, path: str) -> Any:
    """Decode one record of a batch (`jsontext.read_json`); raises ApiProblem naming `path` when it
    cannot be read or breaks a limit."""
    value = read_json(bytes(raw), bounds(limits))
    if type(value) is Unread:
        raise unread_problem(value, path)
    return value


def unread_problem(unread: Unread, path: str) -> ApiProblem:
    """The problem answering a record that could not be read (`path`: where the record is)."""
    place = unread.place(path)
    if unread.problem == "malformed-json" or (unread.problem == "too-deep" and not unread.path):
        return ApiProblem(unread.problem, unread.text(path))
    if unread.problem == "duplicate-key":
        return ApiProblem("duplicate-key", f"{place or 'the body'}: {unread.reason}",
                          errors=[FieldError(path=place, message=unread.reason)])
    return ApiProblem(unread.problem, unread.text(path), errors=[FieldError(path=place, message=unread.reason)])


def within_limits(record: Any, raw: bytes, limits: Limits, path: str = "record") -> None:
    """Raise a problem naming the place where `record` (decoded from `raw`) passes a limit."""
    if fits(raw, limits):
        return
    shape = check_shape(record, bounds(limits))
    if shape is not None:
        where, reason = shape
        raise unread_problem(Unread("too-deep" if "deeper" in reason else "list-too-long", where.lstrip("."),
                                    reason), path)


def fits(body: bytes, limits: Limits) -> bool:
    """Whether `body` is certainly within the depth and list limits, judged from its bytes alone."""
    return bounds(limits).fits(body)


JSON = "application/json"


def content_type(request: Request[Any, Any, Any]) -> str:
    """The media type of the body, read from the raw headers (cheaper than building `request.headers`)."""
    raw = next((v for k, v in request.scope["headers"] if k == b"content-type"), b"")
    return raw.decode("latin-1").split(";")[0].strip().lower()


def check_json(request: Request[Any, Any, Any]) -> None:
    kind = content_type(request)
    if kind and kind != JSON and not kind.endswith("+json"):
        raise ApiProblem("unsupported-media-type", f"send {JSON}, not {kind}")


def batch_length(count: int, explain: bool, limits: Limits) -> None:
    """Refuse more records in one request than the service decides at once (fewer with explain)."""
    if count > limits.max_batch:
        raise ApiProblem("batch-too-long", f"{count} records; at most {limits.max_batch} per request",
                         errors=[FieldError(path="records", message=f"at most {limits.max_batch} records")])
    if explain and count > limits.max_explain_batch:
        raise ApiProblem("batch-too-long", f"{count} records with explain: true; at most "
                         f"{limits.max_explain_batch} per request (a trace is many times its record)",
                         errors=[FieldError(path="records", message=f"at most {limits.max_explain_batch} "
                                                                    "records with explain: true")])


def too_large(limits: Limits) -> ApiProblem:
    return ApiProblem("response-too-large", f"the answer would pass {limits.max_response_bytes} bytes; ask without "
                                            "explain, or send fewer records per request")
