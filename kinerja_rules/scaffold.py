"""`kinerja new REGION`: a region's policy folder that checks and passes its tests as written."""

from __future__ import annotations

import re
from pathlib import Path

from kinerja_rules.catalogue import template

_ID = re.compile(r"^[a-z][a-z0-9_-]{1,39}\Z")

class ScaffoldError(ValueError):
    """The region's name or folder cannot be used."""


def new_region(region: str, policies: Path, title: str | None = None, lang: str = "en") -> list[Path]:
    """Write `policies/REGION/policy.yaml` and `tests.yaml`, their comments in `lang` (from the
    catalogue); refuse to overwrite anything."""
    if not _ID.match(region):
        raise ScaffoldError(f"{region!r} is not a policy id: use 2-40 lower case letters, digits, '-' or '_', "
                            "starting with a letter")
    if not (policies / "nasional.yaml").is_file() and not any(policies.glob("**/nasional*.yaml")):
        raise ScaffoldError(f"{policies} holds no nasional policy to extend; give the policies folder "
                            "with --policies DIR")
    folder = policies / region
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; nothing was written")
    name = title or region.replace("_", " ").replace("-", " ").title()
    folder.mkdir(parents=True)
    written = []
    for file, entry in (("policy.yaml", "scaffold.policy"), ("tests.yaml", "scaffold.tests")):
        path = folder / file
        path.write_text(template(entry, lang).format(region=region, title=name), encoding="utf-8")
        written.append(path)
    return written
