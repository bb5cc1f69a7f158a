"""The static types of the language and the written form policy authors use for them.

Written forms: `integer`, `decimal`, `percent`, `money`, `boolean`, `text`, `date`,
`list of T`, `optional T`, and the name of an enumeration or record declared under
`types:` (or `enum` / `record` with inline `values` / `fields`).
"""

from __future__ import annotations

import msgspec

NUMERIC = frozenset({"integer", "decimal", "percent", "money"})
SCALARS = frozenset({"integer", "decimal", "percent", "money", "boolean", "text", "date"})


class Type(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # a scalar kind, or enum | list | record | null | any | number
    name: str = ""
    values: tuple[str, ...] = ()
    item: Type | None = None
    fields: tuple[tuple[str, Type], ...] = ()
    optional: bool = False
    repeating: bool = False  # a number that may be a repeating decimal (it divides or takes a mean)

    def __str__(self) -> str:
        if self.kind == "null":
            return "null"
        if self.kind == "list":
            base = f"list of {self.item}"
        elif self.kind in ("enum", "record"):
            base = self.name or self.kind
        else:
            base = self.kind
        return f"optional {base}" if self.optional else base

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC or self.kind == "number"

    def field(self, name: str) -> Type | None:
        for fname, ftype in self.fields:
            if fname == name:
                return ftype
        return None

    def required(self) -> Type:
        return msgspec.structs.replace(self, optional=False) if self.optional else self

    def maybe(self) -> Type:
        if self.kind == "null" or self.optional:
            return self
        return msgspec.structs.replace(self, optional=True)


def scalar(kind: str, optional: bool = False) -> Type:
    return Type(kind=kind, optional=optional)


INTEGER = scalar("integer")
DECIMAL = scalar("decimal")
PERCENT = scalar("percent")
MONEY = scalar("money")
BOOLEAN = scalar("boolean")
TEXT = scalar("text")
DATE = scalar("date")
NULL = Type(kind="null", optional=True)
ANY = Type(kind="any")
NUMBER = Type(kind="number")
ROUNDING = Type(kind="enum", name="rounding",
                values=("half_up", "half_even", "half_down", "down", "up", "floor", "ceiling"))


def list_of(item: Type) -> Type:
    return Type(kind="list", item=item)


def exact(a: Type) -> Type:
    """The type without the `repeating` mark, here and in a list's items."""
    if a.kind == "list" and a.item is not None and a.item.repeating:
        return msgspec.structs.replace(a, item=exact(a.item), repeating=False)
    return msgspec.structs.replace(a, repeating=False) if a.repeating else a


def repeats(a: Type) -> bool:
    """Whether a value of this type (or an item of this list) may be a repeating decimal."""
    return a.repeating or (a.kind == "list" and a.item is not None and repeats(a.item))


def repeating(a: Type, flag: bool = True) -> Type:
    """The type marked as possibly repeating (numbers only)."""
    if not flag or a.repeating or a.kind not in ("decimal", "percent", "money", "number"):
        return a
    return msgspec.structs.replace(a, repeating=True)


def carry(target: Type, source: Type) -> Type:
    """`target`, marked repeating wherever `source` is (a declared type takes its expression's mark)."""
    if target.kind == "list" and source.kind == "list" and target.item is not None and source.item is not None:
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
    if "money" in kinds:
        return repeating(MONEY, flag)
    if kinds == {"integer"}:
        return INTEGER
    if kinds == {"percent"}:
        return repeating(PERCENT, flag)
    return repeating(DECIMAL, flag)


def assignable(source: Type, target: Type) -> bool:
    """Whether a value of `source` may flow where `target` is expected."""
    if target.kind == "any" or source.kind == "any":
        return True
    if source.kind == "null":
        return target.optional
    if source.optional and not target.optional:
        return False
    if source.numeric and target.numeric:
        if target.kind in ("number", "decimal", "percent"):
            return source.kind != "money" or target.kind == "number"
        if target.kind == "money":
            return source.kind in ("money", "integer")
        return source.kind == "integer"  # target integer
    if source.kind != target.kind:
        return False
    if source.kind == "list":
        assert source.item is not None and target.item is not None
        return source.item.kind == "any" or assignable(source.item, target.item)
    if source.kind == "enum":
        return source.name == target.name and source.values == target.values
    if source.kind == "record":  # structural: every field the target needs, of a fitting type
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


def parse_type(text: str, named: dict[str, Type]) -> Type:
    """Turn a written type (`optional list of decimal`, `record {a: integer}`) into a Type."""
    stripped = text.strip()
    head = stripped.removeprefix("optional").strip()
    if head.startswith("record") and head.endswith("}") and "{" in head:
        body = head[head.index("{") + 1:-1]
        fields = []
        for part in _split_fields(body):
            name, sep, ftype = part.partition(":")
            if not sep or not name.strip().isidentifier():
                raise TypeSyntaxError(f"cannot read record field {part.strip()!r}; write 'name: type'")
            fields.append((name.strip(), parse_type(ftype, named)))
        record = Type(kind="record", name="record", fields=tuple(fields))
        return record.maybe() if stripped.startswith("optional") else record
    words = text.split()
    if not words:
        raise TypeSyntaxError("empty type")
    optional = False
    if words[0] == "optional":
        optional = True
        words = words[1:]
    if len(words) >= 2 and words[0] == "list" and words[1] == "of":
        item = parse_type(" ".join(words[2:]), named)
        t = list_of(item)
    elif len(words) == 1:
        word = words[0]
        if word in SCALARS:
            t = scalar(word)
        elif word in named:
            t = named[word]
        else:
            from kinerja_rules._suggest import did_you_mean

            known = sorted(SCALARS | set(named) | {"list of …", "optional …"})
            raise TypeSyntaxError(f"unknown type {word!r}{did_you_mean(word, known)}")
    else:
        raise TypeSyntaxError(f"cannot read type {text!r}; write e.g. 'decimal', 'list of text', 'optional integer'")
    return t.maybe() if optional else t
