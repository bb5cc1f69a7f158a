"""Compile a checked policy into Python functions built as `ast` trees.

Policy text never becomes Python source: names become generated identifiers
(`d3`, `p1`, `v0`) and every value the author wrote enters as a constant. Two
variants are built from the same tree walk: `run` (no tracing at all) and
`run_traced` (records table rows, keyed parameter lookups and fired rules). Each
statement's line number is an index into `sites`, so a fault maps back to the
definition, output or rule that raised it, at no cost when nothing fails.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules import numbers
from kinerja_rules.boundary import checked_call, declared
from kinerja_rules.checker import CheckedPolicy
from kinerja_rules.functions import BUILTINS, FunctionSpec
from kinerja_rules.numbers import ROUNDING_MODES
from kinerja_rules.tables import Table
from kinerja_rules.typecheck import path_of
from kinerja_rules.types import Kind, Type

_BUILTIN_IMPLS = {spec.name: spec for spec in BUILTINS}


def _function_def(**fields: Any) -> ast.FunctionDef:
    """An `ast.FunctionDef` on every supported Python (3.12 added `type_params`)."""
    if "type_params" in ast.FunctionDef._fields:
        fields.setdefault("type_params", [])
    return ast.FunctionDef(**fields)


class TableMiss(Exception):
    """No row of a table matched (possible only where static analysis could not prove coverage)."""


def _min_of(values: list[Any]) -> Any:
    if not values:
        raise ValueError("min of an empty list")
    return min(values)


def _max_of(values: list[Any]) -> Any:
    if not values:
        raise ValueError("max of an empty list")
    return max(values)


def _whole(value: Any) -> int:
    if value != numbers.floor(value):
        raise ValueError(f"money output {value} is not whole rupiah; round it explicitly "
                         "(floor, ceil or round(x, 0, mode))")
    return int(value)


def _out_of_range(value: Any, word: str, bound: Any) -> None:
    raise ValueError(f"the value {value} is {'below' if word == 'min' else 'above'} the output's declared "
                     f"{word} {bound}")


def _rational_in(value: Any, items: list[Any]) -> bool:
    return any(value == numbers.rational(item) for item in items)


def _clamp(value: Any, low: Any, high: Any) -> Any:
    if low > high:
        raise ValueError(f"clamp: low {low} is above high {high}")
    return low if value < low else high if value > high else value


def _coalesce(value: Any, fallback: Callable[[], Any]) -> Any:
    return fallback() if value is None else value


def _miss(table: str, args: tuple[Any, ...]) -> Any:
    raise TableMiss(f"no row of table {table!r} matches {args!r}")


@dataclass(frozen=True)
class Site:
    """What a generated line computes, for naming a fault."""

    kind: str  # definition | output | rule | table
    name: str


class CompiledCode:
    """A policy's evaluation functions; the traced ones and those of a population run are built
    the first time they are needed."""

    def __init__(self, policy: CheckedPolicy) -> None:
        self._policy = policy
        ns, self.sites, self.filename = _compile_variant(policy, traced=False)
        self.run: Callable[..., Any] = ns["run"]
        self.checks: Callable[..., list[tuple[str, str, str]]] | None = ns.get("checks")
        """`checks(r, P, as_of)`: each failed check's (path, message, name), in order; None when the policy has none."""
        self._variants: dict[str, Any] = {}

    def _variant(self, which: str) -> Any:
        found = self._variants.get(which)
        if found is None:  # two threads may both build it; either result is the same
            if which == "population":
                found = PopulationCode(self._policy)
            else:
                ns, sites, _ = _compile_variant(self._policy, traced=which.endswith("traced"),
                                                post=which.startswith("post"))
                found = ns["run"]
                self.sites.update(sites)
            self._variants[which] = found
        return found

    @property
    def run_traced(self) -> Callable[..., Any]:
        """`run` that also records table rows, keyed lookups and fired rules, and returns the definitions."""
        return self._variant("traced")  # type: ignore[no-any-return]

    @property
    def run_post(self) -> Callable[..., Any]:
        """`run` after the population stage: `X` is what it gave the record, `K` the definitions it decided before."""
        return self._variant("post")  # type: ignore[no-any-return]

    @property
    def run_post_traced(self) -> Callable[..., Any]:
        return self._variant("post traced")  # type: ignore[no-any-return]

    @property
    def population(self) -> PopulationCode:
        return self._variant("population")  # type: ignore[no-any-return]

    def site(self, filename: str, line: int) -> Site | None:
        """What the generated line computes, in the evaluation functions or the population stage's."""
        if filename == self.filename:
            return self.sites.get(line)
        stage = self._variants.get("population")
        return stage.sites.get(line) if stage is not None and filename == stage.filename else None


def _name(identifier: str, ctx: ast.expr_context | None = None) -> ast.Name:
    return ast.Name(id=identifier, ctx=ctx or ast.Load())


def _call(func: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args), keywords=[])


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


