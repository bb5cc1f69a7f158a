"""What an evaluation returns: a decision, or an error result for that record."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from kinerja_rules.errors import FieldError
from kinerja_rules.numbers import Rational, approximate


class PolicyRef(msgspec.Struct, frozen=True, kw_only=True):
    """The policy that made a decision: its id, version and digest."""

    id: str
    version: str
    digest: str


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outputs for one record, nested by their dotted names, with the policy that made them."""

    decision_id: str | msgspec.UnsetType = msgspec.UNSET
    """The id of the decision record (time-ordered, UUIDv7) when the decision was recorded, as the
    server records each of its decisions; absent otherwise."""
    subject: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    """Whom the decision is for: the policy's `subject` inputs (nip and periode by default)."""
    policy: PolicyRef
    as_of: dt.date
    outputs: dict[str, Any]
    warnings: list[FieldError] = []  # fields of the record the policy does not declare (`unknown_fields: warn`)
    population: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    """Where the record stood in its population run (group, size, rank, seat); null when a policy with a
    population stage decided it alone; absent for a policy without one."""
    trace: dict[str, Any] | None = None

    def get(self, dotted: str) -> Any:
        """One output by its dotted name (`tpp.diterima`)."""
        value: Any = self.outputs
        for part in dotted.split("."):
            value = value[part]
        return value


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: str  # record | evaluation | input
    message: str
    fields: list[FieldError] = []
    where: str = ""
    paths: list[str] = []
    line: int | None = None


class ErrorResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The result for a record that could not be decided; other records are unaffected."""

    subject: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    """Whom the record was for, when its identity fields are valid; null when they are not."""
    error: ErrorInfo
    policy: PolicyRef | None = None


def _encode_other(value: Any) -> Any:
    if type(value) is Rational:  # only a trace holds one; outputs are exact decimals by check
        return approximate(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=_encode_other)
"""The JSON encoder of decisions (decimals as JSON numbers)."""


def to_json(result: Decision | ErrorResult) -> bytes:
    """Encode a result as one line of JSON (decimals as JSON numbers)."""
    return ENCODER.encode(result)


def to_builtins(result: Decision | ErrorResult) -> Any:
    return msgspec.to_builtins(result)
