"""The static types of the language and the written form policy authors use for them.

Written forms: `integer`, `decimal`, `percent`, `money`, `boolean`, `text`, `date`,
`list of T`, `optional T`, and the name of an enumeration or record declared under
`types:` (or `enum` / `record` with inline `values` / `fields`).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Kind(StrEnum):
    """What a type is. The scalars are written by their names; the rest are built from parts."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    PERCENT = "percent"
    MONEY = "money"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"
    ENUM = "enum"  # a fixed set of values (a named enumeration, or `enum {a, b}`)
    LIST = "list"
    RECORD = "record"
    NULL = "null"  # the type of the literal null
    ANY = "any"  # unknown: after an error, or an empty list
    NUMBER = "number"  # any numeric kind (function parameters)


NUMERIC = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT, Kind.MONEY})
SCALARS = frozenset({Kind.INTEGER, Kind.DECIMAL, Kind.PERCENT, Kind.MONEY, Kind.BOOLEAN, Kind.TEXT, Kind.DATE})


class Type(msgspec.Struct, frozen=True, kw_only=True):
    """The one representation of a type, for inputs, parameters, definitions, tables, outputs and plugins."""

    kind: Kind
    name: str = ""
    values: tuple[str, ...] = ()
    item: Type | None = None
    fields: tuple[tuple[str, Type], ...] = ()
    optional: bool = False
    repeating: bool = False  # a number that may be a repeating decimal (it divides or takes a mean)
    highest: str = ""  # an ordered enumeration: "first" or "last", the end of `values` that ranks highest

    def rank(self) -> dict[str, int]:
        """An ordered enumeration's values by rank, higher ranking higher."""
        last = len(self.values) - 1
        return {v: (i if self.highest == "last" else last - i) for i, v in enumerate(self.values)}

    def __str__(self) -> str:
        if self.kind == Kind.NULL:
            return "null"
        if self.kind == Kind.ANY and self.name == "quota":  # a quota's limits (a parameter's type)
            return f"quota of {self.item}"
        if self.kind == Kind.LIST:
            base = f"list of {self.item}"
        elif self.kind == Kind.ENUM and not self.name:
            base = f"enum {{{', '.join(self.values)}}}"
        elif self.kind in (Kind.ENUM, Kind.RECORD):
            base = self.name or self.kind
        else:
            base = self.kind
        return f"optional {base}" if self.optional else base

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC or self.kind == Kind.NUMBER

    def field(self, name: str) -> Type | None:
        for fname, ftype in self.fields:
            if fname == name:
                return ftype
        return None

    def required(self) -> Type:
        return msgspec.structs.replace(self, optional=False) if self.optional else self

    def maybe(self) -> Type:
        if self.kind == Kind.NULL or self.optional:
            return self
        return msgspec.structs.replace(self, optional=True)


def scalar(kind: str, optional: bool = False) -> Type:
    return Type(kind=Kind(kind), optional=optional)


INTEGER = scalar("integer")
DECIMAL = scalar("decimal")
PERCENT = scalar("percent")
MONEY = scalar("money")
BOOLEAN = scalar("boolean")
TEXT = scalar("text")
DATE = scalar("date")
NULL = Type(kind=Kind.NULL, optional=True)
ANY = Type(kind=Kind.ANY)
NUMBER = Type(kind=Kind.NUMBER)
ROUNDING = Type(kind=Kind.ENUM, name="rounding",
                values=("half_up", "half_even", "half_down", "down", "up", "floor", "ceiling"))


def list_of(item: Type) -> Type:
    return Type(kind=Kind.LIST, item=item)


def exact(a: Type) -> Type:
    """The type without the `repeating` mark, here and in a list's items."""
    if a.kind == Kind.LIST and a.item is not None and a.item.repeating:
        return msgspec.structs.replace(a, item=exact(a.item), repeating=False)
    return msgspec.structs.replace(a, repeating=False) if a.repeating else a


def repeats(a: Type) -> bool:
    """Whether a value of this type (or an item of this list) may be a repeating decimal."""
    return a.repeating or (a.kind == Kind.LIST and a.item is not None and repeats(a.item))


def repeating(a: Type, flag: bool = True) -> Type:
    """The type marked as possibly repeating (numbers only)."""
    if not flag or a.repeating or a.kind not in (Kind.DECIMAL, Kind.PERCENT, Kind.MONEY, Kind.NUMBER):
        return a
    return msgspec.structs.replace(a, repeating=True)


def carry(target: Type, source: Type) -> Type:
    """`target`, marked repeating wherever `source` is (a declared type takes its expression's mark)."""
    if target.kind == Kind.LIST and source.kind == Kind.LIST and target.item is not None and source.item is not None:
        item = carry(target.item, source.item)
        return target if item is target.item else msgspec.structs.replace(target, item=item)
    return repeating(target, source.repeating)