class _Gen:
    def __init__(self, policy: CheckedPolicy, traced: bool, ns: dict[str, Any], consts: dict[Any, str]) -> None:
        self.policy = policy
        self.notes = policy.notes
        self.traced = traced
        self.ns = ns
        self.consts = consts
        self.def_index = {name: i for i, name in enumerate(policy.definitions)}
        self.param_index = {name: i for i, name in enumerate(policy.params)}
        self.table_index = {name: i for i, name in enumerate(policy.tables)}
        self.vars: list[dict[str, str]] = [{}]
        self.var_count = 0
        self.lineno = 1
        self.func_names: dict[int, str] = {}

    # ---- constants and helpers in the module namespace ----
    def const(self, value: Any) -> ast.expr:
        if value is None or isinstance(value, (bool, int, str)) and not isinstance(value, Decimal):
            return _const(value)
        key = (type(value).__name__, repr(value))
        name = self.consts.get(key)
        if name is None:
            name = f"c{len(self.consts)}"
            self.consts[key] = name
            self.ns[name] = value
        return _name(name)

    def helper(self, name: str, value: Any) -> ast.Name:
        self.ns[name] = value
        return _name(name)

    def func(self, spec: FunctionSpec) -> ast.Name:
        key = id(spec.impl)
        name = self.func_names.get(key)
        if name is None:
            name = f"f{len(self.func_names)}"
            self.func_names[key] = name
            self.ns[name] = spec.impl if spec.plugin == "builtins" else checked_call(
                spec.impl, declared(spec.returns),
                f"function {spec.name!r} of plugin {spec.plugin!r}" + (f" {spec.version}" if spec.version else ""))
        return _name(name)

    # ---- expressions ----
    def expr(self, node: n.Expr) -> ast.expr:
        out = self._expr(node)
        if id(node) in self.notes.coerce and self.notes.types.get(id(node), Type(kind=Kind.ANY)).kind == Kind.INTEGER:
            if isinstance(out, ast.Constant) and isinstance(out.value, int):
                return self.const(Decimal(out.value))
            return _call(self.helper("_D", Decimal), out)
        return out

    def repeats(self, node: n.Expr) -> bool:
        """Whether the node's value is a rational at run time (its type may repeat)."""
        return self.notes.types[id(node)].repeating

    def rational(self, node: n.Expr) -> ast.expr:
        """The node's value as a rational: as it is when it already is one, else converted."""
        if self.repeats(node):
            return self.expr(node)
        if isinstance(node, n.Literal) and node.kind in (Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT):
            return self.const(numbers.rational(node.value))
        out = self._expr(node)
        if self.notes.types[id(node)].kind == Kind.INTEGER:
            return _call(self.helper("_Q", numbers.Rational), out)
        ratio = _call(ast.Attribute(value=out, attr="as_integer_ratio", ctx=ast.Load()))
        return ast.Call(func=self.helper("_Q", numbers.Rational), args=[ast.Starred(value=ratio, ctx=ast.Load())],
                        keywords=[])

    def operands(self, node: n.Expr, parts: list[n.Expr] | tuple[n.Expr, ...]) -> list[ast.expr]:
        """Compile `parts`, as rationals when the node (or one of them) computes with rationals."""
        if self.repeats(node) or any(self.repeats(p) for p in parts):
            return [self.rational(p) for p in parts]
        return [self.expr(p) for p in parts]

    def _expr(self, node: n.Expr) -> ast.expr:
        method: Callable[[Any], ast.expr] = getattr(self, "e_" + type(node).__name__.lower())
        return method(node)

    def e_literal(self, node: n.Literal) -> ast.expr:
        res = self.notes.names.get(id(node))
        if res is not None and res[0] == "enum":
            return _const(res[1])
        return self.const(node.value)

    def e_name(self, node: n.Name) -> ast.expr:
        kind, payload = self.notes.names[id(node)]
        if kind == "var":
            for scope in reversed(self.vars):
                if payload in scope:
                    return _name(scope[payload])
            raise AssertionError(payload)
        if kind == "enum":
            return _const(payload)
        if kind == "as_of":
            return _name("as_of")
        if kind == "def":
            return _name(f"d{self.def_index[payload]}")
        if kind == "param":
            return _name(f"p{self.param_index[payload]}")
        if kind == "input":
            return ast.Subscript(value=_name("r"), slice=_const(payload), ctx=ast.Load())
        if kind == "indicator":
            return self._indicator(payload)
        if kind == "population":
            return _name("X")
        raise AssertionError(kind)

    def _indicator(self, name: str) -> ast.expr:
        return _name(f"n{list(self.policy.indicators).index(name)}")

    def e_attr(self, node: n.Attr) -> ast.expr:
        obj_type = self.notes.types[id(node.obj)]
        obj = self.expr(node.obj)
        if obj_type.kind == Kind.LIST:
            var = self.fresh()
            return ast.ListComp(
                elt=ast.Subscript(value=_name(var), slice=_const(node.name), ctx=ast.Load()),
                generators=[ast.comprehension(target=_name(var, ast.Store()), iter=obj, ifs=[], is_async=0)])
        return ast.Subscript(value=obj, slice=_const(node.name), ctx=ast.Load())

    def e_index(self, node: n.Index) -> ast.expr:
        res = self.notes.names.get(id(node.obj))
        if res is not None and res[0] == "param" and self.policy.params[res[1]].key is not None:
            pname = f"p{self.param_index[res[1]]}"
            key = self.expr(node.index)
            if self.traced:
                return _call(_name("_pk"), _name("H"), _const(res[1]), _name(pname), key)
            return _call(_name("_lk"), _const(res[1]), _name(pname), key)
        return ast.Subscript(value=self.expr(node.obj), slice=self.expr(node.index), ctx=ast.Load())

    def fresh(self) -> str:
        self.var_count += 1
        return f"v{self.var_count}"

    def e_call(self, node: n.Call) -> ast.expr:
        name = node.func
        args = node.args
        if name in self.policy.tables:
            idx = self.table_index[name]
            fn = f"t{idx}t" if self.traced else f"t{idx}"
            extra = [_name("P"), _name("as_of")] + ([_name("H")] if self.traced else [])
            rational = self.notes.rational_args
            compiled = [self.rational(a) if (name, i) in rational else self.expr(a) for i, a in enumerate(args)]
            return _call(_name(fn), *compiled, *extra)
        res = self.notes.names.get(id(node))
        if res is not None and res[0] == "def":  # parent(name): the parent's version, a definition of its own
            return _name(f"d{self.def_index[res[1]]}")
        if res is None:  # aggregate over one list argument
            return self.aggregate(name, self.expr(args[0]), self.notes.types[id(node)])
        spec: FunctionSpec = res[1]
        if name in ("min", "max", "clamp", "abs") and spec.plugin == "builtins":
            compiled = self.operands(node, args)
        else:
            compiled = [self.expr(a) for a in args]
        builtin = _BUILTIN_IMPLS.get(name)
        if builtin is not None and builtin.impl is spec.impl:
            inline = self.inline_builtin(name, args, compiled)
            if inline is not None:
                return inline
        return _call(self.func(spec), *compiled)

    def inline_builtin(self, name: str, args: tuple[n.Expr, ...], compiled: list[ast.expr]) -> ast.expr | None:
        if name == "round" and isinstance(args[1], n.Literal) and isinstance(args[1].value, int):
            mode = self.notes.names.get(id(args[2]))
            places = args[1].value
            if mode is not None and mode[0] == "enum" and -20 <= places <= 20:
                value = compiled[0]
                arg_type = self.notes.types[id(args[0])]
                if arg_type.repeating:
                    return _call(self.helper("_round_q", numbers.round_rational), value, _const(places),
                                 _const(ROUNDING_MODES[mode[1]]))
                if arg_type.kind in (Kind.INTEGER, Kind.MONEY):
                    value = _call(self.helper("_D", Decimal), value)
                quantum = self.const(Decimal(1).scaleb(-places))
                return _call(ast.Attribute(value=value, attr="quantize", ctx=ast.Load()), quantum,
                             _const(ROUNDING_MODES[mode[1]]), self.helper("_RC", numbers.ROUND_CONTEXT))
        if name in ("min", "max"):
            return _call(_name(name), *compiled)
        if name == "abs":
            return _call(_name("abs"), *compiled)
        if name == "floor":
            return _call(self.helper("_floor", numbers.floor), *compiled)
        if name == "ceil":
            return _call(self.helper("_ceil", numbers.ceil), *compiled)
        if name == "clamp":
            return _call(self.helper("_clamp", _clamp), *compiled)
        return None

    def aggregate(self, func: str, values: ast.expr, result: Type) -> ast.expr:
        if func == "sum":
            if result.kind == Kind.INTEGER:
                return _call(_name("sum"), values)
            zero = numbers.Rational(0) if result.repeating else Decimal(0)
            return _call(_name("sum"), values, self.const(zero))
        if func == "count":
            return _call(_name("len"), values)
        if func in ("any", "all"):
            return _call(_name(func), values)
        if func == "list":
            return values
        helper = {"mean": numbers.mean, "min": _min_of, "max": _max_of}[func]
        return _call(self.helper(f"_{func}_of", helper), values)

    def e_aggregate(self, node: n.Aggregate) -> ast.expr:
        source = self.expr(node.source)
        var = self.fresh()
        self.vars.append({node.var: var})
        try:
            elem = self.expr(node.elem) if node.func != "count" else _const(1)
            ifs = [self.expr(node.where)] if node.where is not None else []
        finally:
            self.vars.pop()
        comp = ast.ListComp(elt=elem, generators=[
            ast.comprehension(target=_name(var, ast.Store()), iter=source, ifs=ifs, is_async=0)])
        return self.aggregate(node.func, comp, self.notes.types[id(node)])

    def e_listexpr(self, node: n.ListExpr) -> ast.expr:
        item = self.notes.types[id(node)].item
        if item is not None and item.repeating:
            return ast.List(elts=[self.rational(i) for i in node.items], ctx=ast.Load())
        return ast.List(elts=[self.expr(i) for i in node.items], ctx=ast.Load())

    def members(self, node: n.Expr) -> ast.expr:
        """The right of `in`: a constant tuple when every item is a constant."""
        if isinstance(node, n.ListExpr):
            items = [self.expr(i) for i in node.items]
            if all(isinstance(i, ast.Constant) for i in items):
                return _const(tuple(i.value for i in items))  # type: ignore[attr-defined]
        return self.expr(node)

    def e_recordexpr(self, node: n.RecordExpr) -> ast.expr:
        declared = self.notes.types.get(id(node))
        given = dict(node.fields)
        names = [name for name, _ in declared.fields] if declared is not None and declared.fields else list(given)
        return ast.Dict(keys=[_const(name) for name in names],  # every declared field, in its order; absent: null
                        values=[self.expr(given[name]) if name in given else _const(None) for name in names])

    def e_unary(self, node: n.Unary) -> ast.expr:
        op: ast.unaryop = ast.Not() if node.op == "not" else ast.USub()
        return ast.UnaryOp(op=op, operand=self.expr(node.operand))

    _BIN = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div}
    _CMP = {"=": ast.Eq, "!=": ast.NotEq, "<": ast.Lt, "<=": ast.LtE, ">": ast.Gt, ">=": ast.GtE,
            "in": ast.In, "notin": ast.NotIn}

    def e_binary(self, node: n.Binary) -> ast.expr:
        op = node.op
        if op in ("and", "or"):
            return ast.BoolOp(op=ast.And() if op == "and" else ast.Or(),
                              values=[self.expr(node.left), self.expr(node.right)])
        if op == "??":
            if self.repeats(node):
                left, right = self.rational(node.left), self.rational(node.right)
            else:
                left, right = self.expr(node.left), self.expr(node.right)
            if path_of(node.left) is not None or isinstance(node.left, n.Literal):
                return ast.IfExp(test=ast.Compare(left=left, ops=[ast.Is()], comparators=[_const(None)]),
                                 body=right, orelse=left)
            return _call(self.helper("_coalesce", _coalesce), left,
                         ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[],
                                                       defaults=[]), body=right))
        if op in ("in", "notin"):
            item = self.notes.types[id(node.right)].item
            if self.repeats(node.left) or item is not None and item.repeating:
                found: ast.expr = _call(self.helper("_qin", _rational_in), self.rational(node.left),
                                        self.expr(node.right))
                return found if op == "in" else ast.UnaryOp(op=ast.Not(), operand=found)
            return ast.Compare(left=self.expr(node.left), ops=[self._CMP[op]()], comparators=[self.members(node.right)])
        left, right = self.operands(node, (node.left, node.right))
        ranked = self.notes.types[id(node.left)] if op in ("<", "<=", ">", ">=") else None
        if ranked is not None and ranked.kind == Kind.ENUM and ranked.highest:  # an ordered enumeration: by rank
            ranks = self.helper(f"_rank_{ranked.name}_{len(ranked.values)}", ranked.rank())
            left, right = (ast.Subscript(value=ranks, slice=side, ctx=ast.Load()) for side in (left, right))
        if op in self._CMP:
            return ast.Compare(left=left, ops=[self._CMP[op]()], comparators=[right])
        if op == "/" and not self.repeats(node):  # a divisor of 2s and 5s: a finite Decimal, exact
            if self.notes.types[id(node.left)].kind in (Kind.INTEGER, Kind.MONEY):
                left = _call(self.helper("_D", Decimal), left)  # int / int would give a binary float
            return ast.BinOp(left=left, op=ast.Div(), right=right)
        return ast.BinOp(left=left, op=self._BIN[op](), right=right)

    def e_between(self, node: n.Between) -> ast.expr:
        low, value, high = self.operands(node, (node.low, node.value, node.high))
        return ast.Compare(left=low, ops=[ast.LtE(), ast.LtE()], comparators=[value, high])

    def branch(self, node: n.Expr, value: n.Expr) -> ast.expr:
        """A branch of a conditional, a rational when the conditional's value is one."""
        return self.rational(value) if self.repeats(node) else self.expr(value)

    def e_if(self, node: n.If) -> ast.expr:
        return ast.IfExp(test=self.expr(node.cond), body=self.branch(node, node.then),
                         orelse=self.branch(node, node.orelse))

    def e_when(self, node: n.When) -> ast.expr:
        if node.orelse is not None:
            result = self.branch(node, node.orelse)
            branches = node.branches
        else:  # exhaustive: the last branch is what remains
            result = self.branch(node, node.branches[-1][1])
            branches = node.branches[:-1]
        for cond, value in reversed(branches):
            result = ast.IfExp(test=self.expr(cond), body=self.branch(node, value), orelse=result)
        return result

    # ---- tables ----
    def test(self, test: n.Test, arg: ast.expr, rational: bool = False) -> ast.expr | None:
        """The condition of one cell; with `rational`, the argument is a rational and so are the bounds."""
        if isinstance(test, n.AnyTest):
            return None
        value = self.rational if rational else self.expr
        parts: list[ast.expr] = []
        for single in test.tests:
            if isinstance(single, n.RangeTest):
                parts.append(ast.Compare(
                    left=value(single.low),
                    ops=[ast.LtE() if single.low_closed else ast.Lt(), ast.LtE() if single.high_closed else ast.Lt()],
                    comparators=[arg, value(single.high)]))
            else:
                parts.append(ast.Compare(left=arg, ops=[self._CMP[single.op]()], comparators=[value(single.value)]))
        cond = parts[0] if len(parts) == 1 else ast.BoolOp(op=ast.Or(), values=parts)
        return ast.UnaryOp(op=ast.Not(), operand=cond) if test.negated else cond

    def table_function(self, table: Table, idx: int) -> ast.FunctionDef:  # noqa: C901
        names = [f"a{i}" for i in range(len(table.inputs))]
        self.vars.append({name: f"a{i}" for i, (name, _) in enumerate(table.inputs)})
        body: list[ast.stmt] = []
        params = {"P", "as_of"}
        used = {name for kind, name in table.deps if kind == "param"}
        for pname, pi in self.param_index.items():
            if pname not in used:
                continue
            body.append(ast.Assign(targets=[_name(f"p{pi}", ast.Store())],
                                   value=ast.Subscript(value=_name("P"), slice=_const(pi), ctx=ast.Load())))
        args_tuple = ast.Tuple(elts=[_name(a) for a in names], ctx=ast.Load())
        collect = table.hit == "collect" or table.hit == "priority"
        if collect:
            body.append(ast.Assign(targets=[_name("out", ast.Store())], value=ast.List(elts=[], ctx=ast.Load())))
        for row in table.rows:
            rational = self.notes.rational_args
            conds = [c for c in (self.test(t, _name(names[i]), (table.name, i) in rational)
                                 for i, t in enumerate(row.tests)) if c is not None]
            value = self.expr(row.then)
            stmts: list[ast.stmt] = []
            if self.traced:
                stmts.append(ast.Expr(_call(ast.Attribute(value=_name("H"), attr="append", ctx=ast.Load()),
                                            ast.Tuple(elts=[_const("table"), _const(table.name), _const(row.name),
                                                            args_tuple, value], ctx=ast.Load()))))
            if collect:
                stmts.append(ast.Expr(_call(ast.Attribute(value=_name("out"), attr="append", ctx=ast.Load()),
                                            ast.Tuple(elts=[_const(row.index), value], ctx=ast.Load()))))
            else:
                stmts.append(ast.Return(value=value))
            if conds:
                test = conds[0] if len(conds) == 1 else ast.BoolOp(op=ast.And(), values=conds)
                last = body[-1] if body else None
                if collect and isinstance(last, ast.If) and ast.dump(last.test) == ast.dump(test):
                    last.body.extend(stmts)  # the same test as the row before (a pure one): asked once
                else:
                    body.append(ast.If(test=test, body=stmts, orelse=[]))
            else:
                body.extend(stmts)
                if not collect:
                    break
        self.vars.pop()
        fallback: ast.expr
        if table.default is not None:
            self.vars.append({name: f"a{i}" for i, (name, _) in enumerate(table.inputs)})
            fallback = self.expr(table.default)
            self.vars.pop()
        else:
            fallback = _call(self.helper("_miss", _miss), _const(table.name), args_tuple)
        if table.hit == "priority":
            rank = {value: i for i, value in enumerate(table.priority)}
            self.ns[f"_rank{idx}"] = rank
            best = _call(_name("min"), _name("out"), )
            best.keywords = [ast.keyword(arg="key", value=ast.Lambda(
                args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="x")], kwonlyargs=[], kw_defaults=[], defaults=[]),
                body=_call(ast.Attribute(value=_name(f"_rank{idx}"), attr="get", ctx=ast.Load()),
                           ast.Subscript(value=_name("x"), slice=_const(1), ctx=ast.Load()), _const(len(rank)))))]
            body.append(ast.If(test=_name("out"), body=[ast.Return(
                value=ast.Subscript(value=best, slice=_const(1), ctx=ast.Load()))], orelse=[]))
            body.append(ast.Return(value=fallback))
        elif table.hit == "collect":
            values = ast.ListComp(elt=ast.Subscript(value=_name("x"), slice=_const(1), ctx=ast.Load()),
                                  generators=[ast.comprehension(target=_name("x", ast.Store()), iter=_name("out"),
                                                                ifs=[], is_async=0)])
            agg = table.aggregate
            if agg is None:
                body.append(ast.Return(value=values))
            elif agg == "count":
                body.append(ast.Return(value=_call(_name("len"), _name("out"))))
            elif agg == "sum":
                start = [] if table.output.kind == Kind.INTEGER else [self.const(Decimal(0))]
                body.append(ast.Return(value=_call(_name("sum"), values, *start)))
            else:
                body.append(ast.Return(value=ast.IfExp(test=_name("out"), body=_call(_name(agg), values),
                                                       orelse=_const(None))))
        elif not body or not isinstance(body[-1], ast.Return):
            body.append(ast.Return(value=fallback))
        arg_list = [ast.arg(arg=a) for a in names] + [ast.arg(arg=p) for p in sorted(params)]
        if self.traced:
            arg_list.append(ast.arg(arg="H"))
        return _function_def(name=f"t{idx}t" if self.traced else f"t{idx}",
                               args=ast.arguments(posonlyargs=[], args=arg_list, kwonlyargs=[], kw_defaults=[],
                                                  defaults=[]),
                               body=body, decorator_list=[], returns=None)


