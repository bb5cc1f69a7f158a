"""A generated fast path for record validation.

It accepts only records that are plainly valid and normalises them in one pass of
straight-line code; anything unusual (a wrong type, a bound missed, a value needing
conversion) makes it give up, and the path-collecting validator in `schema` decides,
so every error is still reported with its path. The code is built as `ast` from the
fixed templates below; policy values enter only as constants in the namespace.

Two fast paths share these templates: `build_fast_validator` checks a decoded record, and
`build_typed_decoder` reads a record straight from its JSON text with a msgspec decoder whose
types come from the schema, so most of the checking happens in C.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from kinerja_rules.compiler import _function_def
from kinerja_rules.numbers import MAX_EXPONENT
from kinerja_rules.schema import DATE_TEXT, LIMIT, MAX_LIST_ITEMS, Field
from kinerja_rules.types import Kind


class GiveUp(Exception):
    """The fast path cannot decide; the full validator will."""


class _Sub(ast.NodeTransformer):
    def __init__(self, names: dict[str, Any]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> Any:
        value = self.names.get(node.id)
        if value is None:
            return node
        if isinstance(value, str):
            return ast.copy_location(ast.Name(id=value, ctx=node.ctx), node)
        return ast.copy_location(value, node)


def _stmts(code: str, **names: Any) -> list[ast.stmt]:
    """The statements of a fixed template, with `names` put in; parsed afresh (in C, faster than a copy)."""
    return [_Sub(names).visit(s) for s in ast.parse(code).body]


class _Build:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.ns: dict[str, Any] = {"GiveUp": GiveUp, "D": Decimal, "date_type": dt.date,
                                   "fromiso": dt.date.fromisoformat, "__builtins__": {"type": type, "len": len,
                                   "int": int, "str": str, "dict": dict, "list": list, "bool": bool}}
        self.count = 0
        self.functions: list[ast.stmt] = []

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, value: Any) -> str:
        key = self.name("k")
        self.ns[key] = value
        return key

    def field(self, field: Field, src: ast.expr, out: str) -> list[ast.stmt]:
        """Statements that check `src` and leave its normalised value in `out`."""
        spec = field.spec
        body = _stmts("OUT = SRC", OUT=out, SRC=src)
        if spec.default is not msgspec.UNSET and spec.default is not None:
            default = self.default(field)
            body += _stmts("if OUT is None:\n    OUT = DEFAULT()", OUT=out, DEFAULT=default)
            return body + self.value(field, out)
        checks = self.value(field, out)
        if field.type.optional:
            return body + [ast.If(test=_stmts("OUT is not None", OUT=out)[0].value,  # type: ignore[attr-defined]
                                  body=checks, orelse=[])]
        return body + _stmts("if OUT is None:\n    raise GiveUp", OUT=out) + checks

    def default(self, field: Field) -> str:
        from kinerja_rules.schema import build_validator

        errors: list[Any] = []
        value = build_validator(msgspec.structs.replace(field, spec=msgspec.structs.replace(
            field.spec, default=msgspec.UNSET)))(field.spec.default, "", errors)
        if value == [] and type(value) is list:
            return self.const(list)
        mutable = isinstance(value, (list, dict))
        return self.const((lambda v=value: _copied(v)) if mutable else (lambda v=value: v))

    def value(self, field: Field, out: str) -> list[ast.stmt]:
        spec, kind = field.spec, field.type.kind
        if kind == Kind.INTEGER:
            body = _stmts("if type(OUT) is not int or not -LIMIT < OUT < LIMIT:\n    raise GiveUp", OUT=out,
                          LIMIT=ast.Constant(LIMIT))
            return body + self.bounds(field, out)
        if kind in (Kind.DECIMAL, Kind.PERCENT, Kind.MONEY):
            body = _stmts("if type(OUT) is int and -LIMIT < OUT < LIMIT:\n    OUT = D(OUT)\n"
                          "elif type(OUT) is not D or not OUT.is_finite() or OUT and not LOW <= OUT.adjusted() <= HIGH:"
                          "\n    raise GiveUp", OUT=out, LOW=ast.Constant(-MAX_EXPONENT),
                          HIGH=ast.Constant(MAX_EXPONENT),
                          LIMIT=ast.Constant(LIMIT))
            return body + self.bounds(field, out)
        if kind == Kind.BOOLEAN:
            return _stmts("if type(OUT) is not bool:\n    raise GiveUp", OUT=out)
        if kind == Kind.TEXT:
            body = _stmts("if type(OUT) is not str:\n    raise GiveUp", OUT=out)
            if field.pattern is not None:
                body += _stmts("if PAT(OUT) is None:\n    raise GiveUp", OUT=out,
                               PAT=self.const(field.pattern.fullmatch))
            return body
        if kind == Kind.ENUM:
            return _stmts("if type(OUT) is not str or OUT not in VALUES:\n    raise GiveUp", OUT=out,
                          VALUES=self.const(frozenset(field.type.values)))
        if kind == Kind.DATE:
            return _stmts("if type(OUT) is str and len(OUT) == 10 and DATE(OUT):\n    OUT = fromiso(OUT)\n"
                          "elif type(OUT) is not date_type:\n    raise GiveUp", OUT=out,
                          DATE=self.const(DATE_TEXT.fullmatch))
        if kind == Kind.LIST:
            assert field.items is not None
            item_fn = self.function(field.items)
            low = spec.min_items or 0
            high = spec.max_items if spec.max_items is not None else MAX_LIST_ITEMS
            return _stmts("if type(OUT) is not list or not LOW <= len(OUT) <= HIGH:\n    raise GiveUp\n"
                          "OUT = [ITEM(e) for e in OUT]", OUT=out, LOW=ast.Constant(low), HIGH=ast.Constant(high),
                          ITEM=item_fn)
        assert kind == Kind.RECORD
        get = self.name("g")
        body = _stmts("if type(OUT) is not dict:\n    raise GiveUp\nGET = OUT.get", OUT=out, GET=get)
        if self.strict:  # a key the policy does not declare is the full validator's to judge
            body += _stmts("if not NAMES.issuperset(OUT):\n    raise GiveUp", OUT=out,
                           NAMES=self.const(frozenset(name for name, _ in field.fields)))
        keys, values = [], []
        for name, sub in field.fields:
            local = self.name("v")
            call = _stmts("GET(KEY)", GET=get, KEY=ast.Constant(name))[0].value  # type: ignore[attr-defined]
            body += self.field(sub, call, local)
            keys.append(ast.Constant(name))
            values.append(ast.Name(id=local, ctx=ast.Load()))
        body.append(ast.Assign(targets=[ast.Name(id=out, ctx=ast.Store())],
                               value=ast.Dict(keys=list[ast.expr | None](keys), values=list[ast.expr](values))))
        return body

    def bounds(self, field: Field, out: str) -> list[ast.stmt]:
        spec = field.spec
        body: list[ast.stmt] = []
        for bound, template in ((spec.min, "if OUT < B:\n    raise GiveUp"),
                                (spec.max, "if OUT > B:\n    raise GiveUp"),
                                (spec.greater_than, "if OUT <= B:\n    raise GiveUp"),
                                (spec.less_than, "if OUT >= B:\n    raise GiveUp")):
            if bound is not None:
                body += _stmts(template, OUT=out, B=self.const(bound))
        return body

    def function(self, field: Field) -> str:
        name = self.name("item")
        body = self.value(field, "x")
        if field.type.optional:
            body = [ast.If(test=_stmts("x is not None")[0].value, body=body, orelse=[])]  # type: ignore[attr-defined]
        else:
            body = _stmts("if x is None:\n    raise GiveUp") + body
        body += _stmts("return x")
        self.functions.append(_function_def(
            name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="x")], kwonlyargs=[], kw_defaults=[],
                                          defaults=[]), body=body, decorator_list=[], returns=None))
        return name


def _copied(value: Any) -> Any:
    """A fresh copy of a default made of lists, dicts and immutable values (what a record holds)."""
    if type(value) is list:
        return [_copied(v) for v in value]
    if type(value) is dict:
        return {k: _copied(v) for k, v in value.items()}
    return value


def build_fast_validator(root: Field, strict: bool = True) -> Callable[[Any], dict[str, Any]]:
    """A function record -> normalised record that raises GiveUp on anything but a clean record;
    `strict` counts a key no field declares as unclean (it is ignored otherwise)."""
    builder = _Build(strict)
    return _function(builder, builder.value(root, "r"), "<record validator>")


def _function(builder: _Build, body: list[ast.stmt], filename: str) -> Callable[[Any], Any]:
    """The function `r -> r` running `body` (and the item functions the builder made)."""
    fn = _function_def(name="run", args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="r")], kwonlyargs=[],
                                                        kw_defaults=[], defaults=[]),
                       body=body + _stmts("return r"), decorator_list=[], returns=None)
    module = ast.Module(body=[*builder.functions, fn], type_ignores=[])
    ast.fix_missing_locations(module)
    exec(compile(module, filename, "exec"), builder.ns)  # built from ast; no policy text runs
    return builder.ns["run"]  # type: ignore[no-any-return]


# ---- straight from JSON: msgspec checks types in C, generated code does the rest ----

_INT64 = (-(2 ** 63), 2 ** 63 - 1)


class _Unsupported(Exception):
    """A schema the typed decoder does not cover; its records take the path above."""


def _integer_bounds(spec: Any) -> msgspec.Meta | None:
    """The bounds of an integer field, as whole numbers msgspec checks (it reads 64-bit integers only)."""
    import math

    low, high = _INT64
    for bound, lower, strict in ((spec.min, True, False), (spec.greater_than, True, True),
                                 (spec.max, False, False), (spec.less_than, False, True)):
        if bound is None:
            continue
        if lower:
            low = max(low, math.floor(bound) + 1 if strict else math.ceil(bound))
        else:
            high = min(high, math.ceil(bound) - 1 if strict else math.floor(bound))
    if not _INT64[0] <= low <= high <= _INT64[1]:
        raise _Unsupported("integer bounds")
    return None if (low, high) == _INT64 else msgspec.Meta(ge=low, le=high)


class _Typed(_Build):
    """The code that finishes a record msgspec decoded into TypedDicts: msgspec has checked every
    type, enum, integer bound, list length and required field; this fills defaults and absent
    optionals, makes decimals exact `Decimal`s within their bounds, and matches patterns."""

    def __init__(self) -> None:
        super().__init__(strict=True)
        self.count_types = 0

    # -- the msgspec type of a field --
    def annotation(self, field: Field) -> Any:  # noqa: C901
        from typing import Annotated, Literal, NotRequired, Required, TypedDict

        kind = field.type.kind
        if kind == Kind.INTEGER:
            meta = _integer_bounds(field.spec)
            return int if meta is None else Annotated[int, meta]
        if kind in (Kind.DECIMAL, Kind.PERCENT, Kind.MONEY):
            return Any  # a JSON number, read exactly (float_hook=Decimal); checked after
        if kind == Kind.BOOLEAN:
            return bool
        if kind == Kind.TEXT:
            return str
        if kind == Kind.DATE:
            return dt.date
        if kind == Kind.ENUM:
            if not field.type.values or not all(type(v) is str for v in field.type.values):
                raise _Unsupported("enum values")
            return Literal[tuple(field.type.values)]
        if kind == Kind.LIST:
            assert field.items is not None
            item = self.annotation(field.items)
            if field.items.type.optional and item is not Any:
                item = item | None
            low = field.spec.min_items or 0
            high = field.spec.max_items if field.spec.max_items is not None else MAX_LIST_ITEMS
            return Annotated[list[item], msgspec.Meta(min_length=low, max_length=high)]  # type: ignore[valid-type]
        if kind == Kind.RECORD:
            members: dict[str, Any] = {}
            for name, sub in field.fields:
                inner = self.annotation(sub)
                if self._required(sub):
                    members[name] = Required[inner]
                else:
                    members[name] = NotRequired[inner if inner is Any else inner | None]
            self.count_types += 1
            return TypedDict(f"Record{self.count_types}", members, total=False)  # type: ignore[operator]
        raise _Unsupported(f"kind {kind}")

    @staticmethod
    def _required(field: Field) -> bool:
        default = field.spec.default
        return (default is msgspec.UNSET or default is None) and not field.type.optional

    # -- the code that finishes it --
    def finish(self, field: Field, out: str) -> list[ast.stmt]:
        """Statements that finish the value in `out` (already checked by msgspec), in place where it is
        a record or a list; `out` holds the finished value after them."""
        kind = field.type.kind
        if kind in (Kind.DECIMAL, Kind.PERCENT, Kind.MONEY):
            return super().value(field, out)  # the same exact reading and bounds as the path above
        if kind == Kind.TEXT:
            return [] if field.pattern is None else _stmts("if PAT(OUT) is None:\n    raise GiveUp", OUT=out,
                                                           PAT=self.const(field.pattern.fullmatch))
        if kind == Kind.LIST:
            assert field.items is not None
            inner = self.item_function(field.items)
            return [] if inner is None else _stmts("OUT = [ITEM(e) for e in OUT]", OUT=out, ITEM=inner)
        if kind == Kind.RECORD:
            body: list[ast.stmt] = []
            for name, sub in field.fields:
                body += self.member(sub, out, name)
            return body
        return []  # integers, booleans, enums, dates: msgspec has checked all there is

    def member(self, field: Field, record: str, name: str) -> list[ast.stmt]:
        local = self.name("v")
        checks = self.finish(field, local)
        key = ast.Constant(name)
        spec = field.spec
        if spec.default is not msgspec.UNSET and spec.default is not None:
            return _stmts("OUT = REC.get(KEY)\nif OUT is None:\n    OUT = DEFAULT()", OUT=local, REC=record, KEY=key,
                          DEFAULT=self.default(field)) + checks + _stmts("REC[KEY] = OUT", OUT=local, REC=record,
                                                                          KEY=key)
        if field.type.optional:
            if not checks:
                return _stmts("if KEY not in REC:\n    REC[KEY] = None", REC=record, KEY=key)
            body = _stmts("OUT = REC.get(KEY)\nif OUT is None:\n    REC[KEY] = None", OUT=local, REC=record, KEY=key)
            body[-1].orelse = checks + _stmts("REC[KEY] = OUT", OUT=local, REC=record, KEY=key)  # type: ignore[attr-defined]
            return body
        if not checks:
            return []
        return _stmts("OUT = REC[KEY]", OUT=local, REC=record, KEY=key) + checks + \
            _stmts("REC[KEY] = OUT", OUT=local, REC=record, KEY=key)

    def item_function(self, field: Field) -> str | None:
        """The name of a function finishing one item of a list, or None when items need nothing."""
        body = self.finish(field, "x")
        if not body:
            return None
        if field.type.optional:
            body = [ast.If(test=_stmts("x is not None")[0].value, body=body, orelse=[])]  # type: ignore[attr-defined]
        name = self.name("item")
        self.functions.append(_function_def(
            name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="x")], kwonlyargs=[], kw_defaults=[],
                                          defaults=[]), body=body + _stmts("return x"), decorator_list=[],
            returns=None))
        return name


_PLAIN = msgspec.json.Encoder()


def build_typed_decoder(root: Field) -> Callable[[bytes], dict[str, Any]] | None:
    """A function JSON text -> normalised record for plainly valid records, decoded and type-checked
    by msgspec in C; it raises on anything else (a wrong type, a bound missed, a key the policy does
    not declare, a key given twice), and the caller takes the path that names every problem. None
    when the schema has a part msgspec cannot check the same way."""
    builder = _Typed()
    try:
        decoder = msgspec.json.Decoder(builder.annotation(root), float_hook=Decimal)
    except (_Unsupported, TypeError):  # TypeError: msgspec refuses a type or a constraint
        return None
    finish = _function(builder, builder.finish(root, "r"), "<typed record validator>")
    decode, encode = decoder.decode, _PLAIN.encode

    def decoded(raw: bytes) -> dict[str, Any]:
        record = decode(raw)
        # a key dropped (one the policy does not declare) or given twice leaves fewer `:` outside
        # strings than the text has (see jsontext.duplicate_key); a `\u` escape may spell a `:`
        if b"\\u" in raw or raw.count(b":") != encode(record).count(b":"):
            raise GiveUp
        return finish(record)  # type: ignore[no-any-return]

    return decoded
