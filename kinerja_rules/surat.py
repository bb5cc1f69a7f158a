"""The letter (surat penjelasan): one decision explained to the employee it is for, in plain
Indonesian (or English), as a printable page and, through Chromium, a PDF.

Every word comes from the policy (`label:` and `penjelasan:` of outputs, rules, parameters and
enumeration values, `checking.words`), every value from the decision and its trace: the predikat and
why, the TPP line by line with each cut and its article, what is withheld or paid in arrears, the
follow-ups, the nearest better result (`whatif`), and until when the employee may object. No code
is shown: a value without a label shows its name, never nothing.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules.checking.words import PIECE, input_paths
from kinerja_rules.decision import Decision, PolicyRef
from kinerja_rules.engine import Engine
from kinerja_rules.errors import KinerjaError
from kinerja_rules.keberatan import WIT, Deadline, Desk
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.recording import ReplayError
from kinerja_rules.store import DecisionRecord
from kinerja_rules.types import Kind, Type
from kinerja_rules.whatif import DEFAULT_SECONDS, goal_of, what_if

LANGUAGES = ("id", "en")
MONTHS = {"id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
                 "November", "Desember"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                 "November", "December")}
PDF_SECONDS = 60.0
PAID = "tpp.diterima"  # what a nearest goal's TPP line shows (a policy without it: none)

# the letter's own words (everything else comes from the policy)
SAYS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Surat Penjelasan Keputusan Kinerja dan TPP", "to": "Kepada", "nip": "NIP", "unit": "Unit kerja",
        "post": "Jabatan", "class": "kelas", "period": "Periode", "policy": "Kebijakan", "version": "versi",
        "decision": "Nomor keputusan", "made": "Tanggal keputusan",
        "intro": "Surat ini menjelaskan keputusan kinerja dan tambahan penghasilan pegawai (TPP) Anda: "
                 "apa hasilnya, mengapa, dan apa yang dapat Anda lakukan.",
        "rating": "Predikat kinerja", "how": "Bagaimana predikat ini diperoleh", "matrix": "Matriks predikat",
        "penetapan": "Predikat ditetapkan oleh pimpinan unit dalam penetapan nomor {nomor} tanggal {tanggal} "
                     "(NIP {oleh}).",
        "penetapan_why": "Alasan penetapan", "tpp": "Tambahan penghasilan pegawai (TPP)", "amount": "Jumlah",
        "component": "Komponen", "ceiling": "Pagu", "paid": "Diterima", "why_cut": "Mengapa TPP dipotong atau "
        "ditangguhkan", "no_cut": "Tidak ada potongan atau penangguhan bulan ini.", "follow": "Tindak lanjut",
        "no_follow": "Tidak ada tindak lanjut.", "basis": "Dasar hukum", "other": "Keterangan lain",
        "goal": "Yang dapat meningkatkan hasil Anda", "goal_none": "Dalam batas yang dapat diubah, tidak ada "
        "perubahan yang mencapai {goal}.", "goal_reach": "Untuk mencapai {goal}:", "goal_unknown": "Perhitungan "
        "perubahan terdekat belum selesai dalam waktu yang tersedia.",
        "object": "Jika Anda tidak sependapat", "object_until": "Anda dapat mengajukan keberatan kepada atasan "
        "pejabat penilai paling lambat {batas} ({hari} hari {jenis} sejak {sejak}, {sumber}).",
        "object_open": "Anda dapat mengajukan keberatan kepada atasan pejabat penilai dalam {hari} hari {jenis} "
                       "sejak keputusan ini Anda terima.",
        "kalender": "kalender", "kerja": "kerja", "pemberitahuan": "tanggal keputusan ini Anda terima",
        "dicatat": "tanggal keputusan ini dicatat",
        "object_filed": "Keberatan Anda diajukan tanggal {tanggal}; statusnya: {status}.",
        "final": "Putusan atas keberatan bersifat final.", "yes": "ya", "no": "tidak", "none": "tidak ada",
        "before": "dari", "after": "menjadi", "more": "bertambah", "item": "butir ke-",
    },
    "en": {
        "title": "Letter explaining your performance and TPP decision", "to": "To", "nip": "NIP",
        "unit": "Unit", "post": "Post", "class": "class", "period": "Period", "policy": "Policy",
        "version": "version", "decision": "Decision number", "made": "Decision date",
        "intro": "This letter explains the decision on your performance and your performance allowance (TPP): "
                 "what it is, why, and what you can do.",
        "rating": "Performance rating", "how": "How this rating was reached", "matrix": "Rating matrix",
        "penetapan": "The rating was fixed by the unit's leader in decision number {nomor} of {tanggal} "
                     "(NIP {oleh}).",
        "penetapan_why": "Reason given", "tpp": "Performance allowance (TPP)", "amount": "Amount",
        "component": "Component", "ceiling": "Ceiling", "paid": "Paid", "why_cut": "Why TPP is cut or withheld",
        "no_cut": "Nothing is cut or withheld this month.", "follow": "Follow-up", "no_follow": "No follow-up.",
        "basis": "Legal basis", "other": "Other information",
        "goal": "What would improve your result", "goal_none": "Within what can change, no change reaches {goal}.",
        "goal_reach": "To reach {goal}:", "goal_unknown": "The nearest change was not found in the time available.",
        "object": "If you disagree", "object_until": "You may object (keberatan) to your rater's superior until "
        "{batas} ({hari} {jenis} days from {sejak}, {sumber}).",
        "object_open": "You may object (keberatan) to your rater's superior within {hari} {jenis} days of "
                       "receiving this decision.",
        "kalender": "calendar", "kerja": "working", "pemberitahuan": "when you received this decision",
        "dicatat": "when this decision was recorded",
        "object_filed": "Your keberatan was filed on {tanggal}; its status: {status}.",
        "final": "The putusan on a keberatan is final.", "yes": "yes", "no": "no", "none": "none",
        "before": "from", "after": "to", "more": "up by", "item": "item ",
    },
}


class SuratError(KinerjaError):
    """A letter that cannot be made (a PDF without Chromium, Chromium failing or out of time)."""


@dataclass
class Goal:
    """The nearest better result (`whatif`), as the letter tells it."""

    output: str
    target: Any
    reachable: str  # "true", "false" or "unknown"
    changes: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)  # the decision with the changes made
    before: dict[str, Any] = field(default_factory=dict)  # the decision as it is


@dataclass
class Letter:
    """What the letter needs besides the policy: the decision (with its trace), the record it was
    made from, its id and date when recorded, its keberatan deadline and any keberatan, a goal."""

    decision: Decision
    record: Mapping[str, Any]
    decision_id: str | None = None
    made_at: dt.datetime | None = None
    deadline: Deadline | None = None
    keberatan: Mapping[str, Any] | None = None
    goal: Goal | None = None


class Words:
    """The policy's words in one language, and values written for people in it."""

    def __init__(self, policy: CompiledPolicy, lang: str) -> None:
        self.policy = policy
        self.lang = lang if lang in LANGUAGES else "id"
        self.says = SAYS[self.lang]
        self.texts = policy.checked.words
        self.types = _types(policy)

    def text(self, key: str, field_name: str) -> str | None:
        """A text of the policy in this language, else the other; None when neither is given."""
        given = self.texts.get(key, {}).get(field_name, {})
        return given.get(self.lang) or next((given[lang] for lang in LANGUAGES if given.get(lang)), None)

    def label(self, kind: str, name: str) -> str:
        return self.text(f"{kind}:{name}", "label") or name.rsplit(".", 1)[-1].replace("_", " ")

    def value(self, value: Any, kind: Type | None) -> str:  # noqa: C901 (one case per kind of value)
        """`value` written for a person, as its type says."""
        if value is None:
            return self.says["none"]
        base = kind.kind if kind is not None else None
        if base == Kind.LIST and isinstance(value, list):
            return ", ".join(self.value(v, kind.item if kind else None) for v in value) or self.says["none"]
        if base == Kind.ENUM and kind is not None:
            named = self.text(f"value:{kind.name}.{value}", "label") if kind.name else None
            return named or str(value).replace("_", " ")
        if isinstance(value, bool):
            return self.says["yes" if value else "no"]
        if base == Kind.MONEY:
            return "Rp " + self.number(Decimal(value), 0)
        if base == Kind.PERCENT:
            return self.number(Decimal(value) * 100, None) + "%"
        if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
            return self.number(Decimal(str(value)), None)
        if isinstance(value, dt.date):
            return self.date(value)
        if isinstance(value, str) and base == Kind.DATE:
            try:
                return self.date(dt.date.fromisoformat(value))
            except ValueError:
                return value
        if isinstance(value, dict):
            fields = dict(kind.fields) if kind is not None and kind.kind == Kind.RECORD else {}
            return "; ".join(f"{k.replace('_', ' ')}: {self.value(v, fields.get(k))}" for k, v in value.items())
        if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
            return self.month(value)
        return str(value)

    def number(self, value: Decimal, places: int | None) -> str:
        """Indonesian writes 4.500.000,25; English 4,500,000.25."""
        if places is not None:
            value = value.quantize(Decimal(1).scaleb(-places))
        elif value == value.to_integral_value():
            value = value.quantize(Decimal(1))
        else:
            value = value.normalize()
        whole, _, part = f"{abs(value):f}".partition(".")
        groups = f"{int(whole):,}"
        thousands, point = (".", ",") if self.lang == "id" else (",", ".")
        text = groups.replace(",", thousands) + (point + part if part else "")
        return ("-" if value < 0 else "") + text

    def date(self, day: dt.date) -> str:
        month = MONTHS[self.lang][day.month - 1]
        return f"{day.day} {month} {day.year}"

    def month(self, periode: str) -> str:
        year, month = periode.split("-")
        return f"{MONTHS[self.lang][int(month) - 1]} {year}"

    def fill(self, text: str, values: Mapping[str, Any]) -> str:
        """`text` with each `{name}` written as its value (unknown ones as the name itself)."""
        def one(match: re.Match[str]) -> str:
            piece = match.group(0)
            if piece in ("{{", "}}"):
                return piece[0]
            name = (match.group(1) or "").strip()
            if name not in values:
                return name
            return self.value(values[name], self.types.get(name))
        return PIECE.sub(one, text)