def _lookup(name: str, table: dict[Any, Any], key: Any) -> Any:
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"parameter {name!r} has no value for key {key!r}") from None


def _nested_dict(paths: list[tuple[str, ast.expr]]) -> ast.expr:
    tree: dict[str, Any] = {}
    for dotted, value in paths:
        parts = dotted.split(".")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def build(node: dict[str, Any]) -> ast.expr:
        return ast.Dict(keys=[_const(k) for k in node],
                        values=[build(v) if isinstance(v, dict) else v for v in node.values()])

    return build(tree)


def compile_policy(policy: CheckedPolicy) -> CompiledCode:
    """Compile the plain evaluation function now and the traced one on first use."""
    return CompiledCode(policy)


class _Module:
    """One generated module: its namespace, constants, table functions and the line of each site."""

    def __init__(self, policy: CheckedPolicy, traced: bool, filename: str) -> None:
        self.ns: dict[str, Any] = {"__builtins__": {"sum": sum, "len": len, "min": min, "max": max, "abs": abs,
                                                    "any": any, "all": all, "list": list, "type": type, "int": int,
                                                    "str": str, "enumerate": enumerate},
                                   "_D": Decimal, "_lk": _lookup}
        self.sites: dict[int, Site] = {}
        self.filename = filename
        self.gen = _Gen(policy, traced, self.ns, {})
        self.line = 10
        self.body: list[ast.stmt] = []
        for idx, table in enumerate(policy.tables.values()):
            self.body.append(self.at(self.gen.table_function(table, idx), Site("table", table.name)))

    def at(self, stmt: ast.stmt, site: Site) -> ast.stmt:
        self.line += 1
        for node in ast.walk(stmt):
            if isinstance(node, (ast.expr, ast.stmt, ast.arg, ast.keyword)):
                node.lineno = node.end_lineno = self.line
                node.col_offset = node.end_col_offset = 0
        self.sites[self.line] = site
        return stmt

    def function(self, name: str, args: list[str], body: list[ast.stmt]) -> None:
        self.body.append(_function_def(
            name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in args], kwonlyargs=[],
                                          kw_defaults=[], defaults=[]),
            body=body, decorator_list=[], returns=None))

    def build(self) -> dict[str, Any]:
        module = ast.Module(body=self.body, type_ignores=[])
        ast.fix_missing_locations(module)
        exec(compile(module, self.filename, "exec"), self.ns)  # built from AST nodes; no policy text is executed
        return self.ns


