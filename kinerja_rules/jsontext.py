"""JSON text from outside: keys given twice, which every decoder resolves silently (the last
wins), and text that is not UTF-8, which each decoder release words its own way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec

_PLAIN = msgspec.json.Encoder()


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
