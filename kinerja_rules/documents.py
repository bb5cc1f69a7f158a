"""The shape of a policy file, as msgspec Structs, and its conversion with positions.

Each section item converts on its own, so one misspelled key does not hide the
problems of the items after it; msgspec's error path (`$.rows.r1.whenn`) is mapped
back to the YAML node's `file:line:col`.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from typing import Annotated, Any, Literal

import msgspec

from kinerja_rules._suggest import did_you_mean
from kinerja_rules.errors import Diagnostic, Span
from kinerja_rules.loader import Path_, SourceFile


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


MAX_WORDS = 2000


class Words(_Spec, frozen=True, kw_only=True):
    """A text for people in Indonesian (`id`) and English (`en`); `{name}` stands for the value of an
    output, input, parameter or definition (`{{` and `}}` for braces). One language missing falls back
    to the other."""

    id: Annotated[str, msgspec.Meta(max_length=MAX_WORDS)] | None = None
    en: Annotated[str, msgspec.Meta(max_length=MAX_WORDS)] | None = None


Teks = Annotated[str, msgspec.Meta(max_length=MAX_WORDS)] | Words
"""A text for people: Indonesian when written as one text, or `{id: …, en: …}`."""


class FieldSpec(_Spec, frozen=True, kw_only=True):
    """An input field: its type and the constraints a record must meet."""

    type: str
    values: list[str] | None = None
    fields: dict[str, Any] | None = None
    items: Any = None
    min: Any = None
    max: Any = None
    greater_than: Any = None
    less_than: Any = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    default: Any = msgspec.UNSET
    doc: str = ""
    label: Teks | None = None
    """What people call the field (a workbook's column, a form's heading)."""
    override: bool = False


class TypeDecl(_Spec, frozen=True, kw_only=True):
    """A named enumeration (`values`) or record (`fields`)."""

    values: list[str] | None = None
    fields: dict[str, Any] | None = None
    highest: Literal["first", "last"] | None = None
    """An ordered enumeration: which end of `values` ranks highest (`first`: the first value), so
    that its values compare with `<`, `<=`, `>`, `>=`; unordered without it."""
    doc: str = ""
    label: dict[str, Teks] | None = None
    """An enumeration's values as people read them, by value (a letter shows these, never the codes)."""
    penjelasan: dict[str, Teks] | None = None
    """What each value means, by value."""
    override: bool = False
    extend: bool = False  # add `values` to the parent's enumeration instead of restating it


class ParameterSpec(_Spec, frozen=True, kw_only=True):
    """A named value that changes by effective date; `key` makes it a keyed table."""

    type: str | None = None  # required, except on `extend` (the parent's type is kept)
    key: str | None = None
    values: dict[str, Any]
    cite: str = ""
    doc: str = ""
    label: Teks | None = None
    """What people call it (a letter's heading for it)."""
    penjelasan: Teks | None = None
    """What it means for the person, in plain words."""
    override: bool = False
    extend: bool = False  # change some keys of the parent's keyed values from a date, keep the rest


class DefinitionSpec(_Spec, frozen=True, kw_only=True):
    expr: str
    type: str | None = None
    cite: str = ""
    doc: str = ""
    override: bool = False


class RowSpec(_Spec, frozen=True, kw_only=True):
    when: dict[str, Any] = {}
    then: Any = msgspec.UNSET
    override: bool = False
    before: str | None = None
    remove: bool = False
    note: str = ""


class TableSpec(_Spec, frozen=True, kw_only=True):
    """A decision table: typed inputs, an output type, a hit policy and named rows."""

    inputs: dict[str, str] | None = None
    output: str | None = None
    hit: str | None = None
    aggregate: str | None = None
    priority: list[Any] | None = None
    rows: dict[str, Any] = {}
    default: Any = msgspec.UNSET
    cite: str = ""
    doc: str = ""
    override: bool = False


