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


# ---- the libyaml fast path reads exactly what the ruamel walk reads ----

def _both(text: str) -> tuple[object, object]:
    """(data and places) read by the fast path, or None if it leaves the text to ruamel; and by ruamel."""
    from kinerja_rules.loader import _UNUSUAL, SourceFile, _fast_load, _Walker, _yaml

    def seen(source: SourceFile, data: object) -> object:
        return (_typed(data), source._key_pos, source._value_pos, source._block, source._quoted)

    fast_source = SourceFile("t.yaml", text)
    fast = _fast_load(fast_source)
    slow_source = SourceFile("t.yaml", text)
    slow = _Walker(slow_source).walk(_yaml().load(text), ())
    return (None if fast is _UNUSUAL else seen(fast_source, fast)), seen(slow_source, slow)


def _typed(data: object) -> object:
    """Data with every value's type beside it (1 == Decimal(1) == True would hide a difference)."""
    if isinstance(data, dict):
        return {k: _typed(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_typed(v) for v in data]
    return (type(data).__name__, str(data))


SNIPPETS = [
    "a: 1\nb: -2\nc: 0x1F\nd: 0o17\ne: 017\nf: 1_000\ng: +3\n",
    "a: 0.1\nb: 1e3\nc: -2.50\nd: 1_000.5\n",
    "a: true\nb: False\nc: yes\nd: no\ne: on\nf: null\ng: ~\ni: ''\n",
    "a: 2024-01-31\nb: 2024-01-31T10:00:00\nc: '2024-01-31'\n2024-02-01: x\n",
    "a: 'single'\nb: \"double\\tx\"\nc: plain text\nd: \"\"\n",
    "a: |\n  one\n  two\nb: >\n  folded\n  text\nc: |-\n  kept\n",
    "list:\n- 1\n- a: 2\n  b: [3, 4]\n- - nested\n  - deeper\n- {x: 1, y: {z: 2}}\n",
    "top:\n  inner:\n    deep: 'x: y'\n  other: [a, 'b', \"c\"]  # a comment\n# between\nlast: end\n",
    "ключ: значение\nnama: 'Dinas Pendidikan — Kota'\nteks: \"ü ∑ 🎉\"\n",
    "1: one\nyes: x\nnull_key: ~\n",
    "a: [1, 2,\n  3]\nb: {c: 1,\n  d: 2}\n",
    "expr: x + 1 if y > 2 else 3\ntable:\n  rows:\n    - [\"> 3\", 1]\n    - ['< 2', 2]\n",
    "- top level\n- list\n",
    "just a scalar\n",
    "'quoted alone'\n",
    "|\n  a block alone\n",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_the_fast_path_reads_what_ruamel_reads(text: str) -> None:
    fast, slow = _both(text)
    assert fast is not None, "a plain file is read by the fast path"
    assert fast == slow


def test_every_yaml_file_of_the_project_reads_the_same_both_ways() -> None:
    from tests.conftest import ROOT

    files = [p for folder in ("policies", "tests", "plugins", "docs") for p in (ROOT / folder).rglob("*.y*ml")]
    assert len(files) > 20
    fast_read = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            fast, slow = _both(text)
        except Exception:  # a file ruamel refuses is never read by the fast path either
            from kinerja_rules.loader import _UNUSUAL, SourceFile, _fast_load

            assert _fast_load(SourceFile("t.yaml", text)) is _UNUSUAL, path
            continue
        if fast is not None:
            fast_read += 1
            assert fast == slow, path
    assert fast_read > 20


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "a: !!str 5\n",  # an explicit tag
    "%YAML 1.1\n---\na: yes\n",  # a directive (YAML 1.1 reads `yes` as true)
    "base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n",  # a merge key
    "a: 1\n---\nb: 2\n",  # two documents
    "a: 1\na: 2\n",  # a key twice
    "1: one\ntrue: two\n",  # a key twice, as ruamel compares them (1 == true)
    "a:\nb: 2\n",  # an empty value (ruamel places it where the next token starts)
    "? [a, b]\n: c\n",  # a complex key
    "a: .inf\n",  # refused by the exact-float rule
    "a: [1, 2\n",  # broken
    "",  # empty
])
def test_anything_unusual_is_left_to_ruamel(text: str) -> None:
    from kinerja_rules.loader import _UNUSUAL, SourceFile, _fast_load

    assert _fast_load(SourceFile("t.yaml", text)) is _UNUSUAL


def test_deep_or_huge_documents_are_refused_at_once() -> None:
    from kinerja_rules.loader import MAX_DEPTH, MAX_NODES

    for text, message in (("a: " + "[" * 100_000 + "]" * 100_000 + "\n", f"deeper than {MAX_DEPTH}"),
                          ("a: [" + "1," * (MAX_NODES + 10) + "1]\n", f"more than {MAX_NODES} nodes"),
                          ("x: 1\n" + "a:\n" + "".join("  " * i + "- x\n" for i in range(1, 3)) + "b: " +
                           "{c: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1) + "\n", f"deeper than {MAX_DEPTH}")):
        with pytest.raises(PolicyError, match=message) as err:
            load_text(text, "t.yaml")
        assert err.value.diagnostics[0].span.line in (1, 5)
    shallow = "a: " + "{c: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1) + "\n"  # the ruamel walk says the same
    from kinerja_rules.loader import SourceFile, _Walker, _yaml

    with pytest.raises(PolicyError) as walked:
        _Walker(SourceFile("t.yaml", shallow)).walk(_yaml().load(shallow), ())
    with pytest.raises(PolicyError) as fast:
        load_text(shallow, "t.yaml")
    assert fast.value.diagnostics == walked.value.diagnostics
