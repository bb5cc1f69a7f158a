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
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec

from kinerja_rules.errors import Diagnostic, FieldError

LANGUAGES = ("en", "id")
DEFAULT_LANGUAGE = "en"
# The catalogue's parts that are not codes.
_SECTIONS = frozenset({"record", "runtime", "problems", "words", "help", "argparse"})


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
        if code in _SECTIONS:
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


# What a placeholder of these names may hold: a place in a record (`groups["Dinas A"].penetapan`) has
# no space, colon or `;` outside quotes.
_SHAPES = {"field_path": r'(?:[^\s;:"]|"[^"]*")+?'}


@functools.cache
def _pattern(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts = re.split(r"\{(\w+)\}", template)
    regex, names = "", list[str]()
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<g{len(names)}>{_SHAPES.get(part, '.+?')})"
            names.append(part)
    return re.compile(regex, re.S), tuple(names)


def _fill(template: str, en_template: str, text: str, lang: str, depth: int = 0,
          own: Mapping[str, str] | None = None) -> str | None:
    """`template` filled with what `en_template` reads in `text` (None when it does not read it);
    each value read is itself translated where a runtime template reads it (a message inside a
    message), to a bounded depth."""
    pattern, names = _pattern(en_template)
    match = pattern.fullmatch(text)
    if match is None:
        return None
    values: dict[str, str] = {}
    for i, name in enumerate(names):
        value = match.group(f"g{i}")
        if depth < _MAX_DEPTH and name in _NESTED:
            value = _nested(value, lang, depth + 1, own)
        values.setdefault(name, value)
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _nested(value: str, lang: str, depth: int, own: Mapping[str, str] | None) -> str:
    """A message inside a message in `lang`: a list of messages (`a; b`) each on its own when each
    reads, else the whole, else as it is."""
    parts = value.split("; ")
    if len(parts) > 1:
        said = [_text(part, lang, depth, own) for part in parts[:_MAX_PARTS]]
        if len(parts) <= _MAX_PARTS and all(p is not None for p in said):
            return "; ".join(p for p in said if p is not None)
    return _text(value, lang, depth, own) or value


_MAX_DEPTH = 3
_MAX_PARTS = 100
_NESTED = frozenset({"message", "reason", "detail", "error"})  # placeholders that hold a message of their own


def _literal(template: str) -> int:
    """How much of a template is its own text: the more, the more particular its reading."""
    return len(re.sub(r"\{\w+\}", "", template))


def _best(templates: Any, lang: str, message: str, depth: int = 0,
          own: Mapping[str, str] | None = None) -> str | None:
    """The message in `lang` by the most particular template that reads it (so `must be a number,
    not {value}` wins over `must be {op} {bound}, not {value}`); None when none does."""
    for template in templates:
        filled = _fill(template[lang], template["en"], message, lang, depth, own)
        if filled is not None:
            return filled
    return None


@functools.cache
def _ranked(section: str) -> tuple[dict[str, str], ...]:
    return tuple(sorted(_data()[section], key=lambda t: -_literal(t["en"])))


def _text(message: str, lang: str, depth: int = 0, own: Mapping[str, str] | None = None) -> str | None:
    """A record's or the runtime's message in `lang`, or None when no template reads it; `own` is a
    policy's own messages (its checks'), English to `lang`."""
    if lang == DEFAULT_LANGUAGE:
        return message
    if own and message in own:
        return own[message]
    return (_best(_ranked("record"), lang, message, depth, own)
            or _best(_ranked("runtime"), lang, message, depth, own))


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
    filled = _best(sorted(entry.messages, key=lambda t: -_literal(t["en"])), lang, message)
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


def translate_field(error: FieldError, lang: str, own: Mapping[str, str] | None = None) -> FieldError:
    """A record's field error in `lang` (records keep English messages everywhere else)."""
    return msgspec.structs.replace(error, message=translate_record_message(error.message, lang, own))


def own_messages(words: Mapping[str, Mapping[str, Mapping[str, str]]], lang: str) -> dict[str, str]:
    """A policy's own messages (each check's, as `CheckedPolicy.words` holds them), English to `lang`."""
    out = {}
    for key, said in words.items():
        message = said.get("message") if key.startswith("check:") else None
        if message and message.get("en") and message.get(lang):
            out[message["en"]] = message[lang]
    return out


def translate_record_message(message: str, lang: str, own: Mapping[str, str] | None = None) -> str:
    if lang == DEFAULT_LANGUAGE:
        return message
    suffix = ""
    match = _ENDINGS[0][0].search(message)
    if match:
        message, suffix = message[:match.start()], _ENDINGS[0][1][lang].format(**match.groupdict())
    return (_text(message, lang, 0, own) or message) + suffix


def record_catalogued(message: str) -> bool:
    """Whether a record's (or the runtime's) message is read by a template, so it translates."""
    match = _ENDINGS[0][0].search(message)
    return _text(message[:match.start()] if match else message, "id") is not None


def template(entry: str, lang: str) -> str:
    """A text the project writes for people (`words:` in the catalogue), in `lang`, as written."""
    said = _data()["words"][entry]
    return str(said.get(lang) or said["en"])


def say(entry: str, lang: str, /, **values: Any) -> str:
    """A text the project writes for people, in `lang`, filled in."""
    return template(entry, lang).format(**values)


def severities(lang: str) -> dict[str, str] | None:
    """The words `Diagnostic.render` names a severity and counts errors with, in `lang` (None: English)."""
    if lang == DEFAULT_LANGUAGE:
        return None
    return {"error": say("severity.error", lang), "warning": say("severity.warning", lang),
            "count": template("severity.count", lang)}


@functools.cache
def help_texts(lang: str) -> dict[str, str]:
    """The command line's help in `lang`, by its English (with argparse's own words under `argparse`)."""
    if lang == DEFAULT_LANGUAGE:
        return {}
    return {entry["en"]: entry[lang] for entry in _data()["help"] if entry.get(lang)}


@functools.cache
def argparse_words(lang: str) -> dict[str, str]:
    """argparse's own words (`usage: `, `options`, its errors) in `lang`, by their English."""
    if lang == DEFAULT_LANGUAGE:
        return {}
    return {entry["en"]: entry[lang] for entry in _data()["argparse"] if entry.get(lang)}


def problem_title(name: str, lang: str, title: str) -> str:
    """The title of a problem type in `lang` (the English `title` where the catalogue has none)."""
    if lang == DEFAULT_LANGUAGE:
        return title
    return str(_data().get("problems", {}).get(name, {}).get(lang) or title)


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
