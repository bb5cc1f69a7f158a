"""Counters of this process that no application instance owns: the connection guard's
refusals and the log lines dropped. With several workers, prometheus-client's
multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by `kinerja serve`) adds every
worker's counts together at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series beside each counter

PROCESS = CollectorRegistry(auto_describe=False)
REFUSED = Counter("kinerja_connections_refused", "Connections refused before any request reached the service, "
                  "by reason.", ["reason"], registry=PROCESS)
DROPPED = Counter("kinerja_log_lines_dropped", "Log lines dropped because their reader did not keep up.",
                  ["stream"], registry=PROCESS)
for _reason in ("header-too-large", "header-timeout", "body-timeout", "too-many-connections"):
    REFUSED.labels(_reason)