class OutputSpec(_Spec, frozen=True, kw_only=True):
    type: str | None = None
    expr: str | None = None
    min: Any = None
    max: Any = None
    cite: str = ""
    doc: str = ""
    label: Teks | None = None
    """What people call it (a letter's heading for it)."""
    penjelasan: Teks | None = None
    """What it means for the person, in plain words."""
    override: bool = False


class RuleSpec(_Spec, frozen=True, kw_only=True):
    """A follow-up action: when `when` holds, append each `then` value to its list output."""

    when: str
    then: dict[str, Any]
    reason: str
    cite: str = ""
    label: Teks | None = None
    """What people call it (a letter's heading for it)."""
    penjelasan: Teks | None = None
    """What it means for the person, in plain words."""
    override: bool = False


class CheckSpec(_Spec, frozen=True, kw_only=True):
    """A condition a record must meet before anything is decided; a record that fails it gets an
    error naming the field (`at`) or, with `for`, each list item that fails."""

    require: str
    """What must hold (an expression over the record, parameters and tables)."""
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | Words
    """The error's message: one text, or `{en: …, id: …}` (the English one is the error's; the
    other is what `--lang` and Accept-Language show)."""
    for_: str | None = msgspec.field(default=None, name="for")
    """`s in skp.segmen`: the condition is required of each item of a list of the record."""
    at: str | None = None
    """The field the error names: a path of the record, or with `for` a field of the item."""
    cite: str = ""
    doc: str = ""
    override: bool = False


class MemberSpec(_Spec, frozen=True, kw_only=True):
    """One record of a population test: a fixture name or a mapping, and changes."""

    record: str | dict[str, Any]
    with_: dict[str, Any] = msgspec.field(default_factory=dict, name="with")


class PopulationCaseSpec(_Spec, frozen=True, kw_only=True):
    """The run of a population test: its records by label, in input order, and what is sent beside them."""

    members: dict[str, MemberSpec]
    groups: dict[str, Any] | None = None
    seats: list[Any] | None = None


class CaseSpec(_Spec, frozen=True, kw_only=True):
    """A policy test: a record (a fixture name or a mapping), changes, expected outputs; or a
    population run (`population`), with expected outputs per member label and group reports."""

    record: str | dict[str, Any] | None = None
    with_: dict[str, Any] = msgspec.field(default_factory=dict, name="with")
    population: PopulationCaseSpec | None = None
    as_of: dt.date | None = None
    expect: dict[str, Any] | None = None
    expect_error: str | None = None
    expect_reports: list[dict[str, Any]] | None = None
    doc: str = ""


class GroupDefinitionSpec(_Spec, frozen=True, kw_only=True):
    """A value of the whole group, computed once per group in a population run from the group's
    data and its members; read by definitions as `population.<name>`."""

    expr: str
    type: str
    instead_of: str | None = None  # an input this value stands for: a record carrying it in a population run is warned
    cite: str = ""
    doc: str = ""
    override: bool = False


class GroupingSpec(_Spec, frozen=True, kw_only=True):
    """How a population run groups records, tells members apart and orders them best first."""

    by: list[str]  # expressions over a record; their values together name its group
    member: str  # an expression naming a member, unique within a group (the `nip`)
    order: list[str] = []  # "<expression> desc|asc", best first; ties fall to the next, then to `member`
    data_key: str | None = None  # which `by` expression keys the group data (default: the first)
    cite: str = ""
    doc: str = ""
    override: bool = False


class QuotaSpec(_Spec, frozen=True, kw_only=True):
    """Shares of a category (the predikat) per group: checked (`report`) or applied (`enforce`)."""

    of: str  # a category-valued expression over a record, decided before the population stage
    limits: str  # a `quota of <category>` parameter looked up by a key from the group: `kurva[group.x]`
    mode: str  # an expression over the group: report or enforce
    rounding: str = "floor"
    cite: str = ""
    doc: str = ""
    override: bool = False


