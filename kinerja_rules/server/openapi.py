"""The OpenAPI documents: the service's general one (finished after Litestar builds it) and one
per policy, where the record, the decision's outputs and the trace are typed.

A client generator reads either: every operation has a stable `operationId`, declares the key
it needs, and describes every error it can answer as `application/problem+json`.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.server.bodies import BatchRequest, BatchResult, EvaluateRequest, PopulationRequest, PopulationResult
from kinerja_rules.server.problems import PROBLEM_MEDIA_TYPE, PROBLEMS, Problem
from kinerja_rules.types import Kind, Type

OPEN = ("/health", "/ready", "/problems/{name}", "/docs")  # answered without a key
_STATUS_WORDS = {400: "Bad request", 401: "No or unknown API key", 403: "The key may not do this",
                 500: "Internal error (a fault of the service; the problem says no more)"}


def _problem_response(status: int) -> dict[str, Any]:
    names = "; ".join(f"{name}: {title}" for name, (s, title, _) in PROBLEMS.items() if s == status)
    return {"description": names or _STATUS_WORDS.get(status, "A problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def finish_general(document: dict[str, Any], secured: bool) -> dict[str, Any]:
    """Declare on each operation the key it needs and every problem it may answer, Litestar's own
    400 (a malformed request line, query or path) and 500 included. Changes `document` in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", msgspec.json.schema(Problem)["$defs"]["Problem"])
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "delete", "patch"):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                title = media.get("schema", {}).get("title")  # a body named by its struct: a component
                if title and schemas.setdefault(title, media["schema"]) == media["schema"]:
                    media["schema"] = {"$ref": f"#/components/schemas/{title}"}
            responses = operation.setdefault("responses", {})
            needs_key = secured and not path.startswith(OPEN)
            for status in (400, 500, *((401, 403) if needs_key else ())):
                if PROBLEM_MEDIA_TYPE not in responses.get(str(status), {}).get("content", {}):
                    responses[str(status)] = _problem_response(status)  # Litestar's own 400 is a problem too
            operation["security"] = [{"bearer": []}] if needs_key else []
    document.pop("security", None)  # per operation instead: the probes need no key
    for name in ("BatchResult", "PopulationResult"):
        items = schemas.get(name, {}).get("properties", {}).get("results", {}).get("items")
        if items is not None:  # decision | error, told apart by `result`
            items["discriminator"] = {"propertyName": "result", "mapping": {
                "decision": "#/components/schemas/BatchDecision", "error": "#/components/schemas/BatchError"}}
    return document


# ---- the document of one policy ---------------------------------------------------------

def type_schema(kind: Type) -> dict[str, Any]:
    """The JSON Schema of a value of `kind` as a decision writes it (decimals as exact JSON numbers)."""
    k = kind.kind
    out: dict[str, Any]
    if k == Kind.INTEGER:
        out = {"type": "integer"}
    elif k == Kind.MONEY:
        out = {"type": "integer", "description": "whole rupiah"}
    elif k == Kind.DECIMAL or k == Kind.NUMBER:
        out = {"type": "number", "format": "decimal",
               "description": "an exact decimal: read it as a decimal, never a binary float"}
    elif k == Kind.PERCENT:
        out = {"type": "number", "format": "percent", "description": "a fraction: 60 % is 0.6 (exact decimal)"}
    elif k == Kind.BOOLEAN:
        out = {"type": "boolean"}
    elif k == Kind.TEXT:
        out = {"type": "string"}
    elif k == Kind.ENUM:
        out = {"type": "string", "enum": list(kind.values)} if kind.values else {"type": "string"}
    elif k == Kind.DATE:
        out = {"type": "string", "format": "date"}
    elif k == Kind.LIST and kind.item is not None:
        out = {"type": "array", "items": type_schema(kind.item)}
    elif k == Kind.RECORD:
        out = {"type": "object", "properties": {name: type_schema(sub) for name, sub in kind.fields},
               "required": [name for name, _ in kind.fields]}
    else:
        out = {}
    return {"anyOf": [out, {"type": "null"}]} if kind.optional and out else out


