"""A generated fast path for record validation.

It accepts only records that are plainly valid and normalises them in one pass of
straight-line code; anything unusual (a wrong type, a bound missed, a value needing
conversion) makes it give up, and the path-collecting validator in `schema` decides,
so every error is still reported with its path. The code is built as `ast` from the
fixed templates below; policy values enter only as constants in the namespace.
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
                          "\n    raise GiveUp", OUT=out, LOW=ast.Constant(-MAX_EXPONENT), HIGH=ast.Constant(MAX_EXPONENT),
                          LIMIT=ast.Constant(LIMIT))
            return body + self.bounds(field, out)
        if kind == Kind.BOOLEAN:
            return _stmts("if type(OUT) is not bool:\n    raise GiveUp", OUT=out)
        if kind == Kind.TEXT:
            body = _stmts("if type(OUT) is not str:\n    raise GiveUp", OUT=out)
            if field.pattern is not None:
                body += _stmts("if PAT(OUT) is None:\n    raise GiveUp", OUT=out, PAT=self.const(field.pattern.fullmatch))
            return body
        if kind == Kind.ENUM:
            return _stmts("if type(OUT) is not str or OUT not in VALUES:\n    raise GiveUp", OUT=out,
                          VALUES=self.const(frozenset(field.type.values)))
        if kind == Kind.DATE:
            return _stmts("if type(OUT) is str and len(OUT) == 10 and DATE(OUT):\n    OUT = fromiso(OUT)\n"
                          "elif type(OUT) is not date_type:\n    raise GiveUp", OUT=out, DATE=self.const(DATE_TEXT.fullmatch))
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
        for bound, template in ((spec.min, "if OUT < B:\n    raise GiveUp"), (spec.max, "if OUT > B:\n    raise GiveUp"),
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
    body = builder.value(root, "r") + _stmts("return r")
    fn = _function_def(name="fast", args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="r")], kwonlyargs=[],
                                                         kw_defaults=[], defaults=[]),
                         body=body, decorator_list=[], returns=None)
    module = ast.Module(body=[*builder.functions, fn], type_ignores=[])
    ast.fix_missing_locations(module)
    exec(compile(module, "<record validator>", "exec"), builder.ns)  # built from ast; no policy text runs
    return builder.ns["fast"]  # type: ignore[no-any-return]


