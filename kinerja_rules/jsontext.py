"""JSON text from outside: keys given twice, which every decoder resolves silently (the last
wins), text that is not UTF-8, which each decoder release words its own way, and `read_json`,
the one intake of a record's text (the CLI's inputs, the service's bodies and batches)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

_PLAIN = msgspec.json.Encoder()


def value_at(tree: Any, dotted: str) -> Any:
    """The value at a dotted name of nested objects (`tpp.diterima`), None where there is none."""
    for part in dotted.split("."):
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(part)
    return tree


def not_utf8(raw: bytes) -> str | None:
    """"not UTF-8 (byte N)" for text that is not UTF-8, naming its first bad byte; else None.

    Asked only once a decoder has refused `raw`, so that what a client reads is our wording
    whichever error, with whichever text, the decoder raised.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    return None


def duplicate_key(raw: bytes, decoded: Any) -> tuple[str, str] | None:
    """The path of the first object in `raw` that gives a key twice, and that key; None if none does.

    `decoded` is what `raw` decoded to. Every object member has one `:` outside strings, and
    re-encoding the decoded value writes every string's `:` as it is: equal counts prove that
    no key was dropped, for the cost of one encoding. Text with `\\u` escapes (which may spell
    a `:`), or unequal counts, is searched member by member.
    """
    if b"\\u" not in raw and raw.count(b":") == _PLAIN.encode(decoded).count(b":"):
        return None
    return first_duplicate(raw)


class _Pairs(list[tuple[str, Any]]):
    pass


def _skip(text: str) -> None:
    return None  # only keys matter here: no number is converted (a huge one costs quadratic time)


def first_duplicate(raw: bytes) -> tuple[str, str] | None:
    """The path of the first object in `raw` that gives a key twice, and the key (None if `raw` is not JSON)."""
    return next(duplicates(raw), None)


def duplicates(raw: bytes) -> Iterator[tuple[str, str]]:
    """Every object in `raw` that gives a key twice: its path and the first key it repeats, in order."""
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs, parse_float=_skip, parse_int=_skip,
                          parse_constant=_skip)
    except (ValueError, RecursionError):
        return
    stack: list[tuple[Any, str]] = [(tree, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for key, _ in node:
                if key in seen:
                    yield where, key
                    break
                seen.add(key)
            stack.extend((value, f"{where}.{key}") for key, value in reversed(node))
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{i}]") for i, value in reversed(list(enumerate(node))))


# ---- reading one record's text: the one byte intake ----

_RECORD = msgspec.json.Decoder(float_hook=Decimal)
_AT = re.compile(r"^(?P<message>.*?)(?: - at (?:`key` in )?`\$(?P<path>[^`]*)`)?$", re.S)
_NAMED = re.compile(r"(?:required|unknown) field `(?P<name>[^`]+)`")


class Bounds(NamedTuple):
    """How deep a record may nest and how long its lists may be (None: as deep as Python can read)."""

    max_depth: int | None = None
    max_list_items: int | None = None

    def fits(self, raw: bytes) -> bool:
        """Whether `raw` is certainly within these bounds, judged from its bytes alone.

        Nesting deeper than N needs more than N brackets, and a list longer than N needs at
        least N commas; counting them is far cheaper than walking the decoded value.
        """
        return ((self.max_depth is None or raw.count(b"{") + raw.count(b"[") <= self.max_depth)
                and (self.max_list_items is None or raw.count(b",") < self.max_list_items))


UNBOUNDED = Bounds()


class Unread(NamedTuple):
    """Why a JSON text is not a record: the problem's name (as the service's problem types say it),
    the place in the record (`""`: the whole), and the reason."""

    problem: str
    path: str
    reason: str

    def place(self, prefix: str = "") -> str:
        """Where the problem is, under `prefix` (the record's own place, such as `records[3]`)."""
        if not prefix or not self.path:
            return prefix or self.path
        return prefix + self.path if self.path.startswith("[") else f"{prefix}.{self.path}"

    def text(self, prefix: str = "") -> str:
        """The reason, after its place."""
        place = self.place(prefix)
        return f"{place}: {self.reason}" if place else self.reason


def read_json(raw: bytes, bounds: Bounds = UNBOUNDED) -> Any:
    """The value of one record's JSON text, or the `Unread` saying why it is none: not JSON, not
    UTF-8, a value Python cannot hold, past `bounds`, or an object giving a key twice. Never raises."""
    try:
        value = _RECORD.decode(raw)
    except RecursionError:
        depth = bounds.max_depth
        return Unread("too-deep", "", "nests too deeply" if depth is None else f"nests deeper than {depth} levels")
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as exc:
        if (bad := not_utf8(raw)) is not None:
            return Unread("malformed-json", "", bad)
        path, text = field_path(str(exc)[:300])
        return Unread("invalid-body", path, text)
    if not bounds.fits(raw):
        shape = check_shape(value, bounds)
        if shape is not None:
            path, reason = shape
            return Unread("too-deep" if "deeper" in reason else "list-too-long", path.lstrip("."), reason)
    found = duplicate_key(raw, value)
    if found is not None:
        where, key = found
        return Unread("duplicate-key", where.lstrip("."), f"gives the key {key!r} more than once")
    return value


def check_shape(value: Any, bounds: Bounds) -> tuple[str, str] | None:
    """The first place in `value` (`""`: the whole) that nests too deeply or holds too long a list,
    and what is wrong there; None when it keeps within `bounds`."""
    max_depth, max_items = bounds.max_depth, bounds.max_list_items
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, where, depth = stack.pop()
        if max_depth is not None and depth > max_depth:
            return where, f"nests deeper than {max_depth} levels"
        if type(node) is dict:
            for key, item in node.items():
                if type(item) is dict or type(item) is list:
                    stack.append((item, f"{where}.{key}", depth + 1))
        elif type(node) is list:
            if max_items is not None and len(node) > max_items:
                return where, f"has {len(node)} items; at most {max_items} are accepted"
            for i, item in enumerate(node):
                if type(item) is dict or type(item) is list:
                    stack.append((item, f"{where}[{i}]", depth + 1))
    return None


def field_path(message: str) -> tuple[str, str]:
    """Split a msgspec error into (field path, message): `$.records[2].x` -> `records[2].x`."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches any text
    text, path = match.group("message"), (match.group("path") or "").lstrip(".")
    path = path.split("[...]")[0]  # msgspec elides the inside of untyped values
    named = _NAMED.search(text)
    if named is not None:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return path, text