def _outputs_schema(policy: CompiledPolicy) -> dict[str, Any]:
    root: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for name, output in policy.checked.outputs.items():
        node = root
        *parents, last = name.split(".")
        for part in parents:
            if part not in node["properties"]:
                node["properties"][part] = {"type": "object", "properties": {}, "required": []}
                node["required"].append(part)
            node = node["properties"][part]
        node["properties"][last] = {**type_schema(output.type), **({"description": output.doc} if output.doc else {})}
        node["required"].append(last)
    return root


_USES = {"type": "array", "items": {"type": "string"},
         "description": "the definitions, parameters, tables and indicators it reads, by name"}
_READS = {"type": "array", "items": {"type": "string"}, "description": "the record paths it reads"}
_PLUGINS = {"type": "array", "items": {"$ref": "#/components/schemas/PluginUse"}}
_ANY: dict[str, Any] = {}
TRACE_SCHEMAS: dict[str, Any] = {
    "PluginUse": {"type": "object", "description": "A plugin function behind a value: who made it, and its citation",
                  "properties": {"function": {"type": "string"}, "plugin": {"type": "string"},
                                 "version": {"type": "string"}, "cite": {"type": "string"}},
                  "required": ["function", "plugin", "version"]},
    "TraceOutput": {"type": "object", "properties": {"value": _ANY, "cite": {"type": "string"}, "uses": _USES,
                                                     "reads": _READS, "plugins": _PLUGINS,
                                                     "rules": {"type": "array", "items": {"type": "string"}}},
                    "required": ["value"]},
    "TraceDefinition": {"type": "object", "properties": {
        "value": _ANY, "exact": {"type": "string", "description": "the exact fraction, when the value is cut"},
        "cite": {"type": "string"}, "uses": _USES, "reads": _READS, "plugins": _PLUGINS}, "required": ["value"]},
    "TraceTable": {"type": "object", "properties": {
        "cite": {"type": "string"}, "uses": _USES, "omitted": {"type": "integer"},
        "hits": {"type": "array", "items": {"type": "object", "properties": {
            "row": {"type": "string"}, "inputs": {"type": "object"}, "output": _ANY, "note": {"type": "string"}},
            "required": ["row", "inputs", "output"]}}}, "required": ["hits"]},
    "TraceRule": {"type": "object", "properties": {
        "fired": {"type": "boolean"}, "reason": {"type": "string"}, "cite": {"type": "string"}, "uses": _USES,
        "reads": _READS,
                                                   "adds": {"type": "object",
                                                            "additionalProperties": {"type": "array",
                                                                                     "items": {"type": "string"}}}},
        "required": ["fired", "reason", "adds"]},
    "TraceIndicator": {"type": "object", "properties": {
        "value": _ANY, "source": {"type": "string"}, "plugin": {"type": "string"}, "version": {"type": "string"},
        "cite": {"type": "string"}}, "required": ["value", "source", "plugin", "version"]},
    "Trace": {"type": "object", "description": "How each output was reached; each fact appears once, and outputs, "
                                               "definitions, rules and tables name what they use",
              "properties": {
                  "as_of": {"type": "string", "format": "date"},
                  "outputs": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/TraceOutput"}},
                  "definitions": {"type": "object",
                                  "additionalProperties": {"$ref": "#/components/schemas/TraceDefinition"}},
                  "parameters": {"type": "object", "description": "by the date each took effect: name to value "
                                                                  "(a keyed one: the keys this record looked up)",
                                 "additionalProperties": {"type": "object"}},
                  "tables": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/TraceTable"}},
                  "rules": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/TraceRule"}},
                  "indicators": {"type": "object",
                                 "additionalProperties": {"$ref": "#/components/schemas/TraceIndicator"}}},
              "required": ["as_of", "outputs", "definitions", "parameters"]},
}


def _components_of(*kinds: type[Any]) -> dict[str, Any]:
    _, defs = msgspec.json.schema_components(kinds, ref_template="#/components/schemas/{name}")
    return defs