class AssignmentSpec(_Spec, frozen=True, kw_only=True):
    """Candidates (the records of a run) to seats (sent beside them), each at most one seat."""

    eligible: str  # a boolean expression over a candidate and `seat`
    score: str  # a number over a candidate and `seat`; higher is better
    method: str = "priority"  # priority (seats in the order sent) or optimal (largest total score)
    shortlist: int = 3
    cite: str = ""
    doc: str = ""
    override: bool = False


POPULATION_ITEMS: dict[str, type[_Spec]] = {"grouping": GroupingSpec, "quota": QuotaSpec,
                                            "assignment": AssignmentSpec}


class PopulationSection(_Spec, frozen=True, kw_only=True):
    """The population stage of a policy (each part inherited and overridden on its own)."""

    grouping: GroupingSpec | None = None
    quota: QuotaSpec | None = None
    quotas: dict[Name, QuotaSpec] = {}
    """More quotas, by name, applied after `quota` in the order given (a region's added after its
    parent's); each inherited and overridden on its own."""
    assignment: AssignmentSpec | None = None


class ReferenceSpec(_Spec, frozen=True, kw_only=True):
    """A legal instrument a policy cites, when more than its title is given."""

    title: str
    url: str = ""


Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]*$")]
DottedName = Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")]
PolicyId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class AllowSpec(_Spec, frozen=True, kw_only=True):
    """A warning the policy's authors have checked and accept, with why (`check` lists it as
    acknowledged; `--strict` does not fail on it)."""

    code: Annotated[str, msgspec.Meta(pattern=r"^W[0-9]{3}$")]
    output: str | None = None  # the output the warning is about (W135), when it names one
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ChangeSpec(_Spec, frozen=True, kw_only=True):
    """An input a person can change (`dapat_diubah:`), for "what would it take": within `min` and `max`
    (a number, or an expression over the record's numbers, or over the item's for a path with `[*]`,
    such as `target * 1.2`), by `step`."""

    min: Any = None
    max: Any = None
    step: Any = 1
    label: Teks | None = None
    """The input as a person calls it ("hari tidak masuk tanpa keterangan")."""
    doc: str = ""
    override: bool = False


ChangePath = Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]*(\[\*\])?(\.[a-z_][a-z0-9_]*(\[\*\])?)*$")]


class PolicyDocument(_Spec, frozen=True, kw_only=True):
    """A policy file: its header and its sections (a policy may span several files with one `policy` id).

    Only the JSON Schema of the format (`policy_schema`) is made from this struct; files are read
    section by section, so that one mistake does not hide the others.
    """

    policy: PolicyId
    title: str = ""
    version: str | int = ""
    extends: PolicyId | None = None
    effective: dt.date | None = None
    period: str | None = None
    subject: list[Name] | None = None
    """The inputs that say whom a decision is for (default: nip and the period field); every decision
    and record error names them as `subject`, and tables put them first."""
    unknown_fields: Literal["warn", "error", "ignore"] | None = None
    allow: list[AllowSpec] = []
    doc: str = ""
    references: dict[PolicyId, str | ReferenceSpec] = {}
    types: dict[Name, TypeDecl] = {}
    inputs: dict[Name, str | FieldSpec] = {}
    parameters: dict[Name, ParameterSpec] = {}
    definitions: dict[Name, DefinitionSpec] = {}
    tables: dict[Name, TableSpec] = {}
    outputs: dict[DottedName, OutputSpec] = {}
    rules: dict[Name, RuleSpec] = {}
    checks: dict[Name, CheckSpec] = {}
    dapat_diubah: dict[ChangePath, ChangeSpec] = {}
    group_data: dict[Name, str | FieldSpec] = {}
    seats: dict[Name, str | FieldSpec] = {}
    group_definitions: dict[Name, GroupDefinitionSpec] = {}
    population: PopulationSection | None = None
    fixtures: dict[Name, dict[str, Any]] = {}
    tests: dict[Name, CaseSpec] = {}


