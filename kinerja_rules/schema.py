"""Input schemas: the record a policy accepts, as types, validators and JSON Schema.

A validator normalises as it checks (numbers of decimal kinds become Decimal, dates
become `date`, absent optionals become None, defaults fill in) and collects every bad
field path instead of stopping at the first.
"""

from __future__ import annotations

import datetime as dt
import re
import re._parser as _sre  # type: ignore[import-not-found]  # the parse tree of Python's own engine
import warnings
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import msgspec
import re2

from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean, near_miss
from kinerja_rules.documents import FieldSpec
from kinerja_rules.errors import FieldError
from kinerja_rules.numbers import MAX_EXPONENT, RANGE_MESSAGE, in_range
from kinerja_rules.types import Kind, Type

MAX_LIST_ITEMS = 10_000
LIMIT = 10 ** (MAX_EXPONENT + 1)  # a whole number in a record is smaller than this in magnitude
Validator = Callable[[Any, str, list[FieldError]], Any]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # shown as is in a path; any other key is quoted
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # JSON Schema's `format: date` (RFC 3339 full-date)
_MISSING = object()


MAX_UNKNOWN_FIELDS = 500  # unknown keys one object may hold: each is compared with every declared name


class UnknownField(FieldError, frozen=True, kw_only=True):
    """A key the policy does not declare, with the declared name it is a near miss of (if any).

    Validators report these with the errors; the policy's `unknown_fields` rule then makes each an
    error, a warning or nothing (`evaluation.intake.check_record`).
    """

    near: str | None = None  # the path of the declared field it is a near miss of


UNKNOWN_FIELDS = ("warn", "error", "ignore")
MAX_WARNINGS = 100  # a decision lists this many unknown fields, then how many more there were


def judge_unknown(errors: list[FieldError], mode: str) -> tuple[list[FieldError], list[FieldError]]:
    """Split a validator's findings into errors and warnings by the `unknown_fields` rule:
    a near miss of a declared field is an error unless `ignore`; any other unknown field is a
    warning under `warn`, an error under `error`, nothing under `ignore`."""
    real: list[FieldError] = []
    warnings: list[FieldError] = []
    for found in errors:
        if type(found) is not UnknownField:
            real.append(found)
        elif mode == "ignore":
            continue
        elif found.near is not None:
            real.append(FieldError(path=found.path, message=f"is not a field of this record; did you mean "
                                   f"{found.near!r}?"))
        elif mode == "error":
            real.append(FieldError(path=found.path, message="is not a field of this record (unknown_fields: error)"))
        else:
            warnings.append(FieldError(path=found.path, message="is not a field of this record; it was not read"))
    if len(warnings) > MAX_WARNINGS:
        more = len(warnings) - MAX_WARNINGS
        warnings = warnings[:MAX_WARNINGS] + [FieldError(path="", message=f"and {more} more unknown fields")]
    return real, warnings


class SchemaProblem(ValueError):
    def __init__(self, message: str, key: str = "type") -> None:
        super().__init__(message)
        self.key = key


