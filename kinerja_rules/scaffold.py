"""`kinerja new REGION`: a region's policy folder that checks and passes its tests as written."""

from __future__ import annotations

import re
from pathlib import Path

_ID = re.compile(r"^[a-z][a-z0-9_-]{1,39}\Z")

POLICY = '''\
# {title}: what this region's Perkada changes in the national baseline.
# Everything not written here is inherited from `nasional` (policies/nasional.yaml).
policy: {region}
extends: nasional
title: Kebijakan kinerja dan TPP ASN {title}
version: "2025.1"

references:
  # Name each instrument you cite; fill in its number and year when it is enacted.
  perkada-{region}-tpp: Peraturan Kepala Daerah {title} tentang Tambahan Penghasilan Pegawai ASN

# Override a national value by name with `override: true`, keeping its type, and give each
# change its effective date so past months are still decided with the values then in force:
#
# parameters:
#   bobot_kinerja:
#     override: true
#     type: percent
#     cite: perkada-{region}-tpp
#     values: {{2024-01-01: 60%, 2025-07-01: 70%}}
#   bobot_disiplin:
#     override: true
#     type: percent
#     cite: perkada-{region}-tpp
#     values: {{2024-01-01: 40%, 2025-07-01: 30%}}
#
# Change some keys of a keyed parameter only (the other keys keep the national values):
#
#   pagu_tpp:
#     extend: true
#     cite: perkada-{region}-tpp
#     values: {{2025-07-01: {{9: 6_000_000, 10: 6_800_000}}}}
#
# Build on the national formula instead of copying it, with parent(name):
#
# definitions:
#   tpp_diterima:
#     override: true
#     type: money
#     expr: parent(tpp_diterima) + 0
'''

TESTS = '''\
# Test cases of {region}: `kinerja test policies/{region}`. The fixture `pns_baik` is inherited
# from nasional; vary it with `with:`. Give every override a case whose outcome differs from
# nasional, and every dated change one case on each side of its date.
policy: {region}

tests:
  dasar_seperti_nasional:
    doc: With nothing overridden yet, the region decides like the national baseline.
    record: pns_baik
    expect:
      evaluasi.predikat: baik
      tpp.pagu: 4_500_000
      tpp.diterima: 4_500_000
  cpns_80_persen:
    record: pns_baik
    with: {{status: cpns}}
    expect: {{tpp.diterima: 3_600_000}}
'''


class ScaffoldError(ValueError):
    """The region's name or folder cannot be used."""


def new_region(region: str, policies: Path, title: str | None = None) -> list[Path]:
    """Write `policies/REGION/policy.yaml` and `tests.yaml`; refuse to overwrite anything."""
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
    for file, template in (("policy.yaml", POLICY), ("tests.yaml", TESTS)):
        path = folder / file
        path.write_text(template.format(region=region, title=name), encoding="utf-8")
        written.append(path)
    return written
