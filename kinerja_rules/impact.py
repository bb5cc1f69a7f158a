"""The impact of a policy change: the same records decided under two versions of a policy, compared.

`impact` answers what a BKPSDM asks before signing a new rule: who changes predikat (a
transition matrix), what the TPP costs before and after (per unit, per kelas, overall), how
many are paid more, less or the same, the largest changes, and per person each output that
differs with both values (and both traces, with explain). `rapel` is the back pay of a rule
signed late: recorded decisions of past months decided again under the proposed version.
Money is whole rupiah, added exactly as integers.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kinerja_rules.deciding import decide_each, decide_population
from kinerja_rules.decision import ENCODER, Decision, ErrorResult
from kinerja_rules.engine import Engine
from kinerja_rules.formats import Csv
from kinerja_rules.population_run import GroupReport, collector_paused
from kinerja_rules.recording import differences, traces_of
from kinerja_rules.store import DecisionRecord, Store

RATING = "evaluasi.predikat"
PAY = "tpp.diterima"
PAID = "tpp.dibayar"  # what payroll pays: diterima less what is withheld, plus arrears (when the policy has it)
LARGEST = 20
"""How many of the largest TPP changes a report lists."""
HISTOGRAM_BINS = 20


def _get(outputs: Mapping[str, Any], dotted: str) -> Any:
    value: Any = outputs
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _unit(record: Any) -> str:
    unit = record.get("unit_kerja") if isinstance(record, dict) else None
    return unit if isinstance(unit, str) else "(none)"


def _kelas(record: Any) -> str:
    jabatan = record.get("jabatan") if isinstance(record, dict) else None
    kelas = jabatan.get("kelas") if isinstance(jabatan, dict) else None
    return str(kelas) if isinstance(kelas, int) and not isinstance(kelas, bool) else "(none)"


def _rupiah(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    return int(value)


def decide_all(engine: Engine, policy_id: str, records: Sequence[Any], groups: Any, seats: Any,
               as_of: dt.date | None, explain: bool) -> list[Decision | ErrorResult]:
    """Each record's result in input order: decided alone, or as a population when `groups` or `seats` are given."""
    policy = engine.policy(policy_id)
    if policy.population is not None and (groups is not None or seats is not None):
        return [item[1] for item in decide_population(engine, policy_id, records, groups, seats, as_of, explain)
                if not isinstance(item, GroupReport)]
    return [result for _, result in decide_each(engine, policy_id, records, as_of, explain)]


@dataclass
class _Totals:
    before: int = 0
    after: int = 0
    people: int = 0

    def add(self, before: int, after: int) -> None:
        self.before += before
        self.after += after
        self.people += 1

    def out(self, name: str, key: str) -> dict[str, Any]:
        return {name: key, "before": self.before, "after": self.after, "difference": self.after - self.before,
                "people": self.people}


