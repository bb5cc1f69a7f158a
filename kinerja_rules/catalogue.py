"""The catalogue of diagnostic codes, in English and Indonesian, and the translation of messages.

Every code has one entry in `diagnostics.yaml`: a title, the message templates the checker
emits, help, and an example that triggers it. The checker writes its messages in English
(clients and policy tests match on them); `translate` renders a diagnostic in another
language by matching its message against the code's English templates and filling the
Indonesian one. A message no template matches keeps its English text after the
translated title, so nothing is ever lost in translation.

    python -m kinerja_rules.catalogue > docs/diagnostics.md
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec

from kinerja_rules.errors import Diagnostic, FieldError

LANGUAGES = ("en", "id")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Entry:
    """One diagnostic code: what it means, how it reads, what to do, and how to trigger it."""

    code: str
    title: dict[str, str]
    messages: tuple[dict[str, str], ...]
    help: dict[str, str]
    example: str | None = None
    example_command: tuple[str, ...] = ()
    example_size: int = 0
    example_plugins: str | None = None
    example_files: dict[str, str] = field(default_factory=dict)


@functools.cache
def _data() -> dict[str, Any]:
    from ruamel.yaml import YAML

    text = resources.files("kinerja_rules").joinpath("diagnostics.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


@functools.cache
def entries() -> dict[str, Entry]:
    """Every catalogued code, by code."""
    out = {}
    for code, raw in _data().items():
        if code == "record":
            continue
        out[code] = Entry(code=code, title=raw["title"], messages=tuple(raw["messages"]), help=raw["help"],
                          example=raw.get("example"), example_command=tuple(raw.get("example_command", ())),
                          example_size=int(raw.get("example_size", 0)), example_plugins=raw.get("example_plugins"),
                          example_files=dict(raw.get("example_files", {})))
    return out


def language(value: str | None = None) -> str:
    """The language to speak: from `value` (a code, or an Accept-Language header), else $KINERJA_LANG, else English."""
    for candidate in (value, os.environ.get("KINERJA_LANG")):
        if not candidate:
            continue
        ranked = []
        for part in candidate.split(","):
            tag, _, params = part.strip().partition(";")
            weight = 1.0
            match = re.search(r"q=([0-9.]+)", params)
            if match:
                try:
                    weight = float(match.group(1))
                except ValueError:
                    weight = 0.0
            ranked.append((weight, tag.strip().lower().split("-")[0]))
        for _, tag in sorted(ranked, key=lambda pair: -pair[0]):
            if tag in LANGUAGES:
                return tag
    return DEFAULT_LANGUAGE


@functools.cache
def _pattern(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts = re.split(r"\{(\w+)\}", template)
    regex, names = "", list[str]()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<g{len(names)}>.+?)"
            names.append(part)
    return re.compile(regex, re.S), tuple(names)


def _fill(template: str, en_template: str, text: str) -> str | None:
    pattern, names = _pattern(en_template)
    match = pattern.fullmatch(text)
    if match is None:
        return None
    values: dict[str, str] = {}
    for i, name in enumerate(names):
        values.setdefault(name, match.group(f"g{i}"))
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


# Endings the checker adds to many messages, translated on their own.
_ENDINGS = (
    (re.compile(r"; did you mean (?P<s>.+)\?$"), {"id": "; maksud Anda {s}?"}),
    (re.compile(r" \(in (?P<at>\S+), inherited; (?P<p>'[^']+') extends (?P<t>.+)\)$"),
     {"id": " (di {at}, diwarisi; {p} memperluas {t})"}),
)


def translate_message(code: str, message: str, lang: str) -> str:
    """The message in `lang`; English (or an uncatalogued message) comes back as it is."""
    if lang == DEFAULT_LANGUAGE:
        return message
    endings = ""
    for pattern, templates in _ENDINGS:
        match = pattern.search(message)
        if match:
            message = message[:match.start()]
            endings = templates[lang].format(**match.groupdict()) + endings
    entry = entries().get(code)
    if entry is None:
        return message + endings
    for template in entry.messages:
        filled = _fill(template[lang], template["en"], message)
        if filled is not None:
            return filled + endings
    return f"{entry.title[lang]}: {message}{endings}"


def catalogued(code: str, message: str) -> bool:
    """Whether one of the code's templates reads the message (so it translates fully)."""
    for pattern, _ in _ENDINGS:
        match = pattern.search(message)
        if match:
            message = message[:match.start()]
    entry = entries().get(code)
    return entry is not None and any(_pattern(t["en"])[0].fullmatch(message) for t in entry.messages)


def translate(diagnostic: Diagnostic, lang: str) -> Diagnostic:
    """The diagnostic in `lang`: its message translated, and the code's help as its hint."""
    if lang == DEFAULT_LANGUAGE:
        return diagnostic
    entry = entries().get(diagnostic.code)
    hint = entry.help[lang] if entry is not None else diagnostic.hint
    return msgspec.structs.replace(diagnostic, message=translate_message(diagnostic.code, diagnostic.message, lang),
                                   hint=hint)


def translate_field(error: FieldError, lang: str) -> FieldError:
    """A record's field error in `lang` (records keep English messages everywhere else)."""
    return msgspec.structs.replace(error, message=translate_record_message(error.message, lang))


def translate_record_message(message: str, lang: str) -> str:
    if lang == DEFAULT_LANGUAGE:
        return message
    suffix = ""
    match = _ENDINGS[0][0].search(message)
    if match:
        message, suffix = message[:match.start()], _ENDINGS[0][1][lang].format(**match.groupdict())
    for template in _data()["record"]:
        filled = _fill(template[lang], template["en"], message)
        if filled is not None:
            return filled + suffix
    return message + suffix


def markdown() -> str:
    """docs/diagnostics.md: every code with its title, messages, help and example, in both languages."""
    out = ["# Diagnostics", "",
           "Every code `kinerja check`, `kinerja test` and `/v1/validate` can report, with its meaning,",
           "the messages it prints, what to do, and a policy that triggers it. `--lang id` (or",
           "`KINERJA_LANG=id`, or `Accept-Language: id` on `/v1/validate`) prints the Indonesian text.",
           "Generated from `kinerja_rules/diagnostics.yaml` by `python -m kinerja_rules.catalogue`.", "",
           "Kode-kode di bawah ini juga tersedia dalam bahasa Indonesia: `--lang id`.", ""]
    for code, entry in entries().items():
        out += [f"## {code}: {entry.title['en']}", "", f"*{entry.title['id']}*", ""]
        for template in entry.messages:
            out.append(f"- `{template['en']}`  \n  `{template['id']}`")
        out += ["", entry.help["en"], "", f"*{entry.help['id']}*", ""]
        if entry.example_command:
            out += ["Triggered by:", "", "```sh", "kinerja " + " ".join(entry.example_command), "```", ""]
        elif entry.example_files:
            out.append("Triggered by these files:")
            out.append("")
            for name, text in entry.example_files.items():
                out += [f"`{name}`:", "", "```yaml", text.rstrip(), "```", ""]
        elif entry.example:
            lead = "A policy" if entry.example.startswith("policy:") else \
                "A region (`policy: contoh`, `extends: nasional`) with this"
            if entry.example_size:
                lead += f", padded with comment lines to {entry.example_size:,} bytes"
            if entry.example_plugins:
                lead += f", checked with `--plugins {entry.example_plugins}`"
            lead += ":"
            out += [lead, "", "```yaml", entry.example.rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
