from __future__ import annotations

from decimal import Decimal

import pytest

from kinerja_rules.errors import PolicyError
from kinerja_rules.loader import MAX_FILE_BYTES, load_text


def test_floats_load_as_exact_decimals() -> None:
    source = load_text("a: 0.1\nb: 2_500_000\n", "t.yaml")
    assert source.data["a"] == Decimal("0.1")


def test_positions_are_one_based() -> None:
    source = load_text("top:\n  inner: 5\n", "t.yaml")
    span = source.key_span(("top", "inner"))
    assert (span.file, span.line, span.column) == ("t.yaml", 2, 3)


def test_expression_position_inside_a_block_scalar() -> None:
    source = load_text("d:\n  expr: |\n    a +\n      b\n", "t.yaml")
    span = source.expression_span(("d", "expr"), 2, 3)
    assert (span.line, span.column) == (4, 7)


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(PolicyError) as err:
        load_text("a: 1\na: 2\n", "t.yaml")
    assert err.value.diagnostics[0].code == "E003"
    assert err.value.diagnostics[0].span.line == 2


def test_oversized_text_is_refused() -> None:
    with pytest.raises(PolicyError, match="larger than"):
        load_text("a: '" + "x" * (MAX_FILE_BYTES + 1) + "'\n", "big.yaml")


def test_recursive_alias_never_loops() -> None:
    import json

    try:
        source = load_text("a: &a [*a]\nb: &b {c: *b}\n", "t.yaml")
    except PolicyError:
        return
    json.dumps(source.data)  # finite, acyclic data


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(PolicyError) as err:
        load_text("a: [1, 2\nb: 3\n", "t.yaml")
    assert err.value.diagnostics[0].span is not None


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(PolicyError, match="finite"):
        load_text("a: .nan\n", "t.yaml")
