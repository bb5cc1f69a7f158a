"""Intake: a record as it comes in, made a clean record or that record's error.

Three readers are chained here, and only here, fastest first:
- `plain_record`: JSON text read and checked by msgspec in C (`fastcheck.build_typed_decoder`),
  for a record that is plainly valid; anything else gets None and goes the usual way;
- `check_record`: a decoded record through the generated fast validator
  (`fastcheck.build_fast_validator`), and, when that refuses it, through the full validator
  (`schema.build_validator`), whose messages name every problem, with the policy's rule for
  fields it does not declare.
Each is built for a policy on its first record and kept with it (`CompiledPolicy.derived`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kinerja_rules.errors import FieldError, RecordError
from kinerja_rules.fastcheck import build_fast_validator, build_typed_decoder
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.schema import build_validator, judge_unknown

_NONE: Any = object()  # a policy whose records no typed decoder can read
# Kept in `CompiledPolicy.derived`: the fast validators under the keys True (strict) and False
# (unknown fields ignored), looked up once per record; "validator" and "typed" for the others.


def check_record(policy: CompiledPolicy, record: Any,
                 unknown_fields: str | None = None) -> tuple[dict[str, Any], list[FieldError]]:
    """The record normalised, with a warning for each key the policy does not declare; raises
    RecordError for a bad value or, by the `unknown_fields` rule (else the policy's), an unknown key."""
    mode = unknown_fields or policy.unknown_fields
    strict = mode != "ignore"
    try:
        return (policy.derived.get(strict) or fast_validator(policy, strict))(record), []
    except Exception:  # not plainly valid: the full validator names every problem
        pass
    errors: list[FieldError] = []
    if not isinstance(record, dict):
        raise RecordError([FieldError(path="", message="a record must be a JSON object")])
    validate = policy.derived.get("validator")
    if validate is None:
        validate = policy.derived.setdefault("validator", build_validator(policy.checked.input))
    clean = validate(record, "", errors)
    if not errors:
        return clean, []
    errors, warnings = judge_unknown(errors, mode)
    if errors:
        raise RecordError(errors)
    return clean, warnings


def validate(policy: CompiledPolicy, record: Any, unknown_fields: str | None = None) -> dict[str, Any]:
    """`check_record` without its warnings: the record normalised, or RecordError."""
    return check_record(policy, record, unknown_fields)[0]


def fast_validator(policy: CompiledPolicy, strict: bool = True) -> Callable[[Any], dict[str, Any]]:
    """The generated fast path of `check_record` (see `fastcheck`), built on first use: a check of
    the policy files, which decides no record, never builds it."""
    found = policy.derived.get(strict)
    if found is None:
        found = policy.derived.setdefault(strict, build_fast_validator(policy.checked.input, strict=strict))
    return found  # type: ignore[no-any-return]


def plain_record(policy: CompiledPolicy, raw: bytes) -> dict[str, Any] | None:
    """The record in the JSON text `raw` normalised, when it is plainly valid (no unknown or repeated
    key, every value as declared), read and checked by msgspec in C; None for anything else, which
    the caller decodes and checks with `check_record` (whose messages name every problem)."""
    decode = policy.derived.get("typed")
    if decode is None:
        decode = policy.derived.setdefault("typed", build_typed_decoder(policy.checked.input) or _NONE)
    if decode is _NONE:
        return None
    try:
        return decode(raw)  # type: ignore[no-any-return]
    except Exception:  # not plainly valid
        return None