def _unpack(source: str, prefix: str, positions: Iterable[tuple[int, int]]) -> list[ast.stmt]:
    """`p3 = P[3]`, … : locals from the tuple an evaluation function receives."""
    return [ast.Assign(targets=[_name(f"{prefix}{local}", ast.Store())],
                       value=ast.Subscript(value=_name(source), slice=_const(at), ctx=ast.Load()))
            for local, at in positions]


def _unpack_all(source: str, prefix: str, count: int) -> list[ast.stmt]:
    """`p0, p1, … = P`: every item of the tuple an evaluation function receives, in one step."""
    if not count:
        return []
    names: list[ast.expr] = [_name(f"{prefix}{i}", ast.Store()) for i in range(count)]
    return [ast.Assign(targets=[ast.Tuple(elts=names, ctx=ast.Store())], value=_name(source))]


def _compile_variant(  # noqa: C901
        policy: CheckedPolicy, traced: bool, post: bool = False) -> tuple[dict[str, Any], dict[int, Site], str]:
    """Build and compile one variant (plain or traced; alone or after the population stage) of a
    policy's evaluation function `run`; the plain one also holds `checks`, when the policy has any."""
    mod = _Module(policy, traced, f"<policy {policy.id}>")
    if policy.checks and not traced and not post:
        _checks_function(mod, policy)
    ns, sites, gen, at = mod.ns, mod.sites, mod.gen, mod.at
    body: list[ast.stmt] = _unpack_all("P", "p", len(policy.params))
    body += _unpack_all("N", "n", len(policy.indicators))
    decided: dict[str, int] = {}
    if policy.population is not None:
        if post:
            decided = {name: i for i, name in enumerate(policy.population.before)}
        else:  # decided alone: no population stage ran
            body.append(ast.Assign(targets=[_name("X", ast.Store())], value=_const(None)))
    for di, (name, definition) in enumerate(policy.definitions.items()):
        known = ast.Subscript(value=_name("K"), slice=_const(decided[name]), ctx=ast.Load()) if name in decided \
            else gen.expr(definition.expr)
        stmt = ast.Assign(targets=[_name(f"d{di}", ast.Store())], value=known)
        body.append(at(stmt, Site("definition", name)))
    outs: list[tuple[str, ast.expr]] = []
    rule_lists: dict[str, str] = {}
    for oi, (name, output) in enumerate(policy.outputs.items()):
        if output.rules:
            rule_lists[name] = f"o{oi}"
        value: ast.expr
        if output.expr is not None:
            value = gen.expr(output.expr)
            if output.rules:
                value = _call(_name("list"), value)
        else:
            value = ast.List(elts=[], ctx=ast.Load())
        if output.type.kind == Kind.MONEY and not output.type.optional:
            body.append(at(ast.Assign(targets=[_name(f"o{oi}", ast.Store())], value=value), Site("output", name)))
            value = ast.IfExp(test=ast.Compare(left=_call(_name("type"), _name(f"o{oi}")), ops=[ast.Is()],
                                               comparators=[_name("int")]),
                              body=_name(f"o{oi}"), orelse=_call(gen.helper("_whole", _whole), _name(f"o{oi}")))
        elif output.type.kind == Kind.MONEY:
            value = ast.IfExp(test=ast.Compare(left=value, ops=[ast.Is()], comparators=[_const(None)]),
                              body=_const(None), orelse=_call(gen.helper("_whole", _whole), value))
        body.append(at(ast.Assign(targets=[_name(f"o{oi}", ast.Store())], value=value), Site("output", name)))
        for bound, op, word in ((output.low, ast.Lt(), "min"), (output.high, ast.Gt(), "max")):
            if bound is None:
                continue
            test: ast.expr = ast.Compare(left=_name(f"o{oi}"), ops=[op], comparators=[gen.const(bound)])
            if output.type.optional:
                test = ast.BoolOp(op=ast.And(), values=[
                    ast.Compare(left=_name(f"o{oi}"), ops=[ast.IsNot()], comparators=[_const(None)]), test])
            fail = _call(gen.helper("_out_of_range", _out_of_range), _name(f"o{oi}"), _const(word), gen.const(bound))
            body.append(at(ast.If(test=test, body=[ast.Expr(fail)], orelse=[]), Site("output", name)))
        outs.append((name, _name(f"o{oi}")))
    for rule in policy.rules.values():
        stmts: list[ast.stmt] = []
        for out_name, code in rule.then:
            stmts.append(ast.Expr(_call(ast.Attribute(value=_name(rule_lists[out_name]), attr="append",
                                                      ctx=ast.Load()), gen.const(code))))
        if traced:
            stmts.append(ast.Expr(_call(ast.Attribute(value=_name("H"), attr="append", ctx=ast.Load()),
                                        ast.Tuple(elts=[_const("rule"), _const(rule.name)], ctx=ast.Load()))))
        body.append(at(ast.If(test=gen.expr(rule.when), body=stmts, orelse=[]), Site("rule", rule.name)))
    result: ast.expr = _nested_dict(outs)
    if traced:
        result = ast.Tuple(elts=[result, ast.Tuple(elts=[_name(f"d{i}") for i in range(len(policy.definitions))],
                                                   ctx=ast.Load())], ctx=ast.Load())
    body.append(ast.Return(value=result))
    args = ["r", "P", "N", "as_of"] + (["X", "K"] if post else []) + (["H"] if traced else [])
    if traced:
        ns["_pk"] = _traced_lookup
    mod.function("run", args, body)
    return mod.build(), sites, mod.filename