def _population_components(policy: CompiledPolicy, schemas: dict[str, Any], unknown_fields: str | None) -> None:
    """The request and answer of a population run of `policy`: its group data and seats typed."""
    about = policy.metadata(unknown_fields)["population"]
    for name, component in _components_of(PopulationRequest, PopulationResult).items():
        schemas.setdefault(name, component)  # the decisions and errors are typed already
    schemas["GroupData"] = about["group_data_schema"]
    request = schemas["PopulationRequest"]["properties"]
    request["records"] = {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}
    request["groups"] = {"anyOf": [{"type": "object",
                                    "additionalProperties": {"$ref": "#/components/schemas/GroupData"},
                                    "description": f"each group's data by its {about['groups_keyed_by']}"},
                                   {"type": "null"}]}
    if about["seat_schema"] is not None:
        schemas["Seat"] = about["seat_schema"]
        request["seats"] = {"anyOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Seat"}},
                                      {"type": "null"}]}
    else:
        del request["seats"]
    results = schemas["BatchResult"]["properties"]["results"]
    schemas["PopulationResult"]["properties"]["results"] = copy.deepcopy(results)


def policy_document(policy: CompiledPolicy, secured: bool, unknown_fields: str | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 document for calling one policy: its record, its decision's outputs and the
    trace typed, the batch's items told apart by `result`, every problem described."""
    record = {k: v for k, v in policy.metadata(unknown_fields)["input_schema"].items() if k != "$schema"}
    schemas = _components_of(EvaluateRequest, BatchRequest, BatchResult, Problem)
    schemas.update(copy.deepcopy(TRACE_SCHEMAS))
    schemas["Record"] = record
    schemas["Outputs"] = _outputs_schema(policy)
    schemas["EvaluateRequest"]["properties"]["record"] = {"$ref": "#/components/schemas/Record"}
    schemas["BatchRequest"]["properties"]["records"] = {"type": "array",
                                                        "items": {"$ref": "#/components/schemas/Record"}}
    for name in ("Decision", "BatchDecision"):
        if name in schemas:
            schemas[name]["properties"]["outputs"] = {"$ref": "#/components/schemas/Outputs"}
            schemas[name]["properties"]["trace"] = {"anyOf": [{"$ref": "#/components/schemas/Trace"},
                                                              {"type": "null"}]}
    schemas["Decision"] = {**copy.deepcopy(schemas["BatchDecision"]), "title": "Decision",
                           "description": "The outputs for one record, with the policy that made them"}
    del schemas["Decision"]["properties"]["result"]
    schemas["Decision"]["required"] = [r for r in schemas["Decision"]["required"] if r != "result"]
    security: list[dict[str, list[str]]] = [{"bearer": []}] if secured else []
    base = f"/v1/policies/{policy.id}"

    def operation(op_id: str, summary: str, body: str | None, answer: str, *statuses: int) -> dict[str, Any]:
        out: dict[str, Any] = {"operationId": op_id, "summary": summary, "security": security, "responses": {
            "200": {"description": summary, "headers": {"ETag": {"schema": {"type": "string"},
                                                                 "description": "the policy digest, quoted"}},
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}},
            **{str(s): _problem_response(s) for s in sorted({400, 404, 412, 500, *statuses,
                                                             *((401, 403) if secured else ())})}}}
        out["parameters"] = [{"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                              "description": 'the policy digest expected, quoted; another one answers 412'}]
        if body is not None:
            out["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        return out

    paths = {
        f"{base}/evaluate": {"post": operation("evaluate", "Decide one record", "EvaluateRequest", "Decision",
                                               413, 415, 422)},
        f"{base}/evaluate/batch": {"post": operation("evaluateBatch", "Decide many records, each on its own",
                                                     "BatchRequest", "BatchResult", 413, 415, 422)},
    }
    if policy.population is not None:
        _population_components(policy, schemas, unknown_fields)
        paths[f"{base}/evaluate/population"] = {"post": operation(
            "evaluatePopulation", "Decide records together: the kurva distribusi of each group, an assignment",
            "PopulationRequest", "PopulationResult", 413, 415, 422)}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"kinerja-rules: {policy.title}", "version": policy.version,
                 "description": f"Policy {policy.id} {policy.version}, digest {policy.digest}. {policy.doc}".strip()},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
