"""kinerja-rules: rules as code for ASN performance, performance pay (TPP) and placement.

Load policies with `Engine.from_paths`, evaluate records with `Engine.evaluate`; every
error the engine raises on purpose derives from `KinerjaError`.
"""

from importlib import metadata as _metadata

from kinerja_rules.decision import Decision, ErrorInfo, ErrorResult, PolicyRef, to_json
from kinerja_rules.engine import Engine, check_paths, discover, validate_text
from kinerja_rules.errors import (
    Diagnostic,
    EvaluationError,
    FieldError,
    KinerjaError,
    PluginError,
    PolicyError,
    RecordError,
    Span,
    UnknownPolicyError,
)
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.hookspecs import hookimpl
from kinerja_rules.pipeline import CheckReport
from kinerja_rules.policy import CompiledPolicy
from kinerja_rules.population_run import GroupReport, PopulationInputError
from kinerja_rules.registry import Registry

try:
    __version__ = _metadata.version("kinerja-rules")  # the one place it is written is pyproject.toml
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CheckReport",
    "CompiledPolicy",
    "Decision",
    "Diagnostic",
    "Engine",
    "ErrorInfo",
    "ErrorResult",
    "EvaluationError",
    "FieldError",
    "FunctionSpec",
    "GroupReport",
    "IndicatorSpec",
    "KinerjaError",
    "PluginError",
    "PolicyError",
    "PolicyRef",
    "PopulationInputError",
    "RecordError",
    "Registry",
    "Span",
    "UnknownPolicyError",
    "check_paths",
    "discover",
    "hookimpl",
    "to_json",
    "validate_text",
]
