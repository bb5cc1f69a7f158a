"""Find plugins, check what they register, and build the immutable Registry.

Discovery: the entry-point group `kinerja_rules` of installed packages, plus modules
and packages in `--plugins` folders. Every failure (a plugin that does not import, a
misspelled hook, two plugins registering one name, a function with invalid types)
is a PluginError naming the plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import msgspec
import pluggy

from kinerja_rules import builtin_plugin, hookspecs
from kinerja_rules.engine import Registry
from kinerja_rules.errors import PluginError
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.typecheck import _param_type
from kinerja_rules.types import TypeSyntaxError

GROUP = "kinerja_rules"
Spec = TypeVar("Spec", FunctionSpec, IndicatorSpec)


def _version_of(dist: Any) -> str:
    try:
        return str(dist.version)
    except Exception:
        return ""


def plugin_manager(plugin_dirs: Sequence[Path] = (),
                   entry_points: bool = True) -> tuple[pluggy.PluginManager, dict[str, str]]:
    """A plugin manager with the built-ins, the installed plugins and those in `plugin_dirs`.

    Returns it with the version of each plugin, by name.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    versions = {"builtins": ""}
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_plugin, name="builtins")
    if entry_points:
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != GROUP or pm.has_plugin(ep.name):
                    continue
                try:
                    module = ep.load()
                except Exception as exc:
                    raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: "
                                      f"{type(exc).__name__}: {exc}") from None
                _register(pm, module, ep.name)
                versions[ep.name] = _version_of(dist)
    for folder in plugin_dirs:
        for name, module in _modules_in(folder):
            if not pm.has_plugin(name):
                _register(pm, module, name)
                versions[name] = str(getattr(module, "__version__", ""))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}; the hooks are {', '.join(_hook_names())}") from None
    return pm, versions


def _hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("kinerja_"))


def _register(pm: pluggy.PluginManager, module: Any, name: str) -> None:
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from None


def _modules_in(folder: Path) -> list[tuple[str, ModuleType]]:
    """Import the plugin modules of a folder: `*.py` files and packages (also under `src/`)."""
    if not folder.is_dir():
        raise PluginError(f"plugin folder {folder} does not exist")
    found: list[tuple[str, ModuleType]] = []
    candidates: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if entry.suffix == ".py" and entry.stem != "__init__":
            candidates.append(entry)
        elif entry.is_dir():
            base = entry / "src" if (entry / "src").is_dir() else entry
            candidates += [p for p in sorted(base.iterdir()) if (p / "__init__.py").is_file()]
            if (entry / "__init__.py").is_file():
                candidates.append(entry)
    for path in candidates:
        name = path.stem if path.suffix == ".py" else path.name
        root = str(path.parent)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} ({path}) failed to import: {type(exc).__name__}: {exc}") from None
        marked = [v for v in vars(module).values() if callable(v) and hasattr(v, f"{hookspecs.PROJECT}_impl")]
        if marked:  # anything marked @hookimpl, so a misspelled hook name is caught, not skipped
            found.append((name, module))
    return found


def _check_type(text: str, what: str, plugin: str) -> None:
    if text in ("number", "rounding", "any"):
        return
    try:
        _param_type(text)
    except TypeSyntaxError as exc:
        raise PluginError(f"plugin {plugin!r}: {what} has an invalid type: {exc}") from None


def _registrations(hook: Any, kind: type[Spec]) -> Iterator[tuple[str, Spec]]:
    """(plugin, spec) for every spec a registration hook returns, checking it returned specs."""
    for impl in hook.get_hookimpls():
        specs = impl.function()
        if not isinstance(specs, (list, tuple)) or not all(isinstance(s, kind) for s in specs):
            raise PluginError(f"plugin {impl.plugin_name!r}: {hook.name} must return a list of {kind.__name__}")
        for spec in specs:
            yield impl.plugin_name, spec


def registry_from(pm: pluggy.PluginManager, versions: dict[str, str]) -> Registry:
    """Collect and check every registration into an immutable Registry."""
    functions: dict[str, FunctionSpec] = {}
    indicators: dict[str, IndicatorSpec] = {}
    for plugin, spec in _registrations(pm.hook.kinerja_register_functions, FunctionSpec):
        if spec.name in functions:
            raise PluginError(f"plugins {functions[spec.name].plugin!r} and {plugin!r} both register "
                              f"function {spec.name!r}")
        for pname, ptype in spec.params:
            _check_type(ptype, f"parameter {pname!r} of function {spec.name!r}", plugin)
        _check_type(spec.returns, f"the return of function {spec.name!r}", plugin)
        if not callable(spec.impl):
            raise PluginError(f"plugin {plugin!r}: function {spec.name!r} has no callable impl")
        functions[spec.name] = msgspec.structs.replace(spec, plugin=plugin, version=versions.get(plugin, spec.version))
    for plugin, ind in _registrations(pm.hook.kinerja_register_indicators, IndicatorSpec):
        if ind.name in indicators or ind.name in functions:
            raise PluginError(f"plugin {plugin!r} registers {ind.name!r}, a name already registered")
        _check_type(ind.returns, f"the value of indicator {ind.name!r}", plugin)
        _check_type(ind.source_type, f"the source of indicator {ind.name!r}", plugin)
        indicators[ind.name] = msgspec.structs.replace(ind, plugin=plugin, version=versions.get(plugin, ind.version))
    plugins = {name: versions.get(name, "") for name, _ in pm.list_name_plugin()}
    observers = pm.hook.kinerja_observe_decision
    return Registry(functions=functions, indicators=indicators, plugins=plugins,
                    observe=observers if observers.get_hookimpls() else None)


def load_registry(plugin_dirs: Sequence[Path] = (), entry_points: bool = True) -> Registry:
    """Discover plugins and build the registry policies are checked against."""
    return registry_from(*plugin_manager(plugin_dirs, entry_points))
