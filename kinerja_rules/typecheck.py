"""Type-check expressions against a policy's names.

Checking is bidirectional: an expected type flows into sub-expressions, which is how
a bare `sangat_baik` resolves to a value of the `predikat` enumeration where one is
expected. Every node's type and every name's meaning are recorded for the compiler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kinerja_rules import nodes as n
from kinerja_rules import types as t
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.functions import AGGREGATES, FunctionSpec, parse_date
from kinerja_rules.types import Kind, Type


class TypeProblem(Exception):
    def __init__(self, message: str, pos: n.Pos, code: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.code = code
        self.hint = hint


@dataclass(frozen=True)
class Keyed:
    """The type of a keyed parameter: indexed by `key`, holding `value`."""

    key: Type
    value: Type


@dataclass(frozen=True)
class TableSig:
    params: tuple[tuple[str, Type], ...]
    returns: Type
    broken: bool = False  # its declaration has errors of its own; calls are not checked against it


# What a name means, recorded per Name node for the compiler.
Resolution = tuple[str,
                   Any]  # ('input'|'def'|'param'|'table'|'var'|'enum'|'as_of'|'func'|'indicator'|'population', payload)


@dataclass
class Annotations:
    types: dict[int, Type] = field(default_factory=dict)
    names: dict[int, Resolution] = field(default_factory=dict)
    coerce: set[int] = field(default_factory=set)  # integer nodes to widen to Decimal
    rational_args: set[tuple[str, int]] = field(default_factory=set)  # (table, input) given a repeating value
    keep: list[Any] = field(default_factory=list)  # keeps annotated nodes alive (ids stay unique)

    def __getstate__(self) -> dict[str, Any]:
        """The notes with each node named by its place among the nodes kept, not by its `id()`, so
        that a checked policy travels to another process (pickled whole, its nodes with it) and is
        compiled there without being parsed and checked again."""
        nodes: list[Any] = []
        place: dict[int, int] = {}
        stack: list[Any] = list(reversed(self.keep))
        while stack:
            node = stack.pop()
            if type(node) is tuple or type(node) is list:  # the items of a node's field, nested or not
                stack.extend(reversed(node))
            elif isinstance(node, n.Node) and id(node) not in place:
                place[id(node)] = len(nodes)
                nodes.append(node)
                stack.extend(getattr(node, name) for name in reversed(node.__struct_fields__))
        missing = (self.types.keys() | self.names.keys() | self.coerce) - place.keys()
        if missing:  # a note on a node outside every kept expression: it could not be found again
            raise TypeError(f"{len(missing)} annotated node(s) are not among the nodes kept")
        return {"nodes": nodes, "types": {place[k]: v for k, v in self.types.items()},
                "names": {place[k]: v for k, v in self.names.items()}, "coerce": {place[k] for k in self.coerce},
                "rational_args": self.rational_args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        nodes = state["nodes"]
        self.keep = nodes
        self.types = {id(nodes[k]): v for k, v in state["types"].items()}
        self.names = {id(nodes[k]): v for k, v in state["names"].items()}
        self.coerce = {id(nodes[k]) for k in state["coerce"]}
        self.rational_args = state["rational_args"]


class Scope:
    """The names an expression can see; `definition` checks definitions on demand."""

    def __init__(
        self,
        inputs: dict[str, Type],
        params: dict[str, Type | Keyed],
        tables: dict[str, TableSig],
        functions: dict[str, FunctionSpec],
        indicators: dict[str, Type],
        definition: Callable[[str], Type | None],
        definition_names: Callable[[], list[str]],
        population: Type | None = None,
        quotas: frozenset[str] = frozenset(),
    ) -> None:
        self.inputs = inputs
        self.params = params
        self.tables = tables
        self.functions = functions
        self.indicators = indicators
        self.definition = definition
        self.definition_names = definition_names
        self.population = population  # what a population run gives a record (`population.rank`), null alone
        self.quotas = quotas  # parameters that hold a quota's limits: only the population stage reads them

    def nested_fields(self) -> dict[str, str]:
        """Each field inside an input record, by its own name, with its dotted path (the first one found)."""
        found: dict[str, str] = {}

        def walk(prefix: str, kind: Type, depth: int) -> None:
            for fname, ftype in kind.required().fields:
                found.setdefault(fname, f"{prefix}.{fname}")
                if ftype.kind == Kind.RECORD and depth < 3:
                    walk(f"{prefix}.{fname}", ftype, depth + 1)

        for name, kind in self.inputs.items():
            if kind.kind == Kind.RECORD:
                walk(name, kind, 1)
        return {k: v for k, v in found.items() if k not in self.inputs}

    def all_names(self) -> list[str]:
        return [*self.inputs, *self.params, *self.tables, *self.functions, *self.indicators,
                *self.definition_names(), "as_of", *(["population"] if self.population is not None else [])]


_ARITH = {"+", "-", "*", "/"}
_LITERAL_TYPES = {Kind.INTEGER: t.INTEGER, Kind.DECIMAL: t.DECIMAL, Kind.PERCENT: t.PERCENT, Kind.TEXT: t.TEXT,
                  Kind.BOOLEAN: t.BOOLEAN, Kind.NULL: t.NULL}
_ORDER = {"<", "<=", ">", ">="}


def path_of(node: n.Expr) -> str | None:
    """`a.b.c` for a chain of names and fields, else None (used for null narrowing)."""
    if isinstance(node, n.Name):
        return node.name
    if isinstance(node, n.Attr):
        base = path_of(node.obj)
        return f"{base}.{node.name}" if base else None
    return None


def _null_tests(cond: n.Expr) -> tuple[list[str], list[str]]:
    """Paths known non-null when `cond` is true, and when it is false."""
    if isinstance(cond, n.Binary) and cond.op in ("=", "!="):
        side = cond.left if _is_null(cond.right) else cond.right if _is_null(cond.left) else None
        p = path_of(side) if side is not None else None
        if p:
            return ([p], []) if cond.op == "!=" else ([], [p])
    if isinstance(cond, n.Binary) and cond.op == "and":
        lt, _ = _null_tests(cond.left)
        rt, _ = _null_tests(cond.right)
        return lt + rt, []
    if isinstance(cond, n.Binary) and cond.op == "or":
        _, lf = _null_tests(cond.left)
        _, rf = _null_tests(cond.right)
        return [], lf + rf
    if isinstance(cond, n.Unary) and cond.op == "not":
        tr, fa = _null_tests(cond.operand)
        return fa, tr
    return [], []


def _is_null(node: n.Expr) -> bool:
    return isinstance(node, n.Literal) and node.kind == Kind.NULL


class Checker:
    def __init__(self, scope: Scope, notes: Annotations, name: str = "", replaces: str | None = None) -> None:
        self.scope = scope
        self.notes = notes
        self.deps: set[tuple[str, str]] = set()
        self.name = name  # the definition or output being checked
        self.replaces = replaces  # the key of the parent's version it overrides, for parent(name)

    # ---- entry ----
    def check(self, node: n.Expr, expected: Type | None = None,
              env: dict[str, Type] | None = None) -> Type:
        result = self._check(node, expected, env or {})
        self.notes.types[id(node)] = result
        self.notes.keep.append(node)
        if expected is not None and result.kind == Kind.INTEGER and expected.kind in (Kind.DECIMAL, Kind.PERCENT,
                                                                                      Kind.MONEY, Kind.NUMBER):
            self.notes.coerce.add(id(node))
        return result

    def expect(self, node: n.Expr, expected: Type, env: dict[str, Type], what: str) -> Type:
        got = self.check(node, expected, env)
        if not t.assignable(got, expected):
            hint = ""
            if got.optional and not expected.optional:
                hint = "the value may be null: give a fallback with `??` or test `!= null` first"
            raise TypeProblem(f"{what} must be {expected}, not {got}", node.pos, "E102", hint)
        return got

    # ---- dispatch ----
    def _check(self, node: n.Expr, expected: Type | None, env: dict[str, Type]) -> Type:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node, expected, env)  # type: ignore[no-any-return]

    def _literal(self, node: n.Literal, expected: Type | None, env: dict[str, Type]) -> Type:
        if node.kind == Kind.TEXT and expected is not None and expected.kind == Kind.ENUM:
            return self._enum_value(node.value, expected, node)
        return _LITERAL_TYPES[node.kind]

    def _enum_value(self, value: str, enum: Type, node: n.Expr) -> Type:
        if value not in enum.values:
            raise TypeProblem(f"{value!r} is not a value of {enum.name or 'the enumeration'}"
                              f"{did_you_mean(value, enum.values)}", node.pos, "E103",
                              f"its values: {', '.join(enum.values)}")
        self.notes.names[id(node)] = ("enum", value)
        return enum.required()

    def _name(self, node: n.Name, expected: Type | None, env: dict[str, Type]) -> Type:  # noqa: C901
        name = node.name
        if name in env:
            self.notes.names[id(node)] = ("var", name)
            return env[name]
        if expected is not None and expected.kind == Kind.ENUM and name in expected.values:
            return self._enum_value(name, expected, node)
        narrowed = env.get("\0" + name)
        scope = self.scope
        if name == "as_of":
            self.notes.names[id(node)] = ("as_of", None)
            return t.DATE
        if name == "population" and scope.population is not None:
            self.notes.names[id(node)] = ("population", None)
            self.deps.add(("population", ""))
            return narrowed or scope.population
        if name in scope.quotas:
            raise TypeProblem(f"parameter {name!r} holds the limits of a population quota; only the quota "
                              "reads it", node.pos, "E104")
        if name in scope.indicators:
            self.notes.names[id(node)] = ("indicator", name)
            self.deps.add(("indicator", name))
            return scope.indicators[name]
        def_type = scope.definition(name)
        if def_type is not None:
            self.notes.names[id(node)] = ("def", name)
            self.deps.add(("def", name))
            return narrowed or def_type
        if name in scope.inputs:
            self.notes.names[id(node)] = ("input", name)
            self.deps.add(("input", name))
            return narrowed or scope.inputs[name]
        if name in scope.params:
            ptype = scope.params[name]
            if isinstance(ptype, Keyed):
                raise TypeProblem(f"parameter {name!r} is a table keyed by {ptype.key}; "
                                  f"look a value up with {name}[key]", node.pos, "E104")
            self.notes.names[id(node)] = ("param", name)
            self.deps.add(("param", name))
            return ptype
        if name in scope.tables or name in scope.functions:
            raise TypeProblem(f"{name!r} is a {'table' if name in scope.tables else 'function'}; call it "
                              f"with {name}(…)", node.pos, "E104")
        symbols = list(expected.values) if expected and expected.kind == Kind.ENUM else []
        candidates = scope.all_names() + list(env) + symbols
        nested = scope.nested_fields()  # `kelas` is found as `jabatan.kelas`
        suggestion = did_you_mean(name, [c for c in candidates if c[:1] != chr(0)] + list(nested), nested)
        hint = ""
        if expected is not None and expected.kind == Kind.TEXT or expected is None and name[:1].isupper():
            hint = f'if you meant the text {name}, write it in quotes: "{name}"'
        elif expected is None:
            hint = "a bare word is an enumeration value only where the type expects one"
        raise TypeProblem(f"unknown name {name!r}{suggestion}", node.pos, "E105", hint)

    def _attr(self, node: n.Attr, expected: Type | None, env: dict[str, Type]) -> Type:
        p = path_of(node)
        if p is not None and "\0" + p in env:
            self.check(node.obj, None, env)
            return env["\0" + p]
        obj = self.check(node.obj, None, env)
        if obj.optional:
            raise TypeProblem(f"{p or 'this value'} may be null, so it has no field {node.name!r} for sure",
                              node.pos, "E106", "test `!= null` first, or use `??`")
        if obj.kind == Kind.ANY or obj.kind == Kind.LIST and obj.item is not None and obj.item.kind == Kind.ANY:
            return obj  # a value whose declaration was wrong (already an error): no follow-on error
        if obj.kind == Kind.RECORD:
            ftype = obj.field(node.name)
            if ftype is None:
                raise TypeProblem(f"{obj.name or 'the record'} has no field {node.name!r}"
                                  f"{did_you_mean(node.name, [f for f, _ in obj.fields])}", node.pos, "E107")
            return ftype
        if obj.kind == Kind.LIST and obj.item is not None and obj.item.kind == Kind.RECORD:
            ftype = obj.item.field(node.name)
            if ftype is None:
                raise TypeProblem(f"items of this list have no field {node.name!r}"
                                  f"{did_you_mean(node.name, [f for f, _ in obj.item.fields])}", node.pos, "E107")
            return t.list_of(ftype)
        raise TypeProblem(f"a {obj} has no fields (looked for {node.name!r})", node.pos, "E107")

    def _index(self, node: n.Index, expected: Type | None, env: dict[str, Type]) -> Type:
        if isinstance(node.obj,
                      n.Name) and node.obj.name not in env and isinstance(self.scope.params.get(node.obj.name), Keyed):
            keyed = self.scope.params[node.obj.name]
            assert isinstance(keyed, Keyed)
            self.notes.names[id(node.obj)] = ("param", node.obj.name)
            self.deps.add(("param", node.obj.name))
            self.expect(node.index, keyed.key, env, f"the key of {node.obj.name!r}")
            return keyed.value
        obj = self.check(node.obj, None, env)
        if obj.kind == Kind.LIST and not obj.optional and obj.item is not None:
            self.expect(node.index, t.INTEGER, env, "a list index")
            return obj.item
        raise TypeProblem(f"a {obj} cannot be indexed", node.pos, "E108")

    def _call(self, node: n.Call, expected: Type | None, env: dict[str, Type]) -> Type:  # noqa: C901
        name = node.func
        scope = self.scope
        if name == "parent" and "parent" not in scope.functions:
            return self._parent(node)
        if name in AGGREGATES and len(node.args) == 1:
            source = self.check(node.args[0], None, env)
            if source.kind != Kind.LIST or source.optional:
                raise TypeProblem(f"{name}(…) of one argument needs a list, not {source}", node.args[0].pos, "E109")
            assert source.item is not None
            return self._aggregate_type(name, source.item, node)
        if name in scope.tables:
            sig = scope.tables[name]
            self.deps.add(("table", name))
            if sig.broken:
                for arg in node.args:
                    self.check(arg, None, env)
                return t.ANY
            self._arity(node, len(sig.params), len(sig.params))
            for i, ((pname, ptype), arg) in enumerate(zip(sig.params, node.args, strict=False)):
                if self.expect(arg, ptype, env, f"argument {pname!r} of table {name!r}").repeating:
                    self.notes.rational_args.add((name, i))  # its cells then compare exact rationals
            return sig.returns
        spec = scope.functions.get(name)
        if spec is None:
            known = list(scope.functions) + list(scope.tables) + sorted(AGGREGATES - {"list"})
            raise TypeProblem(f"unknown function {name!r}{did_you_mean(name, known)}", node.pos, "E110")
        self.notes.names[id(node)] = ("func", spec)
        self.deps.add(("func", name))
        count = len(spec.params)
        self._arity(node, count, None if spec.variadic else count)
        number: Type | None = None
        arg_types = []
        for i, arg in enumerate(node.args):
            pname, ptype_text = spec.params[min(i, count - 1)]
            if ptype_text == "number":
                got = self.check(arg, None, env)
                if not got.numeric or got.optional:
                    raise TypeProblem(f"argument {pname!r} of {name}() must be a number, not {got}", arg.pos, "E102")
                number = got if number is None else t.widest(number, got)
                arg_types.append(got)
            else:
                ptype = _param_type(ptype_text)
                got = self.expect(arg, ptype, env, f"argument {pname!r} of {name}()")
            if spec.plugin != "builtins" and t.repeats(got):
                raise TypeProblem(f"argument {pname!r} of {name}() may be a repeating decimal (it divides or takes "
                                  "a mean), and a plugin needs an exact value", arg.pos, "E121",
                                  "round it first, e.g. round(…, 4, half_up)")
        if name == "date" and node.args and isinstance(node.args[0], n.Literal):
            try:
                parse_date(node.args[0].value)
            except (ValueError, TypeError):
                raise TypeProblem(f"{node.args[0].value!r} is not a date (YYYY-MM-DD)", node.args[0].pos,
                                  "E111") from None
        if spec.returns == "number":
            assert number is not None
            if name in ("floor", "ceil") and number.kind != Kind.MONEY:
                return t.INTEGER
            if name == "round" and number.kind == Kind.INTEGER:
                return t.DECIMAL
            if name in ("round", "floor", "ceil"):
                number = t.exact(number)
            for arg, got in zip(node.args, arg_types, strict=False):
                if got.kind == Kind.INTEGER and number.kind != Kind.INTEGER:
                    self.notes.coerce.add(id(arg))
            return number
        return _param_type(spec.returns)

    def _parent(self, node: n.Call) -> Type:
        """`parent(name)`: the value the parent policy's formula for the definition or output `name`
        gives (computed with this policy's values), from any definition, rule or output."""
        named = path_of(node.args[0]) if len(node.args) == 1 else None
        if named is None:
            raise TypeProblem("parent(…) names one inherited definition or output, such as parent(tpp_diterima)",
                              node.pos, "E122")
        key = self.replaces if self.replaces is not None and named == self.name else None
        if key is None:
            key = next((k for k in self.scope.definition_names() if k.split("@")[0] == named and "@" in k), None)
        if key is None:
            raise TypeProblem(f"parent({named}): the parent policy has no definition or output {named!r}", node.pos,
                              "E122", "parent(…) reads what the policy this one extends computes")
        found = self.scope.definition(key)
        if found is None:
            raise TypeProblem(f"the parent's {named!r} has no value to read", node.pos, "E122")
        self.notes.names[id(node)] = ("def", key)
        self.deps.add(("def", key))
        return found

    def _arity(self, node: n.Call, low: int, high: int | None) -> None:
        count = len(node.args)
        if count < low or (high is not None and count > high):
            want = f"{low}" if high == low else f"at least {low}"
            raise TypeProblem(f"{node.func}() takes {want} argument{'s' if low != 1 else ''}, not {count}",
                              node.pos, "E112")

    def _aggregate_type(self, func: str, item: Type, node: n.Expr) -> Type:
        if func == "count":
            return t.INTEGER
        if func == "list":
            return t.list_of(item)
        if func in ("any", "all"):
            if item.kind != Kind.BOOLEAN or item.optional:
                raise TypeProblem(f"{func}() needs booleans, not {item}", node.pos, "E109")
            return t.BOOLEAN
        if func in ("min", "max") and item.kind == Kind.DATE and not item.optional:
            return item  # the earliest or latest date
        if not item.numeric or item.optional:
            raise TypeProblem(f"{func}() needs numbers{' or dates' if func in ('min', 'max') else ''}, "
                              f"not {item}", node.pos, "E109")
        if func == "mean":
            return t.repeating(t.MONEY if item.kind == Kind.MONEY else t.DECIMAL)
        return item

    def _aggregate(self, node: n.Aggregate, expected: Type | None, env: dict[str, Type]) -> Type:
        if node.func not in AGGREGATES:
            raise TypeProblem(f"{node.func!r} is not an aggregate; use one of "
                              f"{', '.join(sorted(AGGREGATES - {'list'}))}", node.pos, "E110")
        passes = node.func == "list" and isinstance(node.elem, n.Name) and node.elem.name == node.var
        # [c for c in [...] where …] keeps items as they are: the list it gives is the type expected of its source
        source = self.check(node.source, expected if passes and expected is not None and expected.kind == Kind.LIST
                            else None, env)
        if source.kind != Kind.LIST or source.optional or source.item is None:
            raise TypeProblem(f"`for {node.var} in …` needs a list, not {source}", node.source.pos, "E109",
                              "an optional list needs a fallback: `(xs ?? [])`" if source.optional else "")
        if node.var in self.scope.inputs or self.scope.definition(node.var) is not None:
            raise TypeProblem(f"loop variable {node.var!r} hides a name of the policy; pick another", node.pos, "E113")
        inner = {**env, node.var: source.item}
        if node.where is not None:
            self.expect(node.where, t.BOOLEAN, inner, "a `where` filter")
        elem = self.check(node.elem, None, inner)
        return self._aggregate_type(node.func, elem, node.elem)

    def _listexpr(self, node: n.ListExpr, expected: Type | None, env: dict[str, Type]) -> Type:
        item_expected = expected.item if expected is not None and expected.kind == Kind.LIST else None
        item: Type | None = item_expected
        for it in node.items:
            got = self.check(it, item, env)
            merged = got if item is None else _unify(item, got)
            if merged is None:
                raise TypeProblem(f"list items must share a type: {item} and {got}", it.pos, "E114")
            item = merged
        return t.list_of(item or t.ANY)

    def _recordexpr(self, node: n.RecordExpr, expected: Type | None, env: dict[str, Type]) -> Type:
        """A record literal: against an expected record type, each field its declared type (a missing
        field only when optional); otherwise the record of the fields' own types."""
        names = [name for name, _ in node.fields]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise TypeProblem(f"field {twice!r} is given twice", node.pos, "E107")
        if expected is None or expected.kind != Kind.RECORD or not expected.fields:
            return Type(kind=Kind.RECORD, name="record",
                        fields=tuple((name, self.check(value, None, env)) for name, value in node.fields))
        declared = dict(expected.fields)
        for name, value in node.fields:
            if name not in declared:
                raise TypeProblem(f"{expected.name or 'the record'} has no field {name!r}"
                                  f"{did_you_mean(name, declared)}", value.pos, "E107")
            got = self.expect(value, declared[name], env, f"field {name!r}")
            if got.repeating and not declared[name].repeating:
                raise TypeProblem(f"field {name!r} may be a repeating decimal (its expression divides or takes a "
                                  "mean), so its digits would depend on where it was cut", value.pos, "E132",
                                  "round it explicitly, e.g. `round(x / 3, 2, half_up)`")
        missing = [name for name, kind in expected.fields if name not in names and not kind.optional]
        if missing:
            raise TypeProblem(f"the record needs {', '.join(missing)}", node.pos, "E107")
        return expected.required()

    def _unary(self, node: n.Unary, expected: Type | None, env: dict[str, Type]) -> Type:
        if node.op == "not":
            return self.expect(node.operand, t.BOOLEAN, env, "the operand of `not`")
        got = self.check(node.operand, None, env)
        if not got.numeric or got.optional:
            raise TypeProblem(f"cannot negate a {got}", node.pos, "E102")
        return got

    def _pair(self, left: n.Expr, right: n.Expr, env: dict[str, Type]) -> tuple[Type, Type]:
        """Check two operands so that an enum value on either side takes the other's type."""
        if self._bare(left, env) and not self._bare(right, env):
            rt = self.check(right, None, env)
            return self.check(left, rt.required() if rt.kind != Kind.NULL else None, env), rt
        lt = self.check(left, None, env)
        hint = lt.required() if lt.kind != Kind.NULL else None
        if lt.kind == Kind.LIST and lt.item is not None and isinstance(right, n.ListExpr):
            hint = lt
        return lt, self.check(right, hint, env)

    def _bare(self, node: n.Expr, env: dict[str, Type]) -> bool:
        if isinstance(node, n.Literal) and node.kind == Kind.TEXT:
            return True
        return (isinstance(node, n.Name) and node.name not in env and node.name not in self.scope.all_names())

    def _binary(self, node: n.Binary, expected: Type | None, env: dict[str, Type]) -> Type:  # noqa: C901
        op = node.op
        if op in ("and", "or"):
            self.expect(node.left, t.BOOLEAN, env, f"the left of `{op}`")
            inner = env
            if op == "and":
                inner = {**env, **self._narrow(node.left, env, True)}
            else:
                inner = {**env, **self._narrow(node.left, env, False)}
            self.expect(node.right, t.BOOLEAN, inner, f"the right of `{op}`")
            return t.BOOLEAN
        if op == "??":
            lt = self.check(node.left, expected, env)
            rt = self.check(node.right, lt.required() if lt.kind != Kind.NULL else expected, env)
            merged = _unify(lt.required(), rt)
            if merged is None:
                raise TypeProblem(f"`??` needs two values of one type, not {lt} and {rt}", node.pos, "E114")
            if rt.kind == Kind.INTEGER and merged.kind != Kind.INTEGER:
                self.notes.coerce.add(id(node.right))
            return merged
        if op in ("in", "notin"):
            if isinstance(node.right, n.ListExpr) or not self._bare(node.left, env):
                lt = self.check(node.left, None, env)
                rt = self.check(node.right, t.list_of(lt.required()), env)
            else:
                rt = self.check(node.right, None, env)
                lt = self.check(node.left, rt.item if rt.kind == Kind.LIST else None, env)
            if rt.kind != Kind.LIST or rt.optional or rt.item is None:
                raise TypeProblem(f"`in` needs a list on its right, not {rt}", node.right.pos, "E115")
            if rt.item.kind != Kind.ANY and _unify(lt.required(), rt.item) is None:
                raise TypeProblem(f"cannot look for a {lt} in a list of {rt.item}", node.pos, "E115")
            return t.BOOLEAN
        lt, rt = self._pair(node.left, node.right, env)
        if Kind.ANY in (lt.kind, rt.kind):  # a value whose declaration was wrong (already an error)
            return t.BOOLEAN if op in ("=", "!=") or op in _ORDER else t.ANY
        if op in ("=", "!="):
            if lt.kind == Kind.NULL or rt.kind == Kind.NULL:
                return t.BOOLEAN
            if _unify(lt.required(), rt.required()) is None:
                raise TypeProblem(f"cannot compare a {lt} with a {rt}", node.pos, "E116")
            return t.BOOLEAN
        for side, st in ((node.left, lt), (node.right, rt)):
            if st.optional:
                raise TypeProblem(f"this {st} may be null", side.pos, "E102",
                                  "give a fallback with `??` or test `!= null` first")
        if op in _ORDER:
            if (lt.numeric and rt.numeric) or (lt.kind == rt.kind and lt.kind in (Kind.DATE, Kind.TEXT)):
                return t.BOOLEAN
            if lt.kind == rt.kind == Kind.ENUM and t.same(lt, rt):
                if lt.highest:
                    return t.BOOLEAN
                raise TypeProblem(f"cannot order a {lt} against a {rt}: the enumeration is not ordered", node.pos,
                                  "E116", f"declare which end ranks highest: types: {{{lt.name or 'name'}: "
                                          "{values: [...], highest: first}}")
            raise TypeProblem(f"cannot order a {lt} against a {rt}", node.pos, "E116")
        assert op in _ARITH
        if op == "+" and lt.kind == rt.kind == Kind.TEXT:
            return t.TEXT
        if not (lt.numeric and rt.numeric):
            raise TypeProblem(f"`{op}` needs numbers, not {lt} and {rt}", node.pos, "E117")
        kinds = (lt.kind, rt.kind)
        if op == "*" and kinds == (Kind.MONEY, Kind.MONEY):
            raise TypeProblem("money times money has no meaning; multiply money by a number", node.pos, "E117")
        if op == "/":
            flag = lt.repeating or rt.repeating or not _terminating_literal(node.right)
            if "money" in kinds:
                return t.repeating(t.DECIMAL if kinds == (Kind.MONEY, Kind.MONEY) else t.MONEY, flag)
            return t.repeating(t.DECIMAL, flag)
        if op == "*" and kinds == (Kind.PERCENT, Kind.PERCENT):
            return t.repeating(t.DECIMAL, lt.repeating or rt.repeating)
        result = t.widest(lt, rt)
        assert result is not None
        return result

    def _between(self, node: n.Between, expected: Type | None, env: dict[str, Type]) -> Type:
        vt = self.check(node.value, None, env)
        for bound in (node.low, node.high):
            bt = self.check(bound, None, env)
            ok = (vt.numeric and bt.numeric) or (vt.kind == bt.kind == Kind.DATE)
            if not ok or vt.optional or bt.optional:
                raise TypeProblem(f"`between` compares numbers or dates, not {vt} and {bt}", bound.pos, "E116")
        return t.BOOLEAN

    def _narrow(self, cond: n.Expr, env: dict[str, Type], truth: bool) -> dict[str, Type]:
        when_true, when_false = _null_tests(cond)
        out: dict[str, Type] = {}
        for p in when_true if truth else when_false:
            found = self._path_type(p, env)
            if found is not None:
                out["\0" + p] = found.required()
        return out

    def _path_type(self, p: str, env: dict[str, Type]) -> Type | None:
        head, *rest = p.split(".")
        current: Type | None = env.get(head) or self.scope.inputs.get(head) or self.scope.definition(head) or (
            self.scope.population if head == "population" else None)
        for part in rest:
            if current is None or current.kind != Kind.RECORD:
                return None
            current = current.required().field(part)
        return current

    def _if(self, node: n.If, expected: Type | None, env: dict[str, Type]) -> Type:
        self.expect(node.cond, t.BOOLEAN, env, "an `if` condition")
        then_env = {**env, **self._narrow(node.cond, env, True)}
        else_env = {**env, **self._narrow(node.cond, env, False)}
        if expected is None and self._bare(node.then, then_env) and not self._bare(node.orelse, else_env):
            b = self.check(node.orelse, None, else_env)  # a bare word first: it takes the other branch's type
            a = self.check(node.then, b.required() if b.kind != Kind.NULL else None, then_env)
        else:
            a = self.check(node.then, expected, then_env)
            b = self.check(node.orelse, expected if expected is not None else (a if a.kind != Kind.NULL else None),
                           else_env)
        return self._join([(node.then, a), (node.orelse, b)], node)

    def _join(self, branches: list[tuple[n.Expr, Type]], node: n.Expr) -> Type:
        result: Type | None = None
        for _, bt in branches:
            merged = bt if result is None else _unify(result, bt)
            if merged is None:
                raise TypeProblem(f"the branches give different types: {result} and {bt}", node.pos, "E118")
            result = merged
        assert result is not None
        for expr, bt in branches:
            if bt.kind == Kind.INTEGER and result.kind in (Kind.DECIMAL, Kind.MONEY, Kind.PERCENT):
                self.notes.coerce.add(id(expr))
        return result

    def _when(self, node: n.When, expected: Type | None, env: dict[str, Type]) -> Type:
        branches: list[tuple[n.Expr, Type]] = []
        later: list[tuple[int, n.Expr, dict[str, Type]]] = []  # bare words, checked once a branch gives the type
        current = dict(env)
        for cond, value in node.branches:
            self.expect(cond, t.BOOLEAN, current, "a `when` condition")
            inner = {**current, **self._narrow(cond, current, True)}
            current = {**current, **self._narrow(cond, current, False)}
            if expected is None and self._bare(value, inner):
                later.append((len(branches), value, inner))
                branches.append((value, t.NULL))
                continue
            vt = self.check(value, expected, inner)
            branches.append((value, vt))
            if expected is None and vt.kind != Kind.NULL:
                expected = vt
        if node.orelse is not None:
            if expected is None and later and self._bare(node.orelse, current):
                later.append((len(branches), node.orelse, current))
                branches.append((node.orelse, t.NULL))
            else:
                ot = self.check(node.orelse, expected, current)
                branches.append((node.orelse, ot))
                if expected is None and ot.kind != Kind.NULL:
                    expected = ot
        for at, value, inner in later:
            branches[at] = (value, self.check(value, expected.required() if expected is not None else None, inner))
        if node.orelse is None and not self._exhaustive(node, env):
            raise TypeProblem("this `when` has no `else` and can fall through when no condition holds",
                              node.pos, "E119", "add `else …`, or cover every value of the enumeration tested")
        return self._join(branches, node)

    def _exhaustive(self, node: n.When, env: dict[str, Type]) -> bool:
        subject: str | None = None
        covered: set[Any] = set()
        domain: tuple[Any, ...] = ()
        for cond, _ in node.branches:
            if not isinstance(cond, n.Binary) or cond.op not in ("=", "in"):
                return False
            p = path_of(cond.left)
            st = self.notes.types.get(id(cond.left))
            if p is None or st is None or (subject is not None and p != subject):
                return False
            subject = p
            if st.kind == Kind.ENUM and not st.optional:
                domain = st.values
            elif st.kind == Kind.BOOLEAN and not st.optional:
                domain = (True, False)
            else:
                return False
            values = cond.right.items if isinstance(cond.right, n.ListExpr) else (cond.right,)
            for v in values:
                res = self.notes.names.get(id(v))
                if res is not None and res[0] == "enum":
                    covered.add(res[1])
                elif isinstance(v, n.Literal) and v.kind == Kind.BOOLEAN:
                    covered.add(v.value)
                elif isinstance(v, n.Literal) and v.kind == Kind.TEXT:
                    covered.add(v.value)
                else:
                    return False
        return bool(domain) and set(domain) <= covered


def _terminating_literal(node: n.Expr) -> bool:
    """Whether dividing by this expression always gives a finite decimal (`x / 100`, `x / 4`)."""
    from kinerja_rules.numbers import terminating

    return (isinstance(node, n.Literal) and node.kind in (Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT)
            and terminating(node.value))


def _param_type(text: str) -> Type:
    if text == "rounding":
        return t.ROUNDING
    if text == "any":
        return t.ANY
    return t.parse_type(text, {"rounding": t.ROUNDING})


def _unify(a: Type, b: Type) -> Type | None:
    """The one type both fit, for branches and list items, or None."""
    if a.kind == Kind.NULL:
        return b.maybe()
    if b.kind == Kind.NULL:
        return a.maybe()
    optional = a.optional or b.optional
    if a.kind == Kind.ANY:
        return b.maybe() if optional else b
    if b.kind == Kind.ANY:
        return a.maybe() if optional else a
    if a.numeric and b.numeric:
        w = t.widest(a, b)
        return w.maybe() if (w is not None and optional) else w
    if a.kind == Kind.LIST and b.kind == Kind.LIST:
        assert a.item is not None and b.item is not None
        item = _unify(a.item, b.item)
        return None if item is None else (t.list_of(item).maybe() if optional else t.list_of(item))
    if t.same(a, b):
        return a.maybe() if optional else a.required()
    return None
