"""`kinerja serve`: run the service with uvicorn, one process or several workers.

Workers are separate processes, each compiling the policies itself. They share the
generation in service through a private folder (see `service.Shared`): a reload in one of
them is taken up by every other, and a worker the supervisor restarts reads it on start.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import logging.config
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from kinerja_rules import Engine, PolicyError, discover
from kinerja_rules.bulk import default_jobs as cpu_count
from kinerja_rules.engine import reload_paths
from kinerja_rules.server.app import create_app
from kinerja_rules.server.auth import ENV_KEYS, KeyFileError, KeyRing
from kinerja_rules.server.bodies import FailedPolicy, Limits
from kinerja_rules.server.decisions import Recorder
from kinerja_rules.server.guard import ConnectionLimits, GuardedHttpTools, file_descriptors_for
from kinerja_rules.server.logs import writer
from kinerja_rules.server.problems import DiagnosticOut
from kinerja_rules.server.service import PolicyService, Shared, generation_of
from kinerja_rules.server.validation import Validator
from kinerja_rules.server.work import Work
from kinerja_rules.store import StoreError, open_store, without_password

_ENV_SETTINGS = "KINERJA_SERVE_SETTINGS"
_log = logging.getLogger("kinerja_rules.server")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker needs to build the same service as the others."""

    policies: list[str]
    plugins: list[str] = []
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    keys_file: str | None = None
    allow_unauthenticated: bool = False
    access_log: bool = True
    limits: Limits = Limits()
    connections: ConnectionLimits = ConnectionLimits()
    validate_processes: int = 1
    validate_seconds: float = 30.0
    work_seconds: float = 30.0  # the time budget of one expensive request
    max_work: int = 4  # expensive requests run at once, per worker
    store_timeout: float = 5.0  # how long a request waits for the decision store
    public_metrics: bool = False  # with keys: /metrics without an admin key
    cors_origins: list[str] = []  # browser origins allowed to call the service
    graceful_timeout: int = 30
    batch_processes: int | None = None  # None: one per CPU with one worker; with several, one if plugin code runs
    plugin_call_seconds: float = 2.0  # the time budget of one plugin call
    state_dir: str | None = None  # with several workers: the folder where they share the generation in service
    store: str | None = None  # where decisions are recorded: a data directory or a PostgreSQL DSN; None: not at all
    redact: list[str] = []  # input fields kept as keyed hashes in the decision records
    retention_days: int | None = None  # decision records older than this are deleted (daily)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """Service messages as plain lines on stderr (the access log goes to stdout by itself)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        # through a bounded buffer and a thread of its own: a stalled reader never holds up a request
        "handlers": {"stderr": {"()": "kinerja_rules.server.logs.StderrHandler", "formatter": "plain"}},
        "loggers": {"kinerja_rules": {"handlers": ["stderr"], "level": level, "propagate": False},
                    "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
                    "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
    }


def build_app(settings: Settings, *, keys: KeyRing | None = None) -> tuple[Any, PolicyService]:
    """Compile the policies and build the application; raises PolicyError or KeyFileError.

    A worker of several serves the newest generation the others share, if there is one yet.
    """
    if keys is None:
        keys = KeyRing.load(Path(settings.keys_file) if settings.keys_file else None)
    registry = discover([Path(p) for p in settings.plugins])
    shared = Shared(Path(settings.state_dir), settings.workers) if settings.state_dir else None
    current = shared.read() if shared is not None else None
    failed: Sequence[FailedPolicy] = current.failed if current else ()
    if current is not None:
        engine = Engine.from_groups(current.source_groups(), registry)
    else:  # as a reload does: each policy that compiles is served, and the others are reported
        outcome = reload_paths([Path(p) for p in settings.policies], registry, {})
        if outcome.refused or not outcome.policies:
            raise PolicyError(outcome.refused or tuple(d for diags in outcome.failed.values() for d in diags))
        engine = Engine(outcome.policies, registry, outcome.warnings)
        failed = [FailedPolicy(policy=pid, diagnostics=[DiagnosticOut.of(d) for d in diags])
                  for pid, diags in outcome.failed.items()]
    processes = settings.batch_processes
    plugin_code = any(p.calls_plugins for p in engine.policies())
    if processes is None:  # plugin code runs in these processes, where its calls are bounded in time: one at least
        processes = cpu_count() if settings.workers == 1 and cpu_count() > 1 else int(plugin_code)
    if processes == 0 and plugin_code:
        _log.warning("no batch processes: plugin calls run in a thread of the service, without a time budget")
    service = PolicyService(engine, [Path(p) for p in settings.policies], plugins=[Path(p) for p in settings.plugins],
                            batch_processes=processes, shared=shared,
                            generation=current.generation if current else 0, failed=failed,
                            plugin_call_seconds=settings.plugin_call_seconds)
    access_log = writer(1, "stdout") if settings.access_log else None
    validator = Validator(service.plugins, settings.validate_processes, settings.validate_seconds)
    recorder = None
    if settings.store is not None:
        recorder = Recorder(open_store(settings.store, settings.redact), settings.retention_days,
                            settings.store_timeout)
    app = create_app(service, keys=keys, limits=settings.limits, access_log=access_log, validator=validator,
                     public_metrics=settings.public_metrics, cors_origins=settings.cors_origins, recorder=recorder,
                     work=Work(settings.work_seconds, settings.max_work), hangup_reloads=True)
    gc.collect()
    gc.freeze()  # the compiled policies live as long as the process: keep them out of every GC pass
    return app, service