def _checks_function(mod: _Module, policy: CheckedPolicy) -> None:
    """`checks(r, P, as_of)`: the (path, message, name) of each check the record fails, each item of a
    `for` list on its own."""
    gen = mod.gen
    body: list[ast.stmt] = _unpack_all("P", "p", len(policy.params))
    body.append(ast.Assign(targets=[_name("F", ast.Store())], value=ast.List(elts=[], ctx=ast.Load())))
    for check in policy.checks.values():
        site = Site("check", check.name)
        if check.over is None:
            failed = _call(ast.Attribute(value=_name("F"), attr="append", ctx=ast.Load()), ast.Tuple(
                elts=[_const(check.path()), _const(check.message), _const(check.name)], ctx=ast.Load()))
            body.append(mod.at(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=gen.expr(check.require)),
                                      body=[ast.Expr(failed)], orelse=[]), site))
            continue
        items = gen.expr(check.over)
        var = gen.fresh()
        gen.vars.append({check.var: var})
        try:
            test = gen.expr(check.require)
        finally:
            gen.vars.pop()
        after = "]" + (f".{check.at}" if check.at else "")
        where = ast.BinOp(left=_const(f"{check.over_path}["), op=ast.Add(), right=ast.BinOp(
            left=_call(_name("str"), _name("i")), op=ast.Add(), right=_const(after)))
        failed = _call(ast.Attribute(value=_name("F"), attr="append", ctx=ast.Load()),
                       ast.Tuple(elts=[where, _const(check.message), _const(check.name)], ctx=ast.Load()))
        loop = ast.For(target=ast.Tuple(elts=[_name("i", ast.Store()), _name(var, ast.Store())], ctx=ast.Store()),
                       iter=_call(_name("enumerate"), ast.BoolOp(op=ast.Or(), values=[items, ast.Tuple(
                           elts=[], ctx=ast.Load())])),
                       body=[ast.If(test=ast.UnaryOp(op=ast.Not(), operand=test), body=[ast.Expr(failed)],
                                    orelse=[])], orelse=[])
        body.append(mod.at(loop, site))
    body.append(ast.Return(value=_name("F")))
    mod.function("checks", ["r", "P", "as_of"], body)


