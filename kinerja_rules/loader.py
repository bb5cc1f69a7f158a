"""Read policy YAML into plain data, remembering where every node came from.

ruamel.yaml keeps line and column marks; we walk its tree once into plain Python data
(dict, list, str, int, Decimal, date, bool, None) and a side table from each node's
path to its place, so later stages report `file:line:col` without holding ruamel
objects. Floats load as exact Decimals. The walk has a node budget, so an alias bomb
is a diagnostic instead of a hang.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from kinerja_rules.errors import Diagnostic, PolicyError, Span
from kinerja_rules.numbers import RANGE_MESSAGE, in_range

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


class SourceFile:
    """One loaded YAML file: its data and the place of every node in it."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.lines = text.splitlines()
        self.data: Any = None
        self._key_pos: dict[Path_, tuple[int, int]] = {}
        self._value_pos: dict[Path_, tuple[int, int]] = {}
        self._block: set[Path_] = set()
        self._quoted: set[Path_] = set()

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def span_at(self, line: int, column: int, width: int = 1) -> Span:
        return Span(
            file=self.name,
            line=line,
            column=column,
            end_line=line,
            end_column=column + max(width, 1),
            text=self.line_text(line),
        )

    def key_span(self, path: Path_) -> Span:
        """The span of the key naming `path` (or of its value, or nearest ancestor)."""
        pos = self._key_pos.get(path) or self._value_pos.get(path)
        while pos is None and path:
            path = path[:-1]
            pos = self._key_pos.get(path) or self._value_pos.get(path)
        line, col = pos or (1, 1)
        width = len(str(path[-1])) if path and isinstance(path[-1], str) else 1
        return self.span_at(line, col, width)

    def value_span(self, path: Path_) -> Span:
        pos = self._value_pos.get(path)
        if pos is None:
            return self.key_span(path)
        line, col = pos
        text = self.line_text(line)
        width = len(text) - (col - 1) if text else 1
        return self.span_at(line, col, width)

    def expression_span(self, path: Path_, line: int, column: int, width: int = 1) -> Span:
        """Map a (1-based) place inside an expression string at `path` to the file."""
        pos = self._value_pos.get(path)
        if pos is None:
            return self.key_span(path)
        vline, vcol = pos
        if path in self._block:
            first = self.line_text(vline + 1)
            indent = len(first) - len(first.lstrip(" "))
            return self.span_at(vline + line, indent + column, width)
        if line == 1:
            shift = 1 if path in self._quoted else 0
            return self.span_at(vline, vcol + shift + column - 1, width)
        return self.span_at(vline, vcol)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.preserve_quotes = True

    def exact_float(constructor: Any, node: Any) -> Decimal:
        raw = str(node.value).replace("_", "")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite():
            raise YAMLError(f"{raw!r} is not a finite number (line {node.start_mark.line + 1})")
        if not in_range(value):
            raise YAMLError(f"{raw!r} {RANGE_MESSAGE} (line {node.start_mark.line + 1})")
        return value

    yaml.constructor.add_constructor("tag:yaml.org,2002:float", exact_float)
    return yaml


def load_text(text: str, name: str) -> SourceFile:
    """Parse YAML text into a SourceFile, or raise PolicyError with the YAML problem."""
    source = SourceFile(name, text)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PolicyError(
            [Diagnostic(code="E001", message=f"file is larger than {MAX_FILE_BYTES} bytes",
                        span=source.span_at(1, 1))]
        )
    try:
        tree = _yaml().load(text)
    except DuplicateKeyError as exc:
        raise PolicyError([_yaml_diag(source, exc, "E003", "duplicate key")]) from None
    except MarkedYAMLError as exc:
        raise PolicyError([_yaml_diag(source, exc, "E002", "invalid YAML")]) from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise PolicyError(
            [Diagnostic(code="E002", message=f"invalid YAML: {exc}", span=source.span_at(1, 1))]
        ) from None
    walker = _Walker(source)
    source.data = walker.walk(tree, ())
    return source


def load_file(path: Path) -> SourceFile:
    """Read and parse one policy file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicyError(
                [Diagnostic(code="E001", message=f"file is larger than {MAX_FILE_BYTES} bytes",
                            span=Span(file=str(path), line=1, column=1))]
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(
            [Diagnostic(code="E000", message=f"cannot read file: {exc}",
                        span=Span(file=str(path), line=1, column=1))]
        ) from None
    return load_text(text, str(path))


def _yaml_diag(source: SourceFile, exc: MarkedYAMLError, code: str, what: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or str(exc)
    span = source.span_at(mark.line + 1, mark.column + 1) if mark is not None else None
    return Diagnostic(code=code, message=f"{what}: {problem}".strip(), span=span)


class _Walker:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.budget = MAX_NODES
        self.active: set[int] = set()

    def _spend(self, path: Path_) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise PolicyError(
                [Diagnostic(code="E004",
                            message=f"document expands to more than {MAX_NODES} nodes "
                                    "(too large, or an alias bomb)",
                            span=self.source.key_span(path))]
            )
        if len(path) > MAX_DEPTH:
            raise PolicyError(
                [Diagnostic(code="E004", message=f"document nests deeper than {MAX_DEPTH} levels",
                            span=self.source.key_span(path))]
            )

    def walk(self, node: Any, path: Path_) -> Any:
        self._spend(path)
        if isinstance(node, CommentedMap):
            return self._mapping(node, path)
        if isinstance(node, CommentedSeq):
            return self._sequence(node, path)
        return _scalar(node)

    def _enter(self, node: Any, path: Path_) -> None:
        if id(node) in self.active:
            raise PolicyError(
                [Diagnostic(code="E004", message="recursive alias", span=self.source.key_span(path))]
            )
        self.active.add(id(node))

    def _mapping(self, node: CommentedMap, path: Path_) -> dict[Any, Any]:
        self._enter(node, path)
        out: dict[Any, Any] = {}
        for key, value in node.items():
            k = _scalar(key)
            if isinstance(k, (dict, list)) or k is None:
                raise PolicyError(
                    [Diagnostic(code="E005", message="mapping keys must be plain values",
                                span=self.source.key_span(path))]
                )
            sk = k.isoformat() if isinstance(k, dt.date) else str(k) if not isinstance(k, str) else k
            child = (*path, sk)
            try:
                kl, kc = node.lc.key(key)
                self.source._key_pos[child] = (kl + 1, kc + 1)
                vl, vc = node.lc.value(key)
                self.source._value_pos[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            self._style(value, child)
            out[sk] = self.walk(value, child)
        self.active.discard(id(node))
        return out

    def _sequence(self, node: CommentedSeq, path: Path_) -> list[Any]:
        self._enter(node, path)
        out = []
        for i, value in enumerate(node):
            child = (*path, i)
            try:
                line, col = node.lc.item(i)
                self.source._value_pos[child] = (line + 1, col + 1)
                self.source._key_pos.setdefault(child, (line + 1, col + 1))
            except (KeyError, TypeError, AttributeError):
                pass
            self._style(value, child)
            out.append(self.walk(value, child))
        self.active.discard(id(node))
        return out

    def _style(self, value: Any, path: Path_) -> None:
        if isinstance(value, LiteralScalarString):
            self.source._block.add(path)
        elif isinstance(value, str) and type(value) is not str and getattr(value, "style", None) in ("'", '"'):
            self.source._quoted.add(path)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, Decimal)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() and value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, str):
        return str(value)
    return value


def iter_policy_files(root: Path) -> Iterator[Path]:
    """Yield the YAML files of a folder, recursively, in a stable order."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            yield path