@dataclass
class Impact:
    """What changes for whom, and what it costs, when `proposed` replaces `base`."""

    policy_id: str
    base: Any
    proposed: Any
    as_of: dt.date | None
    records: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {"base": 0, "proposed": 0})
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    overall: _Totals = field(default_factory=_Totals)
    paid: _Totals = field(default_factory=_Totals)  # tpp.dibayar, before and after
    by_unit: dict[str, _Totals] = field(default_factory=lambda: defaultdict(_Totals))
    by_kelas: dict[str, _Totals] = field(default_factory=lambda: defaultdict(_Totals))
    moves: Counter[str] = field(default_factory=Counter)
    changes: list[dict[str, Any]] = field(default_factory=list)  # each paid person's TPP change
    people: list[dict[str, Any]] = field(default_factory=list)  # those whose outputs differ
    rows: list[dict[str, Any]] = field(default_factory=list)  # every person, for CSV

    def add(self, line: int, record: Any, before: Decision | ErrorResult, after: Decision | ErrorResult,
            explain: bool) -> None:
        self.records += 1
        nip = record.get("nip") if isinstance(record, dict) else None
        unit, kelas = _unit(record), _kelas(record)
        who: dict[str, Any] = {"line": line, "nip": nip, "unit_kerja": unit, "kelas": kelas}
        row: dict[str, Any] = {**who, "predikat_before": None, "predikat_after": None, "tpp_before": None,
                               "tpp_after": None, "tpp_difference": None, "changed": ""}
        self.rows.append(row)
        if isinstance(before, ErrorResult) or isinstance(after, ErrorResult):
            self.errors["base"] += isinstance(before, ErrorResult)
            self.errors["proposed"] += isinstance(after, ErrorResult)
            errors = {"base": _message(before), "proposed": _message(after)}
            if errors["base"] != errors["proposed"]:
                self.people.append({**who, "error": errors})
            row["changed"] = "error"
            return
        rating_before, rating_after = _get(before.outputs, RATING), _get(after.outputs, RATING)
        if rating_before is not None or rating_after is not None:
            self.transitions[(str(rating_before), str(rating_after))] += 1
            row["predikat_before"], row["predikat_after"] = rating_before, rating_after
        paid_before, paid_after = _rupiah(_get(before.outputs, PAID)), _rupiah(_get(after.outputs, PAID))
        if paid_before is not None and paid_after is not None:
            self.paid.add(paid_before, paid_after)
        pay_before, pay_after = _rupiah(_get(before.outputs, PAY)), _rupiah(_get(after.outputs, PAY))
        if pay_before is not None and pay_after is not None:
            self.overall.add(pay_before, pay_after)
            self.by_unit[unit].add(pay_before, pay_after)
            self.by_kelas[kelas].add(pay_before, pay_after)
            difference = pay_after - pay_before
            self.moves["up" if difference > 0 else "down" if difference < 0 else "unchanged"] += 1
            row.update(tpp_before=pay_before, tpp_after=pay_after, tpp_difference=difference)
            if difference:
                self.changes.append({**who, "before": pay_before, "after": pay_after, "difference": difference})
        changed = [] if before.outputs == after.outputs else differences(before.outputs, after.outputs)
        if changed:
            row["changed"] = " ".join(d["output"] for d in changed)
            person = {**who, "differences": changed}
            if explain:
                person["traces"] = traces_of(before, after, [d["output"] for d in changed])
            self.people.append(person)

    def report(self) -> dict[str, Any]:
        """The report as JSON-ready data (money in whole rupiah)."""
        largest = sorted(self.changes, key=lambda c: (-abs(c["difference"]), c["line"]))[:LARGEST]
        out: dict[str, Any] = {
            "policy": self.policy_id, "base": self.base, "proposed": self.proposed,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "records": self.records, "errors": self.errors,
            "changed": len(self.people),
            "predikat": {"output": RATING, "changed": sum(n for (a, b), n in self.transitions.items() if a != b),
                         "matrix": [{"from": a, "to": b, "count": n}
                                    for (a, b), n in sorted(self.transitions.items())]},
            "tpp": {"output": PAY, **self.overall.out("scope", "overall"),
                    "up": self.moves["up"], "down": self.moves["down"], "unchanged": self.moves["unchanged"],
                    "by_unit": [t.out("unit_kerja", k) for k, t in sorted(self.by_unit.items())],
                    "by_kelas": [t.out("kelas", k) for k, t in sorted(self.by_kelas.items(), key=_kelas_order)],
                    "largest_changes": largest,
                    "histogram": histogram([c["difference"] for c in self.changes])},
            "people": self.people,
        }
        del out["tpp"]["scope"]
        if self.paid.people:
            out["tpp_dibayar"] = {"output": PAID, **{k: v for k, v in self.paid.out("scope", "").items()
                                                     if k != "scope"}}
        return out


def _kelas_order(item: tuple[str, Any]) -> tuple[int, str]:
    return (int(item[0]), "") if item[0].isdigit() else (10 ** 6, item[0])


def _message(result: Decision | ErrorResult) -> str | None:
    return result.error.message if isinstance(result, ErrorResult) else None