def same(a: Type, b: Type) -> bool:
    """Whether two types are the same, ignoring optionality."""
    return exact(a.required()) == exact(b.required())


def widest(a: Type, b: Type) -> Type | None:
    """The numeric type both operands fit in, or None when they don't mix."""
    if not (a.numeric and b.numeric):
        return None
    kinds = {a.kind, b.kind}
    flag = a.repeating or b.repeating
    if Kind.MONEY in kinds:
        return repeating(MONEY, flag)
    if kinds == {Kind.INTEGER}:
        return INTEGER
    if kinds == {Kind.PERCENT}:
        return repeating(PERCENT, flag)
    return repeating(DECIMAL, flag)


def assignable(source: Type, target: Type) -> bool:
    """Whether a value of `source` may flow where `target` is expected."""
    if target.kind == Kind.ANY or source.kind == Kind.ANY:
        return True
    if source.kind == Kind.NULL:
        return target.optional
    if source.optional and not target.optional:
        return False
    if source.numeric and target.numeric:
        if target.kind in (Kind.NUMBER, Kind.DECIMAL, Kind.PERCENT):
            return source.kind != Kind.MONEY or target.kind == Kind.NUMBER
        if target.kind == Kind.MONEY:
            return source.kind in (Kind.MONEY, Kind.INTEGER)
        return source.kind == Kind.INTEGER  # target integer
    if source.kind != target.kind:
        return False
    if source.kind == Kind.LIST:
        assert source.item is not None and target.item is not None
        return source.item.kind == Kind.ANY or assignable(source.item, target.item)
    if source.kind == Kind.ENUM:
        return source.name == target.name and source.values == target.values
    if source.kind == Kind.RECORD:  # structural: every field the target needs, of a fitting type
        have = dict(source.fields)
        return all(name in have and assignable(have[name], ftype) for name, ftype in target.fields)
    return True


class TypeSyntaxError(ValueError):
    pass


def _split_fields(body: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in body:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


_BRACED = {Kind.RECORD: "record", Kind.ENUM: "enum"}


def parse_type(text: str, named: dict[str, Type]) -> Type:
    """Read a written type; the one reader of types, wherever a policy or a plugin writes one.

    `integer` … `date`, a name declared under `types:`, `list of T`, `optional T`,
    `record {name: T, …}` and `enum {a, b, …}`.
    """
    stripped = text.strip()
    if not stripped:
        raise TypeSyntaxError("empty type")
    if stripped.startswith("optional ") or stripped == "optional":
        return parse_type(stripped[len("optional"):], named).maybe()
    words = stripped.split()
    if words[0] == "list" and len(words) >= 2 and words[1] == "of":
        return list_of(parse_type(stripped[len("list"):].strip()[len("of"):], named))
    for kind, word in _BRACED.items():
        if stripped.startswith(word) and stripped[len(word):].lstrip().startswith("{"):
            if not stripped.endswith("}"):
                raise TypeSyntaxError(f"cannot read type {text.strip()!r}; close the braces: {word} {{ … }}")
            body = stripped[stripped.index("{") + 1:-1]
            return _record(body, named) if kind is Kind.RECORD else _enum(body)
    if len(words) == 1:
        word = words[0]
        if word in SCALARS:
            return scalar(word)
        if word in named:
            return named[word]
        if word in ("enum", "record", "list"):
            example = {"enum": "enum {a, b}", "record": "record {name: text}", "list": "list of integer"}[word]
            raise TypeSyntaxError(f"{word!r} needs its parts: write e.g. {example!r}")
        from kinerja_rules._suggest import did_you_mean

        known = sorted(SCALARS | set(named) | {"list of …", "optional …", "record {…}", "enum {…}"})
        raise TypeSyntaxError(f"unknown type {word!r}{did_you_mean(word, known)}")
    raise TypeSyntaxError(f"cannot read type {text.strip()!r}; "
                          "write e.g. 'decimal', 'list of text', 'optional integer'")


def _record(body: str, named: dict[str, Type]) -> Type:
    fields = []
    for part in _split_fields(body):
        name, sep, ftype = part.partition(":")
        if not sep or not name.strip().isidentifier():
            raise TypeSyntaxError(f"cannot read record field {part.strip()!r}; write 'name: type'")
        fields.append((name.strip(), parse_type(ftype, named)))
    return Type(kind=Kind.RECORD, name="record", fields=tuple(fields))


def _enum(body: str) -> Type:
    values = tuple(v.strip() for v in body.split(","))
    if not values or any(not v.isidentifier() for v in values) or len(set(values)) != len(values):
        raise TypeSyntaxError(f"cannot read enumeration {{{body.strip()}}}; write distinct names: enum {{a, b}}")
    return Type(kind=Kind.ENUM, values=values)