class PopulationCode:
    """The functions of the population stage.

    `before(r, P, N, as_of)` decides what the stage needs of a record and returns
    `(definitions, group key, member key, ordering key, each quota's category)`; `group(name)(P, as_of, group,
    members, size)` is a group-level value (the quota's key and mode, each group definition);
    `pair(r, P, N, as_of, D, seat)` is a candidate's score for a seat, or None when not eligible.
    """

    def __init__(self, policy: CheckedPolicy) -> None:
        pop = policy.population
        assert pop is not None
        mod = _Module(policy, False, f"<policy {policy.id} population>")
        gen = mod.gen
        params = _unpack_all("P", "p", len(policy.params))
        indicators = _unpack_all("N", "n", len(policy.indicators))
        def_index = {name: i for i, name in enumerate(policy.definitions)}
        body = params + indicators
        for name in pop.before:
            body.append(mod.at(ast.Assign(targets=[_name(f"d{def_index[name]}", ast.Store())],
                                          value=gen.expr(policy.definitions[name].expr)), Site("definition", name)))

        def tup(exprs: Iterable[n.Expr]) -> ast.expr:
            return ast.Tuple(elts=[gen.expr(e) for e in exprs], ctx=ast.Load())

        grouping = mod.at(ast.Assign(targets=[_name("k", ast.Store())], value=ast.Tuple(elts=[
            tup(e for _, e in pop.by), gen.expr(pop.member), tup(o.expr for o in pop.order),
            ast.Tuple(elts=[gen.expr(q.of) for q in pop.quotas], ctx=ast.Load())], ctx=ast.Load())),
            Site("population", "grouping"))
        body += [grouping, ast.Return(value=ast.Tuple(elts=[
            ast.Tuple(elts=[_name(f"d{def_index[name]}") for name in pop.before], ctx=ast.Load()),
            ast.Starred(value=_name("k"), ctx=ast.Load())], ctx=ast.Load()))]
        mod.function("before", ["r", "P", "N", "as_of"], body)

        group_level: dict[str, n.Expr] = {name: v.expr for name, v in pop.values.items()}
        for quota in pop.quotas:
            group_level[f"quota mode {quota.name}"] = quota.mode
            if quota.key is not None:
                group_level[f"quota key {quota.name}"] = quota.key
        self.group_names: dict[str, str] = {}
        gen.vars.append({"group": "group", "members": "members", "size": "size"})
        for i, (name, expr) in enumerate(group_level.items()):
            fname = self.group_names[name] = f"g{i}"
            ret = mod.at(ast.Return(value=gen.expr(expr)), Site("group definition" if name in pop.values
                                                                 else "population", name))
            mod.function(fname, ["P", "as_of", "group", "members", "size"], params + [ret])
        gen.vars.pop()
        if pop.assignment is not None:
            gen.vars.append({"seat": "seat"})
            decided = _unpack("D", "d", ((def_index[name], i) for i, name in enumerate(pop.before)))
            eligible = mod.at(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=gen.expr(pop.assignment.eligible)),
                                     body=[ast.Return(value=_const(None))], orelse=[]),
                              Site("population", "assignment eligible"))
            score = mod.at(ast.Return(value=gen.expr(pop.assignment.score)), Site("population", "assignment score"))
            mod.function("pair", ["r", "P", "N", "as_of", "D", "seat"],
                         params + indicators + decided + [eligible, score])
            gen.vars.pop()
        ns = mod.build()
        self.before: Callable[..., Any] = ns["before"]
        self.pair: Callable[..., Any] | None = ns.get("pair")
        self._group = ns
        self.sites = mod.sites
        self.filename = mod.filename

    def group(self, name: str) -> Callable[..., Any]:
        return self._group[self.group_names[name]]  # type: ignore[no-any-return]


def _traced_lookup(trace: list[Any], name: str, table: dict[Any, Any], key: Any) -> Any:
    value = _lookup(name, table, key)
    trace.append(("param", name, key, value))
    return value
