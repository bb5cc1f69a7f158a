"""What policies may call: the functions and indicators the plugins gave, and the plugins left out.

Built by `plugins.load_registry` (through `engine.discover`); read by the checker's callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kinerja_rules.functions import BUILTINS, FunctionSpec, IndicatorSpec


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out: why, and the file and line at fault (when known)."""

    plugin: str
    reason: str
    version: str = ""
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f" ({self.file}:{self.line})" if self.file and self.line else f" ({self.file})" if self.file else ""
        return f"plugin {self.plugin!r}{where}: {self.reason}"


@dataclass(frozen=True)
class Registry:
    """The functions and indicators policies may use, and the plugins that gave them."""

    functions: Mapping[str, FunctionSpec]
    indicators: Mapping[str, IndicatorSpec] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)  # plugin name -> version
    observe: Any = None  # the decision-observer hook caller, or None when no plugin observes
    broken: tuple[BrokenPlugin, ...] = ()  # plugins left out: what they would give is unknown to policies

    @classmethod
    def builtins(cls) -> Registry:
        return cls(functions={spec.name: spec for spec in BUILTINS}, plugins={"builtins": ""})