def histogram(values: Sequence[int], bins: int = HISTOGRAM_BINS) -> list[dict[str, int]]:
    """Counts of TPP changes (the non-zero ones) in equal whole-rupiah bins, [from, to)."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // bins))
    counts = Counter((v - low) // width for v in values)
    return [{"from": low + i * width, "to": low + (i + 1) * width, "count": counts.get(i, 0)}
            for i in range(-(-(high - low + 1) // width))]


def impact(base: Engine, proposed: Engine, policy_id: str, records: Sequence[tuple[int, Any]],
           groups: Any = None, seats: Any = None, as_of: dt.date | None = None, explain: bool = False) -> Impact:
    """Decide `records` ((line, record) pairs) under both engines' `policy_id` and compare."""
    plain = [record for _, record in records]
    with collector_paused():  # both sets of decisions are held: a collection would walk all of them, often
        before = decide_all(base, policy_id, plain, groups, seats, as_of, explain)
        after = decide_all(proposed, policy_id, plain, groups, seats, as_of, explain)
        report = Impact(policy_id, base.policy(policy_id).ref, proposed.policy(policy_id).ref, as_of)
        for (line, record), old, new in zip(records, before, after, strict=True):
            report.add(line, record, old, new, explain)
    return report


# ---- output ----

CSV_COLUMNS = ("line", "nip", "unit_kerja", "kelas", "predikat_before", "predikat_after", "tpp_before", "tpp_after",
               "tpp_difference", "changed")


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV for spreadsheets, by the one CSV writer (`formats.Csv`): a cell that a spreadsheet
    would read as a formula is quoted as text."""
    out = io.BytesIO()
    sink = Csv(out, list(columns))
    sink.rows([[row.get(c) for c in columns] for row in rows])
    sink.close()
    return out.getvalue().decode()


def to_json(report: Mapping[str, Any]) -> bytes:
    return ENCODER.encode(report)


def to_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (no network): the totals, and charts drawn in the browser from the
    report's own data: the predikat transition matrix, a histogram of TPP changes, totals per unit."""
    data = ENCODER.encode({k: v for k, v in report.items() if k != "people"}).decode()
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # safe inside <script>
    title = f"Dampak perubahan kebijakan {report['policy']}"
    return _PAGE.replace("__TITLE__", _escape(title)).replace("__DATA__", data)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render(report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(rows, CSV_COLUMNS).encode()
    if fmt == "html":
        return to_html(report).encode()
    return to_json(report) + b"\n"


# ---- back pay ----

RAPEL_COLUMNS = ("nip", "periode", "unit_kerja", "kelas", "decision_id", "paid", "due", "difference",
                 "paid_dibayar", "due_dibayar", "difference_dibayar", "note")


def rapel_report(entries: Iterator[dict[str, Any]], policy_id: str, proposed: Any,
                 months: tuple[str, str]) -> dict[str, Any]:
    """Per person and month the TPP difference owed under the proposed version, totals per unit."""
    people = list(entries)
    by_unit: dict[str, _Totals] = defaultdict(_Totals)
    total = _Totals()
    for entry in people:
        if entry["difference"] is None:
            continue
        by_unit[entry["unit_kerja"]].add(entry["paid"], entry["due"])
        total.add(entry["paid"], entry["due"])
    out = total.out("scope", "overall")
    del out["scope"]
    paid = _Totals()
    for entry in people:
        if entry.get("difference_dibayar") is not None:
            paid.add(entry["paid_dibayar"], entry["due_dibayar"])
    dibayar = {k: v for k, v in paid.out("scope", "").items() if k != "scope"} if paid.people else None
    return {"policy": policy_id, "proposed": proposed, "from": months[0], "to": months[1], **out,
            **({"dibayar": dibayar} if dibayar is not None else {}),
            "owed": sum(e["difference"] for e in people if (e["difference"] or 0) > 0),
            "overpaid": -sum(e["difference"] for e in people if (e["difference"] or 0) < 0),
            "skipped": sum(1 for e in people if e["difference"] is None),
            "by_unit": [t.out("unit_kerja", k) for k, t in sorted(by_unit.items())], "people": people}


_PAGE = """<!doctype html>
<html lang="id"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d5d9e0;border-radius:6px;padding:.7em 1em;min-width:10em}
.card b{display:block;font-size:1.3em}.neg{color:#b3261e}.pos{color:#1b6e3a}
table{border-collapse:collapse}td,th{border:1px solid #d5d9e0;padding:.25em .6em;text-align:right}
th{background:#f3f5f8}svg text{font:11px system-ui,sans-serif}
</style></head><body>
<h1>__TITLE__</h1>
<p id="versions"></p>
<div class="cards">
 <div class="card">TPP sebelum<b id="total-before"></b></div>
 <div class="card">TPP sesudah<b id="total-after"></b></div>
 <div class="card">Selisih<b id="total-difference"></b></div>
 <div class="card">Naik / turun / tetap<b id="moves"></b></div>
 <div class="card">Predikat berubah<b id="rating-changed"></b></div>
</div>
<h2>Matriks perpindahan predikat</h2><div id="matrix"></div>
<h2>Sebaran perubahan TPP (rupiah)</h2><div id="histogram"></div>
<h2>TPP per unit kerja, sebelum dan sesudah</h2><div id="units"></div>
<h2>Perubahan terbesar</h2><div id="largest"></div>
<script id="report-data" type="application/json">__DATA__</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("report-data").textContent);
const fmt = n => (n < 0 ? "\u2212" : "") + "Rp " + Math.abs(n).toLocaleString("id-ID");
const el = (name, attrs, text) => { const e = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
const put = (id, text, cls) => { const e = document.getElementById(id); e.textContent = text; if (cls) e.className = cls; };
const T = R.tpp;
put("versions", `${R.policy}: ${R.base.version} (${R.base.digest.slice(0, 12)}) \u2192 ${R.proposed.version} (${R.proposed.digest.slice(0, 12)}), ${R.records} records`);
put("total-before", fmt(T.before)); put("total-after", fmt(T.after));
put("total-difference", fmt(T.difference), T.difference < 0 ? "neg" : "pos");
put("moves", `${T.up} / ${T.down} / ${T.unchanged}`); put("rating-changed", String(R.predikat.changed));
document.getElementById("total-before").dataset.value = T.before;
document.getElementById("total-after").dataset.value = T.after;
document.getElementById("total-difference").dataset.value = T.difference;
// the transition matrix: a table shaded by count
(() => { const names = [...new Set(R.predikat.matrix.flatMap(c => [c.from, c.to]))];
  const count = new Map(R.predikat.matrix.map(c => [c.from + "\u0000" + c.to, c.count]));
  const most = Math.max(1, ...R.predikat.matrix.map(c => c.count));
  const t = document.createElement("table"); t.id = "matrix-table";
  const head = t.insertRow(); head.insertCell().outerHTML = "<th>dari \u2193 / ke \u2192</th>";
  for (const n of names) { const th = document.createElement("th"); th.textContent = n; head.appendChild(th); }
  for (const a of names) { const row = t.insertRow(); const th = document.createElement("th"); th.textContent = a; row.appendChild(th);
    for (const b of names) { const c = row.insertCell(); const n = count.get(a + "\u0000" + b) || 0; c.textContent = n;
      c.style.background = `rgba(${a === b ? "60,110,200" : "220,120,40"},${(n / most * 0.8).toFixed(3)})`; } }
  document.getElementById("matrix").appendChild(t); })();
// a bar chart in SVG
function bars(id, items, label, value, second) {
  const w = 1000, h = 260, pad = 40, n = Math.max(1, items.length), bw = (w - 2 * pad) / n;
  const all = items.flatMap(i => second ? [value(i), second(i)] : [value(i)]);
  const top = Math.max(1, ...all.map(Math.abs));
  const svg = el("svg", {viewBox: `0 0 ${w} ${h + 60}`, width: "100%", role: "img", "class": "chart", id: id + "-chart"});
  svg.appendChild(el("line", {x1: pad, x2: w - pad, y1: h, y2: h, stroke: "#888"}));
  items.forEach((it, i) => { const series = second ? [value(it), second(it)] : [value(it)];
    series.forEach((v, k) => { const bh = Math.abs(v) / top * (h - 20), x = pad + i * bw + k * bw / series.length;
      svg.appendChild(el("rect", {x: x + 1, y: h - bh, width: Math.max(1, bw / series.length - 2), height: bh,
        fill: k ? "#d9822b" : "#3d6fc8", "class": "bar", "data-value": v})); });
    const t = el("text", {x: pad + i * bw + bw / 2, y: h + 14, "text-anchor": "middle"}, label(it));
    if (items.length > 8) t.setAttribute("transform", `rotate(35 ${pad + i * bw + bw / 2} ${h + 14})`);
    svg.appendChild(t); });
  document.getElementById(id).appendChild(svg);
}
bars("histogram", T.histogram, b => fmt(b.from), b => b.count);
bars("units", T.by_unit, u => u.unit_kerja, u => u.before, u => u.after);
(() => { const t = document.createElement("table"); const head = t.insertRow();
  for (const h of ["NIP", "unit kerja", "kelas", "sebelum", "sesudah", "selisih"]) { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); }
  for (const c of T.largest_changes) { const row = t.insertRow();
    for (const v of [c.nip, c.unit_kerja, c.kelas, fmt(c.before), fmt(c.after), fmt(c.difference)]) row.insertCell().textContent = v ?? ""; }
  document.getElementById("largest").appendChild(t); })();
document.body.dataset.rendered = "yes";
</script></body></html>
"""  # noqa: E501 (the page's own CSS and script)


def rapel_entries(store: Store, proposed: Engine, policy_id: str, months: tuple[str, str]) -> list[dict[str, Any]]:  # noqa: C901
    """Each person's recorded decision of each month in `months` (the latest, so an appeal counts
    over what it appealed), decided again under `proposed`: what was paid, what is due, the difference."""
    latest: dict[tuple[str, str], DecisionRecord] = {}
    after = None
    while True:
        page = store.find(policy_id=policy_id, periods=months, limit=1000, after=after)
        if not page:
            break
        for record in page:
            latest[(record.nip or record.id, record.periode or "")] = record
        after = page[-1].id
    entries: dict[str, dict[str, Any]] = {}
    alone: list[DecisionRecord] = []
    runs: dict[str, list[DecisionRecord]] = defaultdict(list)
    for record in latest.values():
        entry = entries[record.id] = {
            "nip": record.nip, "periode": record.periode, "unit_kerja": _unit(record.input),
            "kelas": _kelas(record.input), "decision_id": record.id, "paid": _rupiah(_get(record.outputs, PAY)),
            "due": None, "difference": None, "paid_dibayar": _rupiah(_get(record.outputs, PAID)),
            "due_dibayar": None, "difference_dibayar": None, "note": ""}
        if record.redacted:
            entry["note"] = f"redacted in the store ({', '.join(record.redacted)}): decide again by hand"
        elif record.run_id is not None and proposed.policy(policy_id).population is not None:
            runs[record.run_id].append(record)
        else:
            alone.append(record)
    for record in alone:  # each with its own as_of
        _settle_entry(entries[record.id], next(decide_each(proposed, policy_id, [record.input], record.as_of))[1])
    for run_id, wanted in runs.items():
        found = store.run(run_id)
        if found is None:
            for record in wanted:
                entries[record.id]["note"] = "its population run is not in the store"
            continue
        run, members = found
        standing = {r.appeal_of or r.id: r for r in wanted}  # a member, or the appeal that replaced it
        inputs = [standing[m.id].input if m.id in standing else m.input for m in members]
        results = [item[1] for item in decide_population(proposed, policy_id, inputs, run.groups, run.seats,
                                                          run.as_of) if not isinstance(item, GroupReport)]
        for member, result in zip(members, results, strict=True):
            if member.id in standing:
                _settle_entry(entries[standing[member.id].id], result)
    return sorted(entries.values(), key=lambda e: (e["unit_kerja"], str(e["nip"]), str(e["periode"])))


def _settle_entry(entry: dict[str, Any], result: Decision | ErrorResult) -> None:
    if isinstance(result, ErrorResult):
        entry["note"] = f"not decided under the proposed policy: {result.error.message}"
        return
    due = _rupiah(_get(result.outputs, PAY))
    entry["due"] = due
    due_paid = _rupiah(_get(result.outputs, PAID))
    entry["due_dibayar"] = due_paid
    if due_paid is not None and entry["paid_dibayar"] is not None:
        entry["difference_dibayar"] = due_paid - entry["paid_dibayar"]
    if due is not None and entry["paid"] is not None:
        entry["difference"] = due - entry["paid"]
    else:
        entry["note"] = f"no {PAY} to compare"