def guard_connections(settings: Settings) -> ConnectionLimits:
    """Install this process's connection limits (the open-file limit raised to hold them)."""
    limits = settings.connections
    held = file_descriptors_for(limits.max_connections)
    if held < limits.max_connections:
        _log.warning("the open-file limit holds only %d connections, not %d: serving at most %d",
                     held, limits.max_connections, held)
        limits = msgspec.structs.replace(limits, max_connections=held)
    GuardedHttpTools.limits = limits
    return limits


def worker_app() -> Any:
    """The application of one worker process (uvicorn calls this in each worker)."""
    settings = msgspec.json.decode(os.environ[_ENV_SETTINGS], type=Settings)
    guard_connections(settings)
    return build_app(settings)[0]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs the service (our middleware writes the access log, not uvicorn)."""
    return {"host": settings.host, "port": settings.port, "log_config": logging_config(), "access_log": False,
            "http": GuardedHttpTools,
            "timeout_graceful_shutdown": settings.graceful_timeout, "server_header": False, "proxy_headers": False}


def port_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (as uvicorn will, with SO_REUSEADDR), or None: asked
    before anything says the service started."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return str(exc.strerror or exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return str(exc.strerror or exc)
    return None


def _hangup_reloads_a_worker() -> None:
    """With several workers, SIGHUP to the supervising process goes to one worker, which re-reads the
    policies folder and publishes the new generation to the others (uvicorn would restart every
    worker, each serving the generation it was serving)."""
    from uvicorn.supervisors import multiprocess

    def handle_hup(self: Any) -> None:
        alive = [p for p in self.processes if p.is_alive()]
        if alive:
            _log.info("SIGHUP: a worker re-reads the policies folder")
            os.kill(alive[0].pid, signal.SIGHUP)

    multiprocess.Multiprocess.handle_hup = handle_hup  # type: ignore[method-assign]


def _preflight(settings: Settings) -> KeyRing | int:
    """The keys to serve with, or the exit status when the service must not start (said on stderr)."""
    try:
        keys = KeyRing.load(Path(settings.keys_file) if settings.keys_file else None)
    except KeyFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not keys and not is_loopback(settings.host) and not settings.allow_unauthenticated:
        print(f"error: no API keys are configured, so the service only binds to loopback, not {settings.host}.\n"
              f"Give keys with --keys FILE or ${ENV_KEYS} (see `kinerja key --help`), "
              "or pass --allow-unauthenticated to serve without them.", file=sys.stderr)
        return 2
    return keys


def _announce(settings: Settings, service: PolicyService, keys: KeyRing) -> None:
    """Say what is served, with which plugins, and how it is protected."""
    engine = service.engine
    for w in engine.warnings:
        _log.warning("%s", w.render())
    for broken in engine.registry.broken:
        _log.error("%s; it is left out, and so is every policy that uses it", broken)
    for failed in service.failed:
        _log.error("policy %r is not in service:\n%s", failed.policy,
                   "\n".join(d.rendered or d.message for d in failed.diagnostics))
    listing = ", ".join(f"{p.id} {p.version}" for p in engine.policies())
    _log.info("serving %d policies (%s) on http://%s:%d with %d worker(s) and %d batch process(es); "
              "API docs at /docs", len(engine.ids), listing, settings.host, settings.port, settings.workers,
              service.batch_processes)
    plugins = ", ".join(f"{name} {version}".rstrip() for name, version in sorted(engine.registry.plugins.items()))
    _log.info("plugins: %s", plugins)
    if keys:
        _log.info("API keys: %d configured; every /v1/ call needs Authorization: Bearer <key>", len(keys.keys))
    elif is_loopback(settings.host):
        _log.warning("no API keys configured: serving without authentication, on loopback only")
    else:
        _log.warning("no API keys configured and --allow-unauthenticated given: anyone who reaches %s "
                     "can call every endpoint, reload included", settings.host)
    if settings.store is None:
        _log.warning("decisions are not recorded (--no-store): they cannot be looked up, replayed or appealed")
    else:
        retention = f", deleted after {settings.retention_days} days" if settings.retention_days else ""
        redacted = f", {', '.join(settings.redact)} kept as keyed hashes" if settings.redact else ""
        _log.info("decisions recorded in %s%s%s", without_password(settings.store), redacted, retention)


def serve(settings: Settings) -> int:
    """Check everything, say what is served and how it is protected, then serve until stopped."""
    import uvicorn

    logging.config.dictConfig(logging_config())
    keys = _preflight(settings)
    if isinstance(keys, int):
        return keys
    try:
        app, service = build_app(settings, keys=keys)
    except PolicyError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (taken := port_taken(settings.host, settings.port)) is not None:  # before anything says it started
        if app.state.recorder is not None:
            app.state.recorder.close()  # its writer process has started
        print(f"error: cannot listen on {settings.host}:{settings.port}: {taken}", file=sys.stderr)
        return 2
    _announce(settings, service, keys)
    connections = guard_connections(settings)
    _log.info("connections: at most %d per worker, headers %d bytes in %d fields within %g s, body pauses up to %g s",
              connections.max_connections, connections.max_header_bytes, connections.max_headers,
              connections.header_timeout, connections.body_timeout)
    common = uvicorn_options(settings)
    if settings.workers > 1:
        with tempfile.TemporaryDirectory(prefix="kinerja-workers-") as state:  # the generation the workers share
            Shared(Path(state), settings.workers).publish(generation_of(0, service.engine, service.failed))
            (Path(state) / "metrics").mkdir()  # every worker's counts, added up at each scrape
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(state) / "metrics")
            shared = msgspec.structs.replace(settings, state_dir=state)
            os.environ[_ENV_SETTINGS] = msgspec.json.encode(shared).decode()
            _hangup_reloads_a_worker()
            uvicorn.run("kinerja_rules.server.serve:worker_app", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(app, **common)
    _log.info("stopped")
    writer(2, "stderr").close(timeout=2)  # the last lines, unless nobody reads them
    return 0
