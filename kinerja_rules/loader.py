"""Read policy YAML into plain data, remembering where every node came from.

ruamel.yaml keeps line and column marks; we walk its tree once into plain Python data
(dict, list, str, int, Decimal, date, bool, None) and a side table from each node's
path to its place, so later stages report `file:line:col` without holding ruamel
objects. Floats load as exact Decimals. The walk has a node budget, so an alias bomb
is a diagnostic instead of a hang.

A plain file (no anchors, tags, directives or merge keys, each key once, within the
budgets) is read a faster way first: libyaml's parser, in C, gives the events with their
marks, and each plain scalar is resolved and built by ruamel's own YAML 1.2 rules, so the
data and the places are those of the walk above. Anything else, and every error, is left
to ruamel, whose messages name the problem; but a document over the node or depth budget is
refused at once (ruamel takes seconds over a thousand nested brackets).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode as RScalarNode
from ruamel.yaml.resolver import VersionedResolver
from yaml import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml import MarkedYAMLError as MarkedError

try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: every file is read by the ruamel walk
    CParser = None
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
    fast = _fast_load(source)
    if fast is not _UNUSUAL:
        source.data = fast
        return source
    for table in (source._key_pos, source._value_pos, source._block, source._quoted):
        table.clear()  # what the fast path noted before it left the file to ruamel
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


_UNUSUAL: Any = object()
_SCALAR_EVENTS = frozenset({"tag:yaml.org,2002:str"})


_Events: Any = None
if CParser is not None:
    class _LibYaml(CParser):  # type: ignore[misc]
        """libyaml's event parser; tags are left unresolved (ruamel's rules resolve plain scalars)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> None:
            return None

    _Events = _LibYaml


_RULES = {first: tuple((tag, regexp.match) for tag, regexp in rules)  # ruamel's YAML 1.2 rules, by first character
          for first, rules in VersionedResolver(version=(1, 2)).versioned_resolver.items()}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _plain(text: str) -> Any:
    """A plain scalar as ruamel's YAML 1.2 rules and its constructors (with `exact_float`) build it."""
    tag = next((tag for tag, match in _RULES.get(text[0], ()) if match(text)), None)
    if tag is None:
        return text
    if tag == "tag:yaml.org,2002:int":  # as ruamel's construct_yaml_int reads YAML 1.2
        digits = text.replace("_", "")
        sign = -1 if digits[0] == "-" else 1
        digits = digits[1:] if digits[0] in "+-" else digits
        base = {"0b": 2, "0x": 16, "0o": 8}.get(digits[:2])
        return sign * (int(digits) if base is None else int(digits[2:], base))
    if tag == "tag:yaml.org,2002:float":
        value = Decimal(text.replace("_", ""))
        if not value.is_finite() or not in_range(value):
            raise ValueError(text)  # ruamel's walk gives the error
        return value
    if tag == "tag:yaml.org,2002:bool":
        return text.lower() == "true"
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == _TIMESTAMP:
        return _scalar(_yaml().constructor.construct_object(RScalarNode(_TIMESTAMP, text), deep=True))
    raise ValueError(text)  # a merge key, `=`, or a YAML indicator: ruamel's walk reads it


def _fast_load(source: SourceFile) -> Any:
    """The data of a plain YAML file read from libyaml's events (places noted in `source`),
    or _UNUSUAL for a file the ruamel walk must read (see the module's note); raises PolicyError
    for a document over the node or depth budget."""
    if _Events is None:
        return _UNUSUAL
    try:
        return _from_events(source, _Events(source.text))
    except PolicyError:
        raise
    except MarkedError as exc:
        mark = exc.problem_mark
        if "maximum nesting depth" in str(exc.problem) and mark is not None:  # libyaml's limit (1000) is far past ours
            raise PolicyError([Diagnostic(code="E004", message=f"document nests deeper than {MAX_DEPTH} levels",
                                          span=source.span_at(mark.line + 1, mark.column + 1))]) from None
        return _UNUSUAL
    except Exception:  # any other problem: ruamel reads the file and names it
        return _UNUSUAL


def _from_events(source: SourceFile, parser: Any) -> Any:  # noqa: C901
    key_pos, value_pos = source._key_pos, source._value_pos
    budget = MAX_NODES
    # each open collection: its data, its path, a map's pending key and its mark (or None), its keys as built
    stack: list[list[Any]] = []
    root: Any = _UNUSUAL
    documents = 0
    while True:
        event = parser.get_event()
        kind = type(event)
        if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                return _UNUSUAL
            mark = event.start_mark
            top = stack[-1] if stack else None
            if kind is ScalarEvent:
                style = event.style
                if style:
                    value: Any = event.value
                elif not event.value:  # ruamel places an empty value where the next token starts
                    return _UNUSUAL
                else:
                    value = _plain(event.value)
                if top is not None and top[2] is None and type(top[0]) is dict:  # a key
                    if value is None or value == "<<" and not style:
                        return _UNUSUAL
                    key = value.isoformat() if isinstance(value, dt.date) else \
                        str(value) if not isinstance(value, str) else value
                    if key in top[0] or value in top[3]:  # ruamel compares keys as built (1 == true)
                        return _UNUSUAL
                    top[3].add(value)
                    top[2] = (key, mark)
                    continue
            else:
                value = {} if kind is MappingStartEvent else []
                style = None
            budget -= 1
            if top is None:
                path: Path_ = ()
            elif type(top[0]) is dict:
                key, key_mark = top[2]
                path = (*top[1], key)
                key_pos[path] = (key_mark.line + 1, key_mark.column + 1)
                value_pos[path] = (mark.line + 1, mark.column + 1)
                top[0][key] = value
                top[2] = None
            else:
                path = (*top[1], len(top[0]))
                value_pos[path] = key_pos[path] = (mark.line + 1, mark.column + 1)
                top[0].append(value)
            _within_budgets(source, budget, path)  # found here, before ruamel would spend seconds on it
            if top is None:
                pass  # the walk notes the style of values within the document only
            elif style == "|":
                source._block.add(path)
            elif style == "'" or style == '"':
                source._quoted.add(path)
            if kind is not ScalarEvent:
                stack.append([value, path, None, set()])
            if top is None:
                root = value
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            stack.pop()
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1 or event.version is not None or event.tags:
                return _UNUSUAL
        elif kind is StreamEndEvent:
            return root
        elif kind is not StreamStartEvent and kind is not DocumentEndEvent:
            return _UNUSUAL  # an alias


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


def _within_budgets(source: SourceFile, budget: int, path: Path_) -> None:
    """Raise the diagnostic of a document that has spent its node budget, or nests too deeply at `path`."""
    if budget < 0:
        raise PolicyError([Diagnostic(code="E004", message=f"document expands to more than {MAX_NODES} nodes "
                                      "(too large, or an alias bomb)", span=source.key_span(path))])
    if len(path) > MAX_DEPTH:
        raise PolicyError([Diagnostic(code="E004", message=f"document nests deeper than {MAX_DEPTH} levels",
                                      span=source.key_span(path))])


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
        _within_budgets(self.source, self.budget, path)

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
