"""Find plugins, check what they register, and build the immutable Registry.

Discovery: the entry-point group `kinerja_rules` of installed packages, plus modules
and packages in `--plugins` folders. A plugin that fails (it does not import, a hook is
misspelled, two plugins register one name, a function declares an invalid type) is left
out as a `BrokenPlugin` naming the file and line at fault; the others load, and only the
policies that use what it would have given fail to compile.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import msgspec
import pluggy

from kinerja_rules import builtin_plugin, hookspecs
from kinerja_rules._suggest import did_you_mean
from kinerja_rules.errors import PluginError
from kinerja_rules.functions import FunctionSpec, IndicatorSpec
from kinerja_rules.registry import BrokenPlugin, Registry
from kinerja_rules.typecheck import _param_type
from kinerja_rules.types import TypeSyntaxError

GROUP = "kinerja_rules"
Spec = TypeVar("Spec", FunctionSpec, IndicatorSpec)


def _version_of(dist: Any) -> str:
    try:
        return str(dist.version)
    except Exception:
        return ""


def plugin_manager(plugin_dirs: Sequence[Path] = (), entry_points: bool = True  # noqa: C901
                   ) -> tuple[pluggy.PluginManager, dict[str, str], list[BrokenPlugin]]:
    """A plugin manager with the built-ins, the installed plugins and those in `plugin_dirs`.

    Returns it with the version of each plugin, by name, and the plugins left out as broken.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    versions = {"builtins": ""}
    broken: list[BrokenPlugin] = []
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_plugin, name="builtins")
    if entry_points:
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != GROUP or pm.has_plugin(ep.name) or any(b.plugin == ep.name for b in broken):
                    continue
                try:
                    module = ep.load()
                except Exception as exc:
                    broken.append(_failed_import(ep.name, _version_of(dist), f"({ep.value}) ", exc))
                    continue
                if _register(pm, module, ep.name, _version_of(dist), broken):
                    versions[ep.name] = _version_of(dist)
    for folder in plugin_dirs:
        for name, module in _modules_in(folder, broken):
            if not pm.has_plugin(name) and _register(pm, module, name, str(getattr(module, "__version__", "")),
                                                     broken):
                versions[name] = str(getattr(module, "__version__", ""))
    for hook_name in sorted(vars(pm.hook)):  # a hook no spec declares: a misspelled hook name
        caller = getattr(pm.hook, hook_name)
        if hook_name.startswith("_") or getattr(caller, "spec", True) is not None:
            continue  # pluggy leaves private names alone
        for impl in caller.get_hookimpls():
            if pm.has_plugin(impl.plugin_name) and not impl.optionalhook:
                broken.append(BrokenPlugin(
                    plugin=impl.plugin_name, version=versions.pop(impl.plugin_name, ""),
                    reason=f"unknown hook {hook_name!r}{did_you_mean(hook_name, _hook_names())} "
                           f"(the hooks are {', '.join(_hook_names())})",
                    **_where(impl.function)))
                pm.unregister(name=impl.plugin_name)
    pm.check_pending()  # every unknown hook's plugin is out by now
    return pm, versions, broken


def _hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("kinerja_"))


def _where(fn: Any) -> dict[str, Any]:
    """The file and line a plugin's function is defined at."""
    try:
        return {"file": inspect.getsourcefile(fn) or "", "line": inspect.getsourcelines(fn)[1]}
    except (TypeError, OSError):
        return {}


def _failed_import(name: str, version: str, detail: str, exc: Exception) -> BrokenPlugin:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if "importlib" not in f.filename] or frames
    last = inside[-1] if inside else None
    return BrokenPlugin(plugin=name, version=version,
                        reason=f"failed to import {detail}{type(exc).__name__}: {exc}".replace("  ", " "),
                        file=last.filename if last else "", line=last.lineno or 0 if last else 0)


def _register(pm: pluggy.PluginManager, module: Any, name: str, version: str, broken: list[BrokenPlugin]) -> bool:
    try:
        pm.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        fn = getattr(getattr(exc, "plugin", None), str(getattr(exc, "hookimpl", "")), None)
        broken.append(BrokenPlugin(plugin=name, version=version, reason=f"cannot be registered: {exc}",
                                   **_where(fn) if fn else {}))
        return False
    return True


def _modules_in(folder: Path, broken: list[BrokenPlugin]) -> list[tuple[str, ModuleType]]:
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
            broken.append(_failed_import(name, "", "", exc))
            continue
        marked = [v for v in vars(module).values() if callable(v) and hasattr(v, f"{hookspecs.PROJECT}_impl")]
        if marked:  # anything marked @hookimpl, so a misspelled hook name is caught, not skipped
            found.append((name, module))
    return found


