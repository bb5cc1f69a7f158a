"""The words a policy gives people: `label` and `penjelasan` of outputs, rules and parameters, and of
an enumeration's values, in Indonesian and English, with `{name}` placeholders.

Each placeholder must name something a letter can show: an output, an input field, a parameter or a
definition. The texts are gathered by what they describe (`output:tpp.diterima`,
`value:predikat.baik`), each language it gives, for the letter to read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kinerja_rules._suggest import did_you_mean
from kinerja_rules.checking.model import Context
from kinerja_rules.documents import Item, Words
from kinerja_rules.types import Kind, Type

LANGUAGES = ("id", "en")
PIECE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

Texts = dict[str, dict[str, dict[str, str]]]
"""What a text describes (`output:tpp.diterima`) -> `label` or `penjelasan` -> language -> text."""


def placeholders(text: str) -> list[str] | str:
    """The names `text`'s placeholders hold, or what is wrong with its braces."""
    names = []
    for match in PIECE.finditer(text):
        piece = match.group(0)
        if piece in ("{{", "}}"):
            continue
        if match.group(1) is None:
            return f"a lone {piece!r} (write {piece * 2} for the brace itself)"
        name = match.group(1).strip()
        if not NAME.fullmatch(name):
            return f"{{{match.group(1)}}} is not a name (write {{{{ and }}}} for braces)"
        names.append(name)
    return names


def input_paths(fields: Iterable[tuple[str, Type]], prefix: str = "") -> Iterable[str]:
    """Every field of the record by its dotted path (into records, not into lists)."""
    for name, kind in fields:
        path = f"{prefix}{name}"
        yield path
        if kind.kind == Kind.RECORD:
            yield from input_paths(kind.fields, path + ".")


def check_words(ctx: Context, items: dict[str, dict[str, Item]], known: set[str],
                enums: dict[str, tuple[str, ...]]) -> Texts:
    """The policy's texts for people, each placeholder checked against `known` names, and each
    enumeration's labels against its `enums` values."""
    texts: Texts = {}
    for section, kind in (("outputs", "output"), ("rules", "rule"), ("parameters", "parameter"),
                          ("dapat_diubah", "input"), ("inputs", "input")):
        for name, item in items[section].items():
            for field in ("label", "penjelasan"):
                _take(ctx, texts, known, f"{kind}:{name}", f"{kind} {name!r}", item, field,
                      getattr(item.spec, field, None))
    for name, item in items["checks"].items():  # a check's message in each language (no placeholders)
        message = getattr(item.spec, "message", None)
        if isinstance(message, Words):
            given = {lang: text for lang in LANGUAGES if (text := getattr(message, lang))}
            texts[f"check:{name}"] = {"message": given}
    for name, item in items["types"].items():
        for field in ("label", "penjelasan"):
            values = enums.get(name)
            for value, words in (getattr(item.spec, field, None) or {}).items():
                if values is None or value not in values:
                    ctx.error("E148", f"type {name!r} has no value {value!r} to give a {field}"
                              + (did_you_mean(value, list(values)) if values else " (it is not an enumeration)"),
                              item.source.key_span((*item.path, field, value)))
                    continue
                _take(ctx, texts, known, f"value:{name}.{value}", f"value {value!r} of {name!r}", item, field, words,
                      (value,))
    return texts


def _take(ctx: Context, texts: Texts, known: set[str], key: str, what: str, item: Item, field: str, given: Any,
          sub: tuple[str, ...] = ()) -> None:
    """Keep one text (each language it gives), its placeholders checked."""
    if given is None:
        return
    by_language = {"id": given} if isinstance(given, str) else {
        lang: getattr(given, lang) for lang in LANGUAGES if isinstance(given, Words) and getattr(given, lang)}
    for lang, text in by_language.items():
        path = (*item.path, field, *sub, *(() if isinstance(given, str) else (lang,)))
        found = placeholders(text)
        if isinstance(found, str):
            ctx.error("E146", f"the {field} of {what}: {found}", item.source.value_span(path))
            continue
        for name in found:
            if name not in known:
                ctx.error("E147", f"the {field} of {what} names {{{name}}}, which is not an output, input, "
                          f"parameter or definition{did_you_mean(name, sorted(known))}", item.source.value_span(path))
    texts.setdefault(key, {})[field] = dict(by_language)