def _types(policy: CompiledPolicy) -> dict[str, Type]:
    """The type of each name a text may place: outputs, input fields, parameters, definitions."""
    found = policy.derived.get("surat.types")
    if found is None:
        checked = policy.checked
        found = {}
        fields = dict(checked.input.type.fields)
        for path in input_paths(fields.items()):
            kind: Type | None = None
            for part in path.split("."):
                kind = (fields if kind is None else dict(kind.fields)).get(part)
                if kind is None:
                    break
            if kind is not None:
                found[path] = kind
        found.update({name: p.type for name, p in checked.params.items()})
        found.update({name: d.type for name, d in checked.definitions.items()})
        found.update({name: o.type for name, o in checked.outputs.items()})
        policy.derived["surat.types"] = found
    return dict(found)


def _at(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


_MISSING = object()


def scope(policy: CompiledPolicy, decision: Decision, record: Mapping[str, Any]) -> dict[str, Any]:
    """The values a text may place: the definitions the trace holds, the parameters in force, the
    record's fields and the outputs (later ones win: an output and a definition may share a name)."""
    values: dict[str, Any] = {}
    trace = decision.trace or {}
    for name, entry in (trace.get("definitions") or {}).items():
        if isinstance(entry, Mapping) and "value" in entry:
            values[name] = entry["value"]
    try:
        params, _ = policy.params_for(decision.as_of)
        values.update(zip(policy.checked.params, params, strict=True))
    except KinerjaError:
        pass
    for path in _types(policy):
        for tree in (record, decision.outputs):
            found = _at(tree, path)
            if found is not _MISSING:
                values[path] = found
    return values


def render(policy: CompiledPolicy, letter: Letter, lang: str = "id") -> str:  # noqa: C901
    """The letter as one self-contained HTML page (no script, nothing fetched)."""
    w = Words(policy, lang)
    s = w.says
    decision, record = letter.decision, letter.record
    values = scope(policy, decision, record)
    checked = policy.checked
    outputs = checked.outputs
    cites: list[str] = []
    e = html.escape

    def cite(text: str) -> str:
        if not text:
            return ""
        shown = policy.cite_text(text)
        if shown not in cites:
            cites.append(shown)
        return f'<span class="cite">{e(s["basis"])}: {e(shown)}</span>'

    def output_value(name: str) -> Any:
        found = _at(decision.outputs, name)
        return None if found is _MISSING else found

    def shown(name: str) -> str:
        return e(w.value(output_value(name), outputs[name].type))

    def explain(key: str) -> str:
        text = w.text(key, "penjelasan")
        return f'<p class="why">{e(w.fill(text, values))}</p>' if text else ""

    parts: list[str] = []
    head = [(s["nip"], record.get("nip")), (s["unit"], record.get("unit_kerja")), (s["period"], _periode(w, record))]
    post = record.get("jabatan") if isinstance(record.get("jabatan"), Mapping) else None
    if post:
        jenis = values.get("jabatan.jenis")
        kind = w.types.get("jabatan.jenis")
        head.append((s["post"], f"{w.value(jenis, kind)}" + (f", {s['class']} {post['kelas']}"
                                                              if post.get("kelas") is not None else "")))
    head.append((s["policy"], f"{policy.title} ({s['version']} {policy.version})"))
    if letter.decision_id:
        head.append((s["decision"], letter.decision_id))
    if letter.made_at is not None:  # the day in WIT, as the keberatan deadline counts it
        made = letter.made_at if letter.made_at.tzinfo else letter.made_at.replace(tzinfo=dt.UTC)
        head.append((s["made"], w.date(made.astimezone(WIT).date())))
    parts.append('<table class="head">' + "".join(
        f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in head if v not in (None, "")) + "</table>")
    parts.append(f'<p>{e(s["intro"])}</p>')

    # 1. the predikat and why
    groups = _groups(outputs)
    rating = next((n for n in outputs if n.endswith(".predikat") and outputs[n].type.kind == Kind.ENUM), None)
    section = [f'<h2>1. {e(s["rating"])}</h2>']
    if rating is not None:
        section.append(f'<p class="big" id="predikat">{shown(rating)}</p>{explain(f"output:{rating}")}')
        section.append(cite(outputs[rating].cite))
        facts = [n for n in groups.get(rating.split(".")[0], []) if n != rating]
        section.append(_facts(w, facts, outputs, output_value, s["how"]))
        section.append(_matrix(w, policy, decision, outputs[rating].type, cite))
    penetapan = (decision.population or {}).get("penetapan") if isinstance(decision.population, Mapping) else None
    if isinstance(penetapan, Mapping):
        section.append("<p>" + e(s["penetapan"].format(nomor=penetapan.get("nomor", ""), oleh=penetapan.get(
            "ditetapkan_oleh", ""), tanggal=w.value(penetapan.get("tanggal"), Type(kind=Kind.DATE)))) + "</p>")
        if penetapan.get("alasan"):
            section.append(f'<p class="why">{e(s["penetapan_why"])}: {e(str(penetapan["alasan"]))}</p>')
    parts.append('<section>' + "".join(section) + "</section>")

    # 2. TPP line by line
    fired = _fired(decision)
    tpp = groups.get("tpp", [])
    if tpp:
        rows = []
        for name in tpp:
            kind = outputs[name].type
            if kind.kind == Kind.MONEY:
                rows.append(f'<tr><th>{e(w.label("output", name))}{explain(f"output:{name}")}</th>'
                            f'<td class="money" data-output="{e(name)}">{shown(name)}</td>'
                            f'<td>{cite(outputs[name].cite)}</td></tr>')
        section = [f'<h2>2. {e(s["tpp"])}</h2><table class="tpp">{"".join(rows)}</table>']
        for name in tpp:
            kind = outputs[name].type
            if kind.kind == Kind.LIST and kind.item is not None and kind.item.kind == Kind.RECORD:
                section.append(_records(w, name, output_value(name) or [], kind.item))
        cuts = [r for r in fired if any(o.startswith("tpp.") for o in r[1])]
        section.append(f'<h3>{e(s["why_cut"])}</h3>')
        section.append(_rules(w, policy, cuts, values, cite) if cuts else f'<p>{e(s["no_cut"])}</p>')
        parts.append('<section>' + "".join(section) + "</section>")

    # 3. the follow-ups
    follow = [r for r in fired if not any(o.startswith("tpp.") for o in r[1])]
    others = [n for n in groups.get("tindak_lanjut", []) if not outputs[n].rules and output_value(n) not in (None, [])]
    section = [f'<h2>3. {e(s["follow"])}</h2>']
    if follow:
        section.append(_rules(w, policy, follow, values, cite))
    for name in others:
        section.append(f'<div class="item"><b>{e(w.label("output", name))}</b>: {shown(name)}'
                       f'{explain(f"output:{name}")}{cite(outputs[name].cite)}</div>')
    if not follow and not others:
        section.append(f'<p>{e(s["no_follow"])}</p>')
    rest = [n for group, names in groups.items() if group not in ("tpp", "tindak_lanjut", (rating or ".").split(".")[0])
            for n in names if outputs[n].type.kind != Kind.LIST or output_value(n)]
    if rest:
        section.append(_facts(w, rest, outputs, output_value, s["other"]))
    parts.append('<section>' + "".join(section) + "</section>")

    # 4. what would improve it
    number = 4
    if letter.goal is not None:
        parts.append(f'<section id="goal"><h2>{number}. {e(s["goal"])}</h2>{_goal(w, policy, letter.goal)}</section>')
        number += 1

    # 5. keberatan
    section = [f'<h2>{number}. {e(s["object"])}</h2>']
    limit = letter.deadline
    if limit is not None and letter.decision_id:
        section.append('<p id="batas">' + e(s["object_until"].format(
            batas=w.date(limit.last), hari=limit.days, jenis=s[limit.kind], sejak=w.date(limit.notified),
            sumber=s[limit.source])) + "</p>")
    elif limit is not None:
        section.append('<p id="batas">' + e(s["object_open"].format(hari=limit.days, jenis=s[limit.kind])) + "</p>")
    if letter.keberatan is not None:
        status = letter.keberatan.get("status", "")
        section.append("<p>" + e(s["object_filed"].format(tanggal=w.value(letter.keberatan.get("tanggal"),
                                                                           Type(kind=Kind.DATE)),
                                                          status=str(status).replace("_", " "))) + "</p>")
    section.append(f'<p>{e(s["final"])}</p>')
    parts.append('<section>' + "".join(section) + "</section>")
    if cites:
        parts.append(f'<section class="basis"><h2>{e(s["basis"])}</h2><ul>'
                     + "".join(f"<li>{e(c)}</li>" for c in cites) + "</ul></section>")
    return _page(w, "".join(parts))


def _periode(w: Words, record: Mapping[str, Any]) -> str | None:
    periode = record.get("periode")
    if isinstance(periode, str) and re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", periode):
        return w.month(periode)
    return None


def _groups(outputs: Mapping[str, Any]) -> dict[str, list[str]]:
    """The outputs by their first dotted part, in the policy's order."""
    found: dict[str, list[str]] = {}
    for name in outputs:
        found.setdefault(name.split(".")[0] if "." in name else "", []).append(name)
    return found


def _facts(w: Words, names: Iterable[str], outputs: Mapping[str, Any], value_of: Any, heading: str) -> str:
    rows = []
    for name in names:
        kind = outputs[name].type
        value = value_of(name)
        if kind.kind == Kind.LIST and kind.item is not None and kind.item.kind == Kind.RECORD:
            if value:
                rows.append(f"<tr><th>{html.escape(w.label('output', name))}</th><td>"
                            f"{_records(w, name, value, kind.item, bare=True)}</td></tr>")
            continue
        rows.append(f"<tr><th>{html.escape(w.label('output', name))}</th>"
                    f"<td>{html.escape(w.value(value, kind))}</td></tr>")
    if not rows:
        return ""
    return f'<h3>{html.escape(heading)}</h3><table class="facts">{"".join(rows)}</table>'


def _records(w: Words, name: str, items: list[Any], item: Type, bare: bool = False) -> str:
    """A list of records as a table, each field by its type (an enumeration's values by their labels)."""
    fields = list(item.fields)
    head = "".join(f"<th>{html.escape(f.replace('_', ' ').capitalize())}</th>" for f, _ in fields)
    body = "".join("<tr>" + "".join(
        f'<td{" class=money" if t.kind == Kind.MONEY else ""}>{html.escape(w.value(row.get(f), t))}</td>'
        for f, t in fields) + "</tr>" for row in items if isinstance(row, Mapping))
    table = f'<table class="records"><tr>{head}</tr>{body}</table>'
    return table if bare else f"<h3>{html.escape(w.label('output', name))}</h3>{table}"


def _fired(decision: Decision) -> list[tuple[str, dict[str, Any], Mapping[str, Any]]]:
    """The rules that fired, each with what it added and its trace entry."""
    rules = (decision.trace or {}).get("rules") or {}
    return [(name, dict(entry.get("adds") or {}), entry) for name, entry in rules.items()
            if isinstance(entry, Mapping) and entry.get("fired")]


def _rules(w: Words, policy: CompiledPolicy, fired: list[tuple[str, dict[str, Any], Mapping[str, Any]]],
           values: Mapping[str, Any], cite: Any) -> str:
    out = []
    outputs = policy.checked.outputs
    for name, adds, entry in fired:
        added = "; ".join(w.value(v, outputs[o].type) for o, v in adds.items() if o in outputs)
        heading = w.text(f"rule:{name}", "label") or added or name.replace("_", " ")
        text = w.text(f"rule:{name}", "penjelasan")
        said = w.fill(text, values) if text else str(entry.get("reason", ""))
        out.append(f'<div class="item rule" data-rule="{html.escape(name)}"><b>{html.escape(heading)}</b>'
                   f'<p class="why">{html.escape(said)}</p>{cite(str(entry.get("cite", "")))}</div>')
    return "".join(out)


def _matrix(w: Words, policy: CompiledPolicy, decision: Decision, rating: Type, cite: Any) -> str:
    """The table hit that gave the rating (the matrix: two ratings in, the predikat out)."""
    for name, entry in ((decision.trace or {}).get("tables") or {}).items():
        table = policy.checked.tables.get(name)
        if table is None or table.output.name != rating.name or not isinstance(entry, Mapping):
            continue
        for hit in entry.get("hits") or []:
            kinds = dict(table.inputs)
            given = " × ".join(w.value(v, kinds.get(k)) for k, v in (hit.get("inputs") or {}).items())
            return (f'<p class="matrix">{html.escape(w.says["matrix"])}: {html.escape(given)} → '
                    f'<b>{html.escape(w.value(hit.get("output"), table.output))}</b> {cite(table.cite)}</p>')
    return ""


def _goal(w: Words, policy: CompiledPolicy, goal: Goal) -> str:
    outputs = policy.checked.outputs
    kind = outputs[goal.output].type if goal.output in outputs else None
    target = f"{w.label('output', goal.output)} {w.value(goal.target, kind)}"
    if goal.reachable == "unknown":
        return f"<p>{html.escape(w.says['goal_unknown'])}</p>"
    if goal.reachable != "true":
        return f"<p>{html.escape(w.says['goal_none'].format(goal=target))}</p>"
    items = "".join(f"<li>{html.escape(_input_label(w, c['path']))}: {html.escape(w.says['before'])} "
                    f"{html.escape(w.value(c['from'], w.types.get(_pattern(c['path']))))} "
                    f"{html.escape(w.says['after'])} {html.escape(w.value(c['to'], w.types.get(_pattern(c['path']))))}"
                    "</li>" for c in goal.changes)
    shown = []
    for name in dict.fromkeys((goal.output, PAID)):
        now, then = _at(goal.before, name), _at(goal.outputs, name)
        if name not in outputs or then is _MISSING:
            continue
        line = f"{w.label('output', name)}: {w.value(then, outputs[name].type)}"
        if outputs[name].type.kind == Kind.MONEY and now is not _MISSING and then != now:
            line += f" ({w.says['more']} {w.value(then - now, outputs[name].type)})"
        shown.append(f'<li class="then">{html.escape(line)}</li>')
    return (f"<p>{html.escape(w.says['goal_reach'].format(goal=target))}</p><ul>{items}</ul>"
            f"<ul>{''.join(shown)}</ul>")


def _pattern(path: str) -> str:
    """`skp.indikator[0].realisasi` as `dapat_diubah` names it: `skp.indikator[*].realisasi`."""
    return re.sub(r"\[[0-9]+\]", "[*]", path)


def _input_label(w: Words, path: str) -> str:
    label = w.text(f"input:{_pattern(path)}", "label")
    if label is None:
        return path.replace("_", " ")
    items = re.findall(r"\[([0-9]+)\]", path)
    return label + "".join(f" ({w.says['item']}{int(i) + 1})" for i in items)


STYLE = """
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#111;line-height:1.45}
h1{font-size:1.35rem;border-bottom:2px solid #333;padding-bottom:.3rem}h2{font-size:1.1rem;margin-top:1.6rem}
h3{font-size:1rem;margin:1rem 0 .3rem}table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border-bottom:1px solid #ccc;padding:.3rem .4rem;text-align:left;vertical-align:top}
td.money{text-align:right;white-space:nowrap}.head th{width:11rem;font-weight:normal;color:#444}
.big{font-size:1.5rem;font-weight:bold;margin:.2rem 0}
.why{margin:.2rem 0;color:#333;font-size:.92rem;font-weight:normal}
.cite{display:block;color:#555;font-size:.8rem}.item{margin:.5rem 0}.basis li{font-size:.85rem}
@media print{body{margin:0;max-width:none}section{break-inside:avoid}}
"""


def _page(w: Words, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="{w.lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(w.says['title'])}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(w.says['title'])}</h1>{body}</body></html>\n")


def browser() -> str | None:
    """Debian's Chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pdf(page: str, seconds: float = PDF_SECONDS) -> bytes:
    """`page` printed to PDF by Chromium (headless, offline), within `seconds`."""
    found = browser()
    if found is None:
        raise SuratError("a PDF letter is printed by Chromium, which is not installed (Debian: apt-get install "
                         "chromium); ask for the HTML letter instead")
    with tempfile.TemporaryDirectory(prefix="kinerja-surat-") as folder:
        source, target = Path(folder) / "surat.html", Path(folder) / "surat.pdf"
        source.write_text(page, encoding="utf-8")
        command = [found, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
                   "--no-first-run", "--no-pdf-header-footer", "--print-to-pdf-no-header",
                   f"--user-data-dir={Path(folder) / 'profile'}", f"--print-to-pdf={target}", source.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=seconds, check=False,
                                  env={**os.environ, "HOME": folder})
        except subprocess.TimeoutExpired:
            raise SuratError(f"Chromium did not print the letter within {seconds:g} s") from None
        if not target.exists() or target.stat().st_size == 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise SuratError(f"Chromium could not print the letter (exit {done.returncode}: {said[0][:200]})")
        return target.read_bytes()


def stored_letter(desk: Desk, record: DecisionRecord, goal_seconds: float | None = None
                  ) -> tuple[CompiledPolicy, Letter]:
    """The letter of a recorded decision: its archived policy's words, the outputs as decided, the
    trace as kept (or the decision replayed with one), its deadline and any keberatan; with
    `goal_seconds`, the nearest better result (not for a member of a population run, whose result
    hangs on the others too)."""
    try:
        engine, notes = desk.replayer.compiled(record.policy_digest)
    except ReplayError as exc:
        raise SuratError(str(exc)) from None
    policy = engine.policy(record.policy_id) if engine is not None else desk.current(record.policy_id)
    if policy is None:
        raise SuratError(f"the policy of decision {record.id} does not compile here, and policy "
                         f"{record.policy_id!r} is not in service: " + "; ".join(notes))
    trace = record.trace
    if trace is None:
        replayed = desk.replayer.replay(record.id, explain=True)
        if isinstance(replayed.result, Decision):
            trace = replayed.result.trace
    decision = Decision(policy=PolicyRef(id=record.policy_id, version=record.policy_version,
                                         digest=record.policy_digest), as_of=record.as_of, outputs=record.outputs,
                        population=record.population if record.population is not None else msgspec.UNSET,
                        trace=trace)
    letter = Letter(decision=decision, record=record.input if isinstance(record.input, Mapping) else {},
                    decision_id=record.id, made_at=record.made_at, deadline=desk.deadline_of(record),
                    keberatan=desk.store.keberatan_of(record.id))
    if goal_seconds is not None and engine is not None and record.population is None and not record.redacted:
        letter.goal = nearest(engine, record.policy_id, letter.record, decision, goal_seconds)
    return policy, letter


def nearest(engine: Engine, policy_id: str, record: Mapping[str, Any], decision: Decision,
            seconds: float = DEFAULT_SECONDS) -> Goal | None:
    """The nearest better result a change the person can make reaches: the next better predikat, else
    any more TPP (`PAID`); None when the policy names nothing to change, or nothing reaches either."""
    policy = engine.policy(policy_id)
    if not policy.checked.changeable:
        return None
    outputs = policy.checked.outputs
    wanted: list[tuple[str, Any]] = []
    rating = next((name for name, o in outputs.items() if name.endswith(".predikat") and o.type.highest), None)
    if rating is not None:
        rank = outputs[rating].type.rank()
        now = _at(decision.outputs, rating)
        better = [v for v, r in rank.items() if now in rank and r == rank[now] + 1]
        if better:
            wanted.append((rating, better[0]))
    paid = _at(decision.outputs, PAID)
    if PAID in outputs and isinstance(paid, int) and not isinstance(paid, bool):
        wanted.append((PAID, paid + 1))
    for output, target in wanted:
        try:
            found = what_if(engine, policy_id, record, goal_of(engine, policy_id, {"output": output,
                                                                                   "at_least": target}),
                            decision.as_of, seconds / len(wanted))
        except KinerjaError:  # a record the policy refuses as it stands, or a redacted one
            return None
        if found.reachable is True and found.changes:
            return Goal(output, target, "true", found.changes, found.outputs, dict(decision.outputs))
    return None
