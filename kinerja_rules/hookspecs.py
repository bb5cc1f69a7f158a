"""Every hook a kinerja-rules plugin can implement, with the markers to implement them.

A plugin is a module (or object) with functions decorated by `hookimpl`, named after the
specs below. Hooks return data; the core builds an immutable registry from it. Plugins
are found through the entry-point group `kinerja_rules` and the `--plugins` folders;
none is loaded at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kinerja_rules.decision import Decision
    from kinerja_rules.functions import FunctionSpec, IndicatorSpec

PROJECT = "kinerja_rules"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def kinerja_register_functions() -> list[FunctionSpec]:  # type: ignore[empty-body]
    """Return the functions this plugin adds to the expression language.

    Called once when a registry is built (at start-up, and on each reload). Each
    FunctionSpec names the function, its typed parameters, its return type, a pure
    Python callable, a one-line description and an optional citation. Policies calling
    the function are type-checked against these types like calls to built-ins.
    """


@hookspec
def kinerja_register_indicators() -> list[IndicatorSpec]:  # type: ignore[empty-body]
    """Return the indicators this plugin adds: named, typed values computed from a record.

    Called once when a registry is built. An IndicatorSpec names the dotted input path it
    reads (`source`, e.g. `survei`), that part's type, the value's type and a pure
    callable receiving that part of the record. A policy uses the indicator by its name.
    """


@hookspec
def kinerja_observe_decision(policy_id: str, decision: Decision) -> None:
    """Observe a decision after it is made, for audit or export; the return value is ignored.

    Called after every successful evaluation, in the evaluating thread. When no plugin
    implements this hook, the engine does not call it at all, so it costs nothing.
    An observer that raises does not change the decision; the error is reported.
    """
