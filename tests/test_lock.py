"""The locks: every dependency pinned, the service's lock a share of the whole, and this
environment installed from them (so CI runs on exactly what the lock says)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$", re.M)


def _pins(name: str) -> dict[str, list[tuple[str, str | None]]]:
    """Each package of a lock with its pins: a universal lock may pin two versions of one
    package, each under its own marker."""
    pins: dict[str, list[tuple[str, str | None]]] = {}
    for package, version, marker in _PIN.findall((ROOT / name).read_text()):
        pins.setdefault(canonicalize_name(package), []).append((version, marker or None))
    return pins


def _here(pins: list[tuple[str, str | None]]) -> list[str]:
    """The versions a lock pins for this interpreter and platform."""
    env = default_environment()
    return [version for version, marker in pins
            if marker is None or Requirement(f"x; {marker}").marker.evaluate(env)]  # type: ignore[union-attr]


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        texts += extra
    for group in project["dependency-groups"].values():
        texts += group
    return [Requirement(text) for text in texts]


def test_every_declared_dependency_is_locked_at_a_version_it_allows() -> None:
    pins = _pins("requirements.lock")
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is in pyproject.toml but not in requirements.lock: make lock UPGRADE="
        for version in _here(pins[name]):
            assert requirement.specifier.contains(version, prereleases=True), \
                f"requirements.lock pins {name}=={version}, which {requirement} does not allow: make lock UPGRADE="


def test_each_bundled_plugin_gets_its_dependencies_from_the_lock() -> None:
    """`make` installs the plugins without resolving anything: what they need comes from the
    `plugins` dependency group, which the locks hold."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = {canonicalize_name(Requirement(text).name) for text in project["dependency-groups"]["plugins"]}
    manifests = sorted((ROOT / "plugins").glob("*/pyproject.toml"))
    assert manifests
    for manifest in manifests:
        for text in tomllib.loads(manifest.read_text())["project"].get("dependencies", []):
            name = canonicalize_name(Requirement(text).name)
            assert name == "kinerja-rules" or name in group, \
                f"{manifest.parent.name} needs {text}: add it to [dependency-groups] plugins, then make lock UPGRADE="


def test_every_lock_line_carries_hashes() -> None:
    for name in ("requirements.lock", "requirements-server.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / name).read_text().split("\n", 2)[2])
        for entry in entries:
            if _PIN.match(entry):
                assert "--hash=sha256:" in entry, f"{name}: {entry.splitlines()[0]} has no hash"


def test_the_service_lock_pins_what_the_whole_lock_pins() -> None:
    whole, service = _pins("requirements.lock"), _pins("requirements-server.lock")
    assert {"litestar", "msgspec", "psycopg", "pip", "setuptools"} <= service.keys()
    assert not {"pytest", "mypy", "ruff", "uv"} & service.keys()  # the image carries no test tools
    for name, pins in service.items():
        assert {v for v, _ in pins} <= {v for v, _ in whole[name]}, f"{name}: the two locks differ"


def test_this_environment_runs_the_locked_versions() -> None:
    """`make install` installs from the lock: a package at another version means an install
    that went around it."""
    for name, pins in _pins("requirements.lock").items():
        wanted = _here(pins)
        if not wanted:
            continue  # locked for another Python or platform only
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name}=={wanted[0]} is locked but not installed")
        assert installed in wanted, f"{name} {installed} is installed; requirements.lock pins {wanted}"
