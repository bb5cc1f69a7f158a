"""What clients and editors read is ours, whichever release of a dependency is installed.

msgspec 0.22 raises UnicodeDecodeError for text that is not UTF-8 and keeps a docstring's
indentation in a JSON Schema description; 0.23 raises DecodeError("Invalid UTF-8 encoded
string") and dedents. Each test here makes the installed msgspec behave like the other
release too, so both are covered by one run on the locked versions."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kinerja_rules import bulk, jsontext
from kinerja_rules.documents import policy_schema
from kinerja_rules.jsontext import not_utf8
from kinerja_rules.server import bodies
from kinerja_rules.server.problems import ApiProblem

ROOT = Path(__file__).resolve().parent.parent
BAD = b'{"record": {"nip": "19850712\xff\xfe"}}'  # the first bad byte is at 28


def _raises_0_22(raw: bytes) -> Any:
    return raw.decode("utf-8")  # 0.22: the codec's own error


def _raises_0_23(raw: bytes) -> Any:
    raise msgspec.DecodeError("Invalid UTF-8 encoded string")


class _Decoder:
    def __init__(self, decode: Callable[[bytes], Any]) -> None:
        self.decode = decode


RELEASES = pytest.mark.parametrize("release", [_raises_0_22, _raises_0_23], ids=["0.22", "0.23"])


def test_not_utf8_names_the_first_bad_byte() -> None:
    assert not_utf8(BAD) == "not UTF-8 (byte 28)"
    assert not_utf8("Dinas Pendidikan – Bidang SD".encode()) is None
    assert not_utf8(b"\xed\xa0\x80") == "not UTF-8 (byte 0)"  # an encoded surrogate is not UTF-8 either


@RELEASES
def test_a_body_that_is_not_utf8_reads_the_same_with_either_release(
        monkeypatch: pytest.MonkeyPatch, release: Callable[[bytes], Any]) -> None:
    monkeypatch.setattr(bodies, "_decoder", lambda kind: _Decoder(release))
    with pytest.raises(ApiProblem) as caught:
        bodies.decode(BAD, bodies.EvaluateRequest, bodies.Limits())
    assert (caught.value.name, caught.value.detail) == ("malformed-json", "the body is not UTF-8 (byte 28)")


@RELEASES
def test_a_batch_record_that_is_not_utf8_reads_the_same_with_either_release(
        monkeypatch: pytest.MonkeyPatch, release: Callable[[bytes], Any]) -> None:
    monkeypatch.setattr(jsontext, "_RECORD", _Decoder(release))  # the one record intake
    with pytest.raises(ApiProblem) as caught:
        bodies.decode_record(b'{"nip": "\xff"}', bodies.Limits(), "records[3]")
    assert (caught.value.name, caught.value.detail) == ("malformed-json", "records[3]: not UTF-8 (byte 9)")


@RELEASES
def test_a_json_lines_record_that_is_not_utf8_reads_the_same_with_either_release(
        monkeypatch: pytest.MonkeyPatch, release: Callable[[bytes], Any]) -> None:
    monkeypatch.setattr(jsontext, "_RECORD", _Decoder(release))  # the one record intake
    error = bulk.decode(b'{"nip": "\xff"}', 6, " on line 6")
    assert error.message == "invalid JSON on line 6: not UTF-8 (byte 9)" and error.line == 6


def test_a_refusal_that_is_not_about_utf8_keeps_the_decoders_words() -> None:
    with pytest.raises(ApiProblem) as caught:
        bodies.decode(b'{"record": ', bodies.EvaluateRequest, bodies.Limits())
    assert caught.value.name == "malformed-json" and "UTF-8" not in caught.value.detail


def _indented(schema: Any) -> Any:
    """`schema` as msgspec 0.22 writes it: a description's later lines keep the docstring's indent."""
    if isinstance(schema, dict):
        return {key: _indent(value) if key == "description" and isinstance(value, str) else _indented(value)
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_indented(item) for item in schema]
    return schema


def _indent(text: str) -> str:
    first, _, rest = text.partition("\n")
    return first + ("\n" + textwrap.indent(rest, "    ", lambda line: True) if rest else "")


@pytest.mark.parametrize("layout", [_indented, lambda schema: schema], ids=["0.22", "0.23"])
def test_the_policy_schema_is_the_same_with_either_release(monkeypatch: pytest.MonkeyPatch,
                                                           layout: Callable[[Any], Any]) -> None:
    real = msgspec.json.schema
    monkeypatch.setattr(msgspec.json, "schema", lambda kind: layout(real(kind)))
    written = json.loads((ROOT / "docs" / "policy.schema.json").read_text())
    assert policy_schema() == written
    multiline = [d for d in _descriptions(written) if "\n" in d]
    assert multiline and not any("\n    " in d for d in multiline)  # docstrings spanning lines, cleaned


def _descriptions(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        return [v for k, v in schema.items() if k == "description" and isinstance(v, str)] + \
            [d for k, v in schema.items() if k != "description" for d in _descriptions(v)]
    if isinstance(schema, list):
        return [d for item in schema for d in _descriptions(item)]
    return []
