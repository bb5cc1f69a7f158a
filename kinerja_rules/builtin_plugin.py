"""The built-in functions, registered through the same hook as any plugin's."""

from __future__ import annotations

from kinerja_rules.functions import BUILTINS, FunctionSpec
from kinerja_rules.hookspecs import hookimpl


@hookimpl
def kinerja_register_functions() -> list[FunctionSpec]:
    return list(BUILTINS)