class Field(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved input field: its type, its constraints and its sub-fields."""

    type: Type
    spec: FieldSpec
    fields: tuple[tuple[str, Field], ...] = ()
    items: Field | None = None
    pattern: Pattern | None = None


def resolve_field(spec: FieldSpec, named: dict[str, Field]) -> Field:
    """Resolve an input's spec against the named types into a Field (its type and constraints).

    The written type is read by `types.parse_type`, like every other type; only the spelled-out
    forms of an input (`type: enum` with `values`, `type: record` with `fields`, `type: list`
    with `items`) are read here, because their parts carry constraints of their own.
    """
    words = spec.type.split()
    optional = bool(words) and words[0] == "optional"
    base = words[1:] if optional else words
    if base == ["list"]:
        if spec.items is None:
            raise SchemaProblem("a 'list' needs 'items' (or write 'list of T')")
        item = resolve_field(spec.items, named)
        field = Field(type=t.list_of(item.type), spec=spec, items=item)
    elif base == ["enum"] and spec.values is not None:
        if not spec.values:
            raise SchemaProblem("an 'enum' needs 'values'", "values")
        field = Field(type=Type(kind=Kind.ENUM, values=tuple(spec.values)), spec=spec)
    elif base == ["record"] and spec.fields is not None:
        subs = tuple((name, resolve_field(sub, named)) for name, sub in spec.fields.items())
        field = Field(type=Type(kind=Kind.RECORD, fields=tuple((k, f.type) for k, f in subs)), spec=spec, fields=subs)
    else:
        try:
            written = t.parse_type(" ".join(base), {name: f.type for name, f in named.items()})
        except t.TypeSyntaxError as exc:
            key = "values" if base == ["enum"] else "fields" if base == ["record"] else "type"
            raise SchemaProblem(str(exc), key) from None
        field = msgspec.structs.replace(field_of(written, named), spec=spec)
    _check_constraints(field)
    pattern = compile_pattern(spec.pattern) if spec.pattern is not None else None
    if optional or spec.default is not msgspec.UNSET and spec.default is None:
        field = msgspec.structs.replace(field, type=field.type.maybe())
    return msgspec.structs.replace(field, pattern=pattern)


class Pattern(Protocol):
    """A compiled `pattern:` that matches in time linear in the text, whatever the pattern."""

    @property
    def pattern(self) -> str: ...

    def fullmatch(self, text: str, /) -> object | None: ...


MAX_PATTERN_CHARS = 1000
_RE2 = re2.Options()
_RE2.log_errors = False  # the error is the author's diagnostic, not a line on standard error
_RE2.max_mem = 1 << 20  # a pattern that needs more to compile is refused as too large


def compile_pattern(text: str) -> Pattern:
    """Compile a policy's `pattern:` so that a match takes time linear in the text, whatever the
    pattern: Python's backtracking engine took 1.7 s per match of `(a+)+$` on 24 × a then !.

    Every pattern must be RE2 syntax (no backreferences, no lookaround) that ECMA-262, the dialect
    of the published JSON Schema, reads alike (`_outside_common`). One whose repeats are
    all bounded and none inside another repeat or an alternative's repeat (`[0-9]{18}`,
    `[0-9]{4}-(0[1-9]|1[0-2])`) cannot backtrack far, and matches with Python's engine in
    ASCII mode (RE2's meaning of `\\d`, `\\w`, `\\s`) at a twentieth of the cost of a call into
    RE2; any other runs on RE2.
    """
    if len(text) > MAX_PATTERN_CHARS:
        raise SchemaProblem(f"pattern is longer than {MAX_PATTERN_CHARS} characters", "pattern")
    try:
        compiled: Pattern = re2.compile(text, options=_RE2)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise SchemaProblem(f"invalid pattern: {reason} (patterns are RE2 syntax: no backreferences or "
                            "lookaround)", "pattern") from None
    try:
        with warnings.catch_warnings():  # "possible nested set": the check below names it
            warnings.simplefilter("ignore")
            tree = _sre.parse(text, re.ASCII)
    except re.error:
        tree = None
    reason = "" if tree is None else _outside_common(tree, text)
    if tree is None or reason:
        raise SchemaProblem(f"pattern uses {reason or 'syntax'} that JSON Schema (ECMA-262) and the server's "
                            "engine read differently; patterns are written in what both read alike: literals, "
                            "[classes], \\d, \\w, \\b, ^, $, groups (?:…), | and repeats", "pattern")
    return re.compile(text, re.ASCII) if _bounded(tree, inside=False) else compiled


_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
_LEAVES = {_sre.LITERAL, _sre.NOT_LITERAL, _sre.IN, _sre.ANY, _sre.AT, _sre.CATEGORY}


_SAME_AT = {_sre.AT_BEGINNING, _sre.AT_END, _sre.AT_BOUNDARY, _sre.AT_NON_BOUNDARY}
_SAME_CATEGORY = {_sre.CATEGORY_DIGIT, _sre.CATEGORY_NOT_DIGIT, _sre.CATEGORY_WORD, _sre.CATEGORY_NOT_WORD}
_GLOBAL_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


def _outside_common(tree: Any, text: str) -> str:
    """What in a parsed pattern ECMA-262 (a published schema's dialect) and RE2 read differently, or ''.

    `.` (ECMA stops at \\r too), `\\s` (ECMA takes \\v and Unicode spaces), `\\A`/`\\Z`, inline
    flags, named groups and `{,n}` (a repeat in one, literal text in the other) are refused with
    what to write instead.
    """
    if tree.state.flags & _GLOBAL_FLAGS:
        return "inline flags such as (?i)"
    if tree.state.groupdict:
        return "named groups (write (…) or (?:…))"
    if re.search(r"(?<!\\)\{,", text):
        return "'{,n}' (write {0,n})"
    if "[:" in text:
        return "'[:' (a POSIX class in one, literal text in the other; escape it as [\\:])"
    return _outside_tree(tree)


def _outside_tree(tree: Any) -> str:  # noqa: C901
    for op, arg in tree:
        if op is _sre.ANY:
            return "'.' (write [^\\n] for any character but a newline)"
        if op is _sre.AT and arg not in _SAME_AT:
            return "\\A or \\Z (write ^ and $)"
        if op is _sre.IN:
            for inner_op, inner in arg:
                if inner_op is _sre.CATEGORY and inner not in _SAME_CATEGORY:
                    return "\\s (write [ \\t\\n\\r] or the spaces meant)"
        if op is _sre.CATEGORY and arg not in _SAME_CATEGORY:
            return "\\s (write [ \\t\\n\\r] or the spaces meant)"
        if op is _sre.SUBPATTERN:
            if arg[1] or arg[2]:
                return "inline flags such as (?i:…)"
            found = _outside_tree(arg[3])
        elif op in _REPEATS:
            found = _outside_tree(arg[2])
        elif op is _sre.BRANCH:
            found = next((f for f in (_outside_tree(b) for b in arg[1]) if f), "")
        else:
            found = ""
        if found:
            return found
    return ""


def _bounded(tree: Any, inside: bool) -> bool:
    """Whether every repeat of a parsed pattern is bounded (at most 100) and holds no repeat or alternative."""
    for op, arg in tree:
        if op in _REPEATS:
            low, high, sub = arg
            if inside or high > 100 or not _bounded(sub, inside=True):
                return False
        elif op is _sre.SUBPATTERN:
            if not _bounded(arg[3], inside):
                return False
        elif op is _sre.BRANCH:
            if inside or not all(_bounded(branch, inside) for branch in arg[1]):
                return False
        elif op not in _LEAVES:
            return False
    return True


def field_of(kind: Type, named: dict[str, Field]) -> Field:
    """The Field of a type: a named type keeps the constraints it was declared with."""
    proto = named.get(kind.name) if kind.name else None
    if proto is not None and proto.type.kind == kind.kind:
        return Field(type=kind, spec=FieldSpec(type=kind.name), fields=proto.fields, items=proto.items)
    if kind.kind == Kind.LIST and kind.item is not None:
        return Field(type=kind, spec=FieldSpec(type=str(kind)), items=field_of(kind.item, named))
    if kind.kind == Kind.RECORD:
        return Field(type=kind, spec=FieldSpec(type=str(kind)),
                     fields=tuple((name, field_of(sub, named)) for name, sub in kind.fields))
    return Field(type=kind, spec=FieldSpec(type=str(kind)))


def _check_constraints(field: Field) -> None:
    spec, kind = field.spec, field.type.kind
    for key in ("min", "max", "greater_than", "less_than"):
        value = getattr(spec, key)
        if value is None:
            continue
        if kind not in t.NUMERIC:
            raise SchemaProblem(f"{key!r} applies to numbers, not {field.type}", key)
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise SchemaProblem(f"{key!r} must be a number", key)
    if spec.pattern is not None and kind != Kind.TEXT:
        raise SchemaProblem(f"'pattern' applies to text, not {field.type}", "pattern")
    if (spec.min_items is not None or spec.max_items is not None) and kind != Kind.LIST:
        raise SchemaProblem(f"'min_items'/'max_items' apply to lists, not {field.type}", "min_items")
    if spec.values is not None and kind != Kind.ENUM:
        raise SchemaProblem("'values' applies to 'enum'", "values")


# ---- validators -------------------------------------------------------------

def _number(kind: str) -> Callable[[Any], Any]:  # noqa: C901
    def integer(v: Any) -> Any:
        if type(v) is int:
            if not -LIMIT < v < LIMIT:
                raise ValueError(RANGE_MESSAGE)
            return v
        if isinstance(v, Decimal) and v.is_finite():
            if not in_range(v):  # before int(), which takes time quadratic in the digits
                raise ValueError(RANGE_MESSAGE)
            if v == v.to_integral_value():
                return int(v)
        if isinstance(v, float) and v.is_integer():
            return integer(int(v))
        raise ValueError("must be a whole number")

    def decimal(v: Any) -> Any:
        if type(v) is Decimal:
            if not v.is_finite():
                raise ValueError("must be a finite number")
            if not in_range(v):
                raise ValueError(RANGE_MESSAGE)
            return v
        if type(v) is int:
            if not -LIMIT < v < LIMIT:
                raise ValueError(RANGE_MESSAGE)
            return Decimal(v)
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError("must be a finite number")
            return decimal(Decimal(repr(v)))
        raise ValueError("must be a number")

    return integer if kind == Kind.INTEGER else decimal


def _fmt(v: Any) -> str:
    return str(v)


def build_validator(field: Field) -> Validator:
    """A function (value, path, errors) -> normalised value, appending FieldErrors."""
    spec = field.spec
    optional = field.type.optional
    has_default = spec.default is not msgspec.UNSET
    inner = _inner(field)

    def validate(value: Any, path: str, errors: list[FieldError]) -> Any:
        if value is _MISSING or value is None:
            if has_default and value is _MISSING or has_default and spec.default is not None and value is None:
                return inner(spec.default, path, errors) if spec.default is not None else None
            if optional:
                return None
            errors.append(FieldError(path=path, message="is required" if value is _MISSING else "must not be null"))
            return None
        return inner(value, path, errors)

    return validate


def _inner(field: Field) -> Validator:  # noqa: C901
    spec, kind = field.spec, field.type.kind
    if kind in t.NUMERIC:
        convert = _number(kind)
        bounds = [(b, op) for b, op in ((spec.min, ">="), (spec.max, "<="), (spec.greater_than, ">"),
                                        (spec.less_than, "<")) if b is not None]

        def number(value: Any, path: str, errors: list[FieldError]) -> Any:
            if isinstance(value, bool):
                errors.append(FieldError(path=path, message=f"must be a number, not {value!r}"))
                return None
            try:
                out = convert(value)
            except (ValueError, TypeError, InvalidOperation) as exc:
                errors.append(FieldError(path=path, message=f"{exc}, not {_show(value)}"))
                return None
            for bound, op in bounds:
                if not ((op == ">=" and out >= bound) or (op == "<=" and out <= bound)
                        or (op == ">" and out > bound) or (op == "<" and out < bound)):
                    errors.append(FieldError(path=path, message=f"must be {op} {_fmt(bound)}, not {_fmt(out)}"))
            return out

        return number
    if kind == Kind.BOOLEAN:
        def boolean(value: Any, path: str, errors: list[FieldError]) -> Any:
            if not isinstance(value, bool):
                errors.append(FieldError(path=path, message=f"must be true or false, not {_show(value)}"))
            return value
        return boolean
    if kind == Kind.TEXT:
        pattern = field.pattern

        def text(value: Any, path: str, errors: list[FieldError]) -> Any:
            if not isinstance(value, str):
                errors.append(FieldError(path=path, message=f"must be text, not {_show(value)}"))
            elif pattern is not None and not pattern.fullmatch(value):
                errors.append(FieldError(path=path, message=f"{_show(value)} does not match {pattern.pattern}"))
            return value
        return text
    if kind == Kind.ENUM:
        allowed = frozenset(field.type.values)
        values = field.type.values

        def enum(value: Any, path: str, errors: list[FieldError]) -> Any:
            if not isinstance(value, str) or value not in allowed:
                hint = did_you_mean(value, values) if isinstance(value, str) else ""
                errors.append(FieldError(path=path, message=f"must be one of {', '.join(values)}, not "
                                         f"{_show(value)}{hint}"))
            return value
        return enum
    if kind == Kind.DATE:
        def date(value: Any, path: str, errors: list[FieldError]) -> Any:
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                return value
            if isinstance(value, str) and DATE_TEXT.fullmatch(value):  # not the other forms fromisoformat reads
                try:
                    return dt.date.fromisoformat(value)
                except ValueError:
                    pass
            errors.append(FieldError(path=path, message=f"must be a date YYYY-MM-DD, not {_show(value)}"))
            return None
        return date
    if kind == Kind.LIST:
        assert field.items is not None
        item = build_validator(field.items)
        low = spec.min_items
        high = spec.max_items if spec.max_items is not None else MAX_LIST_ITEMS

        def listing(value: Any, path: str, errors: list[FieldError]) -> Any:
            if not isinstance(value, (list, tuple)):
                errors.append(FieldError(path=path, message=f"must be a list, not {_show(value)}"))
                return []
            if low is not None and len(value) < low:
                errors.append(FieldError(path=path, message=f"must have at least {low} item{'s' if low != 1 else ''}"))
            if len(value) > high:
                errors.append(FieldError(path=path, message=f"must have at most {high} items, not {len(value)}"))
                return []
            return [item(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
        return listing
    if kind == Kind.RECORD:
        subs = [(name, build_validator(sub)) for name, sub in field.fields]
        names = frozenset(name for name, _ in subs)

        def record(value: Any, path: str, errors: list[FieldError]) -> Any:
            if not isinstance(value, dict):
                errors.append(FieldError(path=path, message=f"must be an object, not {_show(value)}"))
                return {}
            prefix = f"{path}." if path else ""
            if not names.issuperset(value):
                _unknown(value, names, path, prefix, errors)
            get = value.get
            return {name: check(get(name, _MISSING), prefix + name, errors) for name, check in subs}
        return record
    if kind == Kind.ANY:  # a field whose declaration was wrong (already an error): its values are not judged again
        return _as_is
    raise AssertionError(kind)


def _unknown(value: dict[Any, Any], names: frozenset[str], path: str, prefix: str, errors: list[FieldError]) -> None:
    extra = [key for key in value if key not in names]
    if len(extra) > MAX_UNKNOWN_FIELDS:
        errors.append(FieldError(path=path, message=f"has {len(extra)} fields this policy does not declare; "
                                 f"at most {MAX_UNKNOWN_FIELDS} are taken"))
        return
    for key in extra:
        text = str(key)
        if _PLAIN_KEY.fullmatch(text):
            at = prefix + text
        else:  # a key that is not a plain name is shown quoted, so the path still reads as one
            quoted = msgspec.json.encode(text if len(text) <= 64 else text[:61] + "...").decode()
            at = f"{path}[{quoted}]"
        near = near_miss(text, names)
        errors.append(UnknownField(path=at, message="", near=None if near is None else prefix + near))


def _as_is(value: Any, path: str, errors: list[FieldError]) -> Any:
    return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int) and not isinstance(value, bool) and not -LIMIT < value < LIMIT:
        return "a number out of range"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "null"
    return str(value)[:40]


MISSING = _MISSING


# ---- JSON Schema --------------------------------------------------------------

def json_schema(field: Field, closed: bool = False) -> dict[str, Any]:  # noqa: C901
    """The JSON Schema (2020-12 vocabulary) of a field, for API clients; `closed` objects take no
    key they do not declare (`unknown_fields: error`)."""
    spec, kind = field.spec, field.type.kind
    out: dict[str, Any]
    if kind == Kind.INTEGER:
        out = {"type": "integer"}
    elif kind == Kind.PERCENT:  # a fraction: 60 % is 0.6 (JSON Schema ignores a format it does not know)
        out = {"type": "number", "format": "percent"}
    elif kind in (Kind.DECIMAL, Kind.MONEY):
        out = {"type": "number"}
    elif kind == Kind.BOOLEAN:
        out = {"type": "boolean"}
    elif kind == Kind.TEXT:
        out = {"type": "string"}
        if spec.pattern:  # the server matches the whole text: JSON Schema's pattern is unanchored, and a
            # Python validator's `$` also matches before a final newline, so the end is "nothing follows"
            out["pattern"] = f"^(?:{spec.pattern})(?![\\s\\S])"
    elif kind == Kind.DATE:
        out = {"type": "string", "format": "date"}
    elif kind == Kind.ENUM:
        out = {"type": "string", "enum": list(field.type.values)}
    elif kind == Kind.LIST:
        assert field.items is not None
        out = {"type": "array", "items": json_schema(field.items, closed)}
        if spec.min_items is not None:
            out["minItems"] = spec.min_items
        out["maxItems"] = spec.max_items if spec.max_items is not None else MAX_LIST_ITEMS
    else:
        props = {name: json_schema(sub, closed) for name, sub in field.fields}
        required = [name for name, sub in field.fields
                    if not sub.type.optional and sub.spec.default is msgspec.UNSET]
        out = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        if closed:
            out["additionalProperties"] = False
    for key, target in (("min", "minimum"), ("max", "maximum"), ("greater_than", "exclusiveMinimum"),
                        ("less_than", "exclusiveMaximum")):
        value = getattr(spec, key)
        if value is not None:
            out[target] = value
    if kind in t.NUMERIC:  # the range every number of a record keeps to, where the field sets no tighter bound
        if spec.min is None and spec.greater_than is None:
            out["exclusiveMinimum"] = -LIMIT
        if spec.max is None and spec.less_than is None:
            out["exclusiveMaximum"] = LIMIT
    if spec.doc:
        out["description"] = spec.doc
    if spec.default is not msgspec.UNSET:
        out["default"] = spec.default
    if field.type.optional or spec.default is not msgspec.UNSET:  # null stands for absent where a default fills in
        out = {"anyOf": [out, {"type": "null"}]}
    return out