def policy_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a policy file, for editors with a YAML language server."""
    schema: dict[str, Any] = msgspec.json.schema(PolicyDocument)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "kinerja-rules/policy.schema.json",
            "title": "kinerja-rules policy file", **_clean_descriptions(schema)}


def _clean_descriptions(schema: Any) -> Any:
    """Each docstring taken as a description, cleaned as `inspect.cleandoc` does: msgspec
    releases differ in how they indent them (0.23 dedents, 0.22 keeps the source's indent)."""
    if isinstance(schema, dict):
        return {key: inspect.cleandoc(value) if key == "description" and isinstance(value, str)
                else _clean_descriptions(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_clean_descriptions(item) for item in schema]
    return schema


SECTIONS: dict[str, type[_Spec] | None] = {
    "references": None,
    "types": TypeDecl,
    "inputs": FieldSpec,
    "parameters": ParameterSpec,
    "definitions": DefinitionSpec,
    "tables": TableSpec,
    "outputs": OutputSpec,
    "rules": RuleSpec,
    "checks": CheckSpec,
    "dapat_diubah": ChangeSpec,
    "group_data": FieldSpec,
    "seats": FieldSpec,
    "group_definitions": GroupDefinitionSpec,
    "population": _Spec,  # each item by its own struct (POPULATION_ITEMS)
    "fixtures": None,
    "tests": CaseSpec,
}
def _allowed(raw: Any, source: SourceFile, diags: list[Diagnostic]) -> tuple[tuple[str, str | None, str], ...]:
    """`allow:` as (code, output, reason) each; a malformed entry is an E010 at its place."""
    if not isinstance(raw, list) or len(raw) > 100:
        diags.append(Diagnostic(code="E010", message="'allow' is a list (at most 100) of {code: W135, output: …, "
                                "reason: …}", span=source.value_span(("allow",))))
        return ()
    out = []
    for i, entry in enumerate(raw):
        try:
            spec = msgspec.convert(entry, AllowSpec)
        except msgspec.ValidationError as exc:
            diags.append(Diagnostic(code="E010", span=source.value_span(("allow", i)),
                                    message=f"allow[{i}]: {exc}; write {{code: W135, output: tpp.potongan, "
                                            "reason: why the range is right}"))
            continue
        out.append((spec.code, spec.output, spec.reason))
    return tuple(out)


HEADER = ("policy", "title", "version", "extends", "effective", "period", "subject", "unknown_fields", "allow", "doc")
MAX_SUBJECT = 10
TOP_KEYS = HEADER + tuple(SECTIONS)

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*\Z")  # \Z: `$` would let a trailing newline in
DOTTED_RE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\Z")
CHANGE_RE = re.compile(r"^[a-z_][a-z0-9_]*(\[\*\])?(\.[a-z_][a-z0-9_]*(\[\*\])?)*\Z")  # an input, [*] each item
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")

# A file's header read without parsing it: for a file that does not parse, and to sort files
_DECLARED_RE = re.compile(r"^policy:[ \t]*[\"']?([a-z0-9][a-z0-9_-]*)", re.M)
EXTENDS_RE = re.compile(r"^extends:[ \t]*[\"']?([a-z0-9][a-z0-9_-]*)", re.M)
_TOP_KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:", re.M)
_TEST_KEYS = frozenset({"policy", "fixtures", "tests", "doc"})


def declared_id(text: str) -> str | None:
    """The `policy:` id a file declares, read without parsing it (for a file that does not parse)."""
    match = _DECLARED_RE.search(text)
    return match.group(1) if match else None


def tests_only(text: str) -> bool:
    """Whether a file holds only test cases and fixtures (so its mistakes never block the policy)."""
    keys = set(_TOP_KEY_RE.findall(text))
    return keys <= _TEST_KEYS and bool(keys & {"fixtures", "tests"})


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One named section entry, with the file and node path it came from."""

    section: str
    name: str
    spec: Any
    source: SourceFile
    path: Path_
    replaces: str | None = None  # the key of the parent's version this override replaced, for `parent(name)`
    extends_from: Span | None = None  # where the parent's item it extends stands
    added: tuple[str, ...] = ()  # the values an enumeration's extension adds


class PolicyFile(msgspec.Struct, kw_only=True):
    """One file's contribution to a policy."""

    source: SourceFile
    policy_id: str
    header: dict[str, Any]
    items: dict[str, list[Item]]


_PATH_RE = re.compile(r"`\$((?:\.[^.\[`]+|\[\d+\]|\[\.\.\.\])*)`")
_SEG_RE = re.compile(r"\.([^.\[`]+)|\[(\d+)\]")


def _msgspec_path(message: str) -> tuple[str, Path_]:
    """Split msgspec's `... - at `$.a.b[0]`` into the message and a path tuple."""
    match = _PATH_RE.search(message)
    if not match:
        return message, ()
    path: list[str | int] = []
    for key, idx in _SEG_RE.findall(match.group(1).split("[...]")[0]):
        path.append(int(idx) if idx else key)
    text = re.sub(r"[\s-]*\bat\s*$", "", message[: match.start()]).rstrip(" -")
    return text, tuple(path)


def _unknown_field_hint(spec_type: type, message: str) -> str:
    match = re.search(r"unknown field `([^`]+)`", message)
    if not match:
        return message
    fields = [f.encode_name for f in msgspec.structs.fields(spec_type)]
    return f"unknown key {match.group(1)!r}{did_you_mean(match.group(1), fields)}"


def _innermost_spec(spec: type, path: Path_) -> type:
    """The struct type a msgspec error path ends in, for 'did you mean' on unknown keys."""
    current: Any = spec
    for seg in path[:-1]:
        if isinstance(seg, int) or not hasattr(current, "__struct_fields__"):
            continue
        for f in msgspec.structs.fields(current):
            if f.encode_name == seg:
                current = _struct_in(f.type) or current
                break
        else:
            if current is TableSpec and seg not in ("rows",):
                current = RowSpec
    return current if hasattr(current, "__struct_fields__") else spec


def _struct_in(tp: Any) -> type | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    for arg in getattr(tp, "__args__", ()) or ():
        found = _struct_in(arg)
        if found is not None:
            return found
    return None


def convert_item(data: Any, spec: type, source: SourceFile, path: Path_) -> tuple[Any, list[Diagnostic]]:
    """Convert one section entry into its Struct, or return a diagnostic at its place."""
    try:
        return msgspec.convert(data, spec, strict=False), []
    except msgspec.ValidationError as exc:
        text, sub = _msgspec_path(str(exc))
        full = (*path, *sub)
        if "unknown field" in text:
            leaf = _innermost_spec(spec, (*sub, "")) if sub else spec
            message = _unknown_field_hint(leaf, text)
            match = re.search(r"unknown field `([^`]+)`", text)
            if match:
                full = (*full, match.group(1))
                if not NAME_RE.match(match.group(1)):
                    return None, [Diagnostic(
                        code="E010", message=message, span=source.key_span(full),
                        hint="inside { … } a comma ends the value: quote a value (an expression, a text) that "
                             'has commas, e.g. expr: "round(x, 2, half_up)"')]
        elif "missing required field" in text:
            message = text.replace("Object missing required field", "missing required key").replace("`", "'")
        else:
            message = (text.replace("`", "'").replace("'object'", "a mapping").replace("'array'", "a list")
                       .replace("Expected", "expected"))
            if sub:
                message += f" (at {'.'.join(str(s) for s in sub)})"
        return None, [Diagnostic(code="E010", message=message, span=source.key_span(full))]


def convert_field(data: Any, source: SourceFile, path: Path_) -> tuple[FieldSpec | None, list[Diagnostic]]:
    """Convert an input field spec and, recursively, its `fields` and `items`."""
    if isinstance(data, str):
        data = {"type": data}
    spec, diags = convert_item(data, FieldSpec, source, path)
    if spec is None:
        return None, diags
    fields = None
    if spec.fields is not None:
        fields = {}
        for name, sub in spec.fields.items():
            if not NAME_RE.match(str(name)):
                diags.append(Diagnostic(code="E013", message=f"invalid field name {name!r}",
                                        span=source.key_span((*path, "fields", name))))
                continue
            converted, problems = convert_field(sub, source, (*path, "fields", name))
            diags += problems
            if converted is not None:
                fields[name] = converted
    items = None
    if spec.items is not None:
        items, problems = convert_field(spec.items, source, (*path, "items"))
        diags += problems
    return msgspec.structs.replace(spec, fields=fields, items=items), diags


def convert_type_decl(data: Any, source: SourceFile, path: Path_) -> tuple[TypeDecl | None, list[Diagnostic]]:
    spec, diags = convert_item(data, TypeDecl, source, path)
    if spec is None or spec.fields is None:
        return spec, diags
    fields = {}
    for name, sub in spec.fields.items():
        converted, problems = convert_field(sub, source, (*path, "fields", name))
        diags += problems
        if converted is not None:
            fields[name] = converted
    return msgspec.structs.replace(spec, fields=fields), diags


def convert_table(data: Any, source: SourceFile, path: Path_) -> tuple[TableSpec | None, list[Diagnostic]]:
    spec, diags = convert_item(data, TableSpec, source, path)
    if spec is None:
        return None, diags
    rows: dict[str, Any] = {}
    for name, row in spec.rows.items():
        rpath = (*path, "rows", name)
        if not NAME_RE.match(str(name)):
            diags.append(Diagnostic(code="E013", message=f"invalid row name {name!r}", span=source.key_span(rpath)))
            continue
        if isinstance(row, list):
            rows[name] = row
            continue
        converted, problems = convert_item(row, RowSpec, source, rpath)
        diags += problems
        if converted is not None:
            rows[name] = converted
    return msgspec.structs.replace(spec, rows=rows), diags


def convert_population_item(data: Any, source: SourceFile, path: Path_) -> tuple[Any, list[Diagnostic]]:
    """A part of the population section, by its name (grouping, quota or assignment; a named quota
    is at `quotas.NAME`)."""
    if path[1:] == ("quotas",):
        return None, [Diagnostic(code="E010", message="'quotas' maps each quota's name to its of, limits, mode and "
                                 "rounding", span=source.key_span(path))]
    spec = QuotaSpec if path[1:2] == ("quotas",) and len(path) == 3 else POPULATION_ITEMS.get(str(path[-1]))
    if spec is None:
        return None, [Diagnostic(code="E160", message=f"unknown part {path[-1]!r} of the population section"
                                 f"{did_you_mean(str(path[-1]), POPULATION_ITEMS)}; its parts: "
                                 f"{', '.join(POPULATION_ITEMS)}", span=source.key_span(path))]
    if isinstance(data, dict) and data.get("override") is True:  # only what changes: the rest is inherited
        marks = {str: FROM_PARENT, str | None: FROM_PARENT, int: FROM_PARENT_NUMBER, list[str]: [FROM_PARENT]}
        data = {**data, **{f.encode_name: marks[f.type] for f in msgspec.structs.fields(spec)
                           if f.encode_name not in data and f.type in marks}}
    converted, diags = convert_item(data, spec, source, path)
    return converted, [msgspec.structs.replace(d, hint=f"a new {path[-1]} gives every required key; to change some "
                                                        f"of an inherited one, say override: true and give only those")
                       if "missing required key" in d.message else d for d in diags]


FROM_PARENT = "\x00inherited"
FROM_PARENT_NUMBER = -(2**62)
"""What an override of a population part leaves out (a text, a number): the parent's value is kept."""


_CONVERTERS = {"inputs": convert_field, "group_data": convert_field, "seats": convert_field,
               "types": convert_type_decl, "tables": convert_table, "population": convert_population_item}


def read_policy_file(source: SourceFile) -> tuple[PolicyFile | None, list[Diagnostic]]:  # noqa: C901
    """Split a loaded file into its header and section items, checking the top-level shape."""
    data = source.data
    diags: list[Diagnostic] = []
    if not isinstance(data, dict):
        return None, [Diagnostic(code="E010", message="a policy file must be a mapping with a 'policy' key",
                                 span=source.span_at(1, 1))]
    for key in data:
        if key not in TOP_KEYS:
            diags.append(Diagnostic(code="E011", message=f"unknown key {key!r}{did_you_mean(key, TOP_KEYS)}",
                                    span=source.key_span((key,))))
    policy_id = data.get("policy")
    if not isinstance(policy_id, str) or not ID_RE.match(policy_id):
        diags.append(Diagnostic(
            code="E012",
            message="'policy' must name the policy id (lower case letters, digits, '-' or '_')",
            span=source.key_span(("policy",)),
        ))
        return None, diags
    header = {k: data[k] for k in HEADER if k in data}
    for key in ("title", "version", "extends", "period", "doc"):
        if key in header and not isinstance(header[key], (str, int)) or key in header and isinstance(header[key], bool):
            diags.append(Diagnostic(code="E010", message=f"{key!r} must be text", span=source.value_span((key,))))
    if "version" in header:
        header["version"] = str(header["version"])
    if "unknown_fields" in header and header["unknown_fields"] not in ("warn", "error", "ignore"):
        diags.append(Diagnostic(code="E010", message="'unknown_fields' must be warn, error or ignore"
                                f"{did_you_mean(str(header['unknown_fields']), ('warn', 'error', 'ignore'))}",
                                span=source.value_span(("unknown_fields",))))
        del header["unknown_fields"]
    if "allow" in header:
        header["allow"] = _allowed(header["allow"], source, diags)
    if "subject" in header:
        given = header["subject"]
        if not (isinstance(given, list) and 0 < len(given) <= MAX_SUBJECT and all(
                isinstance(p, str) and NAME_RE.match(p) for p in given) and len(set(given)) == len(given)):
            diags.append(Diagnostic(code="E010", message=f"'subject' is a list of 1 to {MAX_SUBJECT} distinct names "
                                    "of the record's own inputs (such as [nip, periode, nama])",
                                    span=source.value_span(("subject",))))
            del header["subject"]
        else:
            header["subject"] = tuple(given)
    if "effective" in header and type(header["effective"]) is not dt.date:  # a timestamp is not a date
        diags.append(Diagnostic(code="E010", message="'effective' must be a date (YYYY-MM-DD)",
                                span=source.value_span(("effective",))))
        del header["effective"]
    items: dict[str, list[Item]] = {}
    for section, spec in SECTIONS.items():
        body = data.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            diags.append(Diagnostic(code="E010", message=f"{section!r} must be a mapping of names",
                                    span=source.key_span((section,))))
            continue
        entries: list[Item] = []
        if section == "population" and isinstance(body.get("quotas"), dict):  # named quotas: each its own part
            body = {**{k: v for k, v in body.items() if k != "quotas"},
                    **{f"quotas.{k}": v for k, v in body["quotas"].items()}}
        for name, value in body.items():
            path: Path_ = (section, *name.split(".", 1)) if section == "population" else (section, name)
            pattern = DOTTED_RE if section == "outputs" else ID_RE if section == "references" else \
                CHANGE_RE if section == "dapat_diubah" else NAME_RE
            if not pattern.match(name if not name.startswith("quotas.") else name[7:]):
                diags.append(Diagnostic(code="E013", message=f"invalid name {name!r} in {section}: "
                                        "use lower case letters, digits and '_'",
                                        span=source.key_span(path)))
                continue
            if spec is None:
                entries.append(Item(section=section, name=name, spec=value, source=source, path=path))
                continue
            converter = _CONVERTERS.get(section)
            if converter is not None:
                converted, problems = converter(value, source, path)
            else:
                converted, problems = convert_item(value, spec, source, path)
            diags += problems
            if converted is not None:
                entries.append(Item(section=section, name=name, spec=converted, source=source, path=path))
        items[section] = entries
    return PolicyFile(source=source, policy_id=policy_id, header=header, items=items), diags