def _check_type(text: str, what: str) -> None:
    if text in ("number", "rounding", "any"):
        return
    try:
        _param_type(text)
    except TypeSyntaxError as exc:
        raise PluginError(f"{what} has an invalid type: {exc}") from None


def _registrations(hook: Any, kind: type[Spec], versions: dict[str, str],
                   broken: list[BrokenPlugin]) -> Iterator[tuple[str, list[Spec]]]:
    """(plugin, specs) for every registration hook that returned a list of specs; the others are broken."""
    for impl in hook.get_hookimpls():
        try:
            specs = impl.function()
        except Exception as exc:
            broken.append(BrokenPlugin(plugin=impl.plugin_name, version=versions.get(impl.plugin_name, ""),
                                       reason=f"{hook.name} raised {type(exc).__name__}: {exc}",
                                       **_where(impl.function)))
            continue
        if not isinstance(specs, (list, tuple)) or not all(isinstance(s, kind) for s in specs):
            broken.append(BrokenPlugin(plugin=impl.plugin_name, version=versions.get(impl.plugin_name, ""),
                                       reason=f"{hook.name} must return a list of {kind.__name__}",
                                       **_where(impl.function)))
            continue
        yield impl.plugin_name, list(specs)


def _function_problem(spec: FunctionSpec, taken: dict[str, Any], plugin: str) -> str:
    if spec.name in taken:
        return f"plugins {taken[spec.name].plugin!r} and {plugin!r} both register function {spec.name!r}"
    try:
        for pname, ptype in spec.params:
            _check_type(ptype, f"parameter {pname!r} of function {spec.name!r}")
        _check_type(spec.returns, f"the return of function {spec.name!r}")
    except PluginError as exc:
        return str(exc)
    return "" if callable(spec.impl) else f"function {spec.name!r} has no callable impl"


def _indicator_problem(ind: IndicatorSpec, taken: dict[str, Any]) -> str:
    if ind.name in taken:
        return f"registers {ind.name!r}, a name already registered"  # the caller names the plugin
    try:
        _check_type(ind.returns, f"the value of indicator {ind.name!r}")
        _check_type(ind.source_type, f"the source of indicator {ind.name!r}")
    except PluginError as exc:
        return str(exc)
    return ""


def registry_from(pm: pluggy.PluginManager, versions: dict[str, str], broken: Sequence[BrokenPlugin] = ()) -> Registry:
    """Collect and check every registration into an immutable Registry. A plugin with any bad
    registration is left out whole (as broken): half a plugin would be harder to reason about."""
    out = list(broken)
    functions: dict[str, FunctionSpec] = {}
    indicators: dict[str, IndicatorSpec] = {}
    hook_fns = {impl.plugin_name: impl.function for hook in (pm.hook.kinerja_register_functions,
                                                              pm.hook.kinerja_register_indicators)
                for impl in hook.get_hookimpls()}

    def reject(plugin: str, reason: str) -> None:
        out.append(BrokenPlugin(plugin=plugin, version=versions.get(plugin, ""), reason=reason,
                                **_where(hook_fns.get(plugin))))

    for plugin, specs in _registrations(pm.hook.kinerja_register_functions, FunctionSpec, versions, out):
        mine: dict[str, FunctionSpec] = {}
        for spec in specs:
            problem = _function_problem(spec, {**functions, **mine}, plugin)
            if problem:
                reject(plugin, problem)
                break
            mine[spec.name] = msgspec.structs.replace(spec, plugin=plugin, version=versions.get(plugin, spec.version))
        else:
            functions.update(mine)
    failed = {b.plugin for b in out}
    for plugin, inds in _registrations(pm.hook.kinerja_register_indicators, IndicatorSpec, versions, out):
        if plugin in failed:
            continue
        given: dict[str, IndicatorSpec] = {}
        for ind in inds:
            problem = _indicator_problem(ind, {**functions, **indicators, **given})
            if problem:
                reject(plugin, f"plugin {plugin!r} {problem}" if problem.startswith("registers") else problem)
                break
            given[ind.name] = msgspec.structs.replace(ind, plugin=plugin, version=versions.get(plugin, ind.version))
        else:
            indicators.update(given)
    failed = {b.plugin for b in out}
    functions = {name: spec for name, spec in functions.items() if spec.plugin not in failed}
    indicators = {name: ind for name, ind in indicators.items() if ind.plugin not in failed}
    plugins = {name: versions.get(name, "") for name, _ in pm.list_name_plugin() if name not in failed}
    observers = pm.hook.kinerja_observe_decision
    return Registry(functions=functions, indicators=indicators, plugins=plugins,
                    observe=observers if observers.get_hookimpls() else None, broken=tuple(out))


def load_registry(plugin_dirs: Sequence[Path] = (), entry_points: bool = True) -> Registry:
    """Discover plugins and build the registry policies are checked against."""
    return registry_from(*plugin_manager(plugin_dirs, entry_points))
