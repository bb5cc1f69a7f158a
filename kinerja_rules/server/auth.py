"""API keys: hashed at rest, scoped to policies, compared in constant time.

A key file (YAML or JSON) lists keys by the SHA-256 of the key, never the key itself::

    keys:
      - name: payroll
        sha256: 5f0c...e1
        policies: [nasional, sawahlunto]
      - name: operations
        sha256: 9ab2...07
        policies: ["*"]
        admin: true

Keys are long random tokens (`kinerja key` makes one), so a plain SHA-256 is enough to
keep them useless if the file leaks; a slow password hash would only slow every request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from kinerja_rules.server.problems import ApiProblem

ENV_KEYS = "KINERJA_API_KEYS"
ENV_KEYS_FILE = "KINERJA_API_KEYS_FILE"
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


class KeyFileError(ValueError):
    """A key file or variable that cannot be read; the message names where."""


class ApiKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One API key: who holds it, the SHA-256 of the key, and what it may reach."""

    name: str
    sha256: str
    policies: list[str]
    admin: bool = False

    def allows(self, policy_id: str) -> bool:
        return "*" in self.policies or policy_id in self.policies


class _KeyFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    keys: list[ApiKey]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits)."""
    return "kr_" + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys. An empty ring means the service runs without authentication."""

    def __init__(self, keys: Sequence[ApiKey] = ()) -> None:
        self.keys = tuple(keys)
        self._digests = [bytes.fromhex(k.sha256) for k in self.keys]

    def __bool__(self) -> bool:
        return bool(self.keys)

    @classmethod
    def parse(cls, text: str, where: str) -> KeyRing:
        """Read a key document (YAML or JSON) and check every entry; errors name `where`."""
        try:
            data: Any = YAML(typ="safe", pure=True).load(text)
        except YAMLError as exc:
            raise KeyFileError(f"{where}: not valid YAML or JSON: {exc}") from None
        try:
            keys = msgspec.convert(data, _KeyFile).keys
        except msgspec.ValidationError as exc:
            hint = "; write the digest in quotes" if "sha256" in str(exc) else ""
            raise KeyFileError(f"{where}: {exc}{hint}") from None
        for i, key in enumerate(keys):
            if not _HEX64.match(key.sha256):
                raise KeyFileError(f"{where}: keys[{i}] ({key.name}): sha256 must be 64 lowercase hex digits "
                                "(the SHA-256 of the key, as `kinerja key` prints it)")
            if not key.policies and not key.admin:
                raise KeyFileError(f"{where}: keys[{i}] ({key.name}): give 'policies' (ids or \"*\") or 'admin: true'")
        if not keys:  # asked for keys and given none: serving without authentication is never what was meant
            raise KeyFileError(f"{where}: holds no keys; add one with `kinerja key`, or give no key file to serve "
                               "without authentication (loopback only)")
        return cls(keys)

    @classmethod
    def load(cls, path: Path | None = None) -> KeyRing:
        """Keys from `path`, else from $KINERJA_API_KEYS_FILE, else from $KINERJA_API_KEYS, else none."""
        path = path or (Path(os.environ[ENV_KEYS_FILE]) if os.environ.get(ENV_KEYS_FILE) else None)
        if path is not None:
            try:
                if path.stat().st_mode & stat.S_IWOTH:
                    raise KeyFileError(f"{path}: every user of this machine may write the key file, and so add an "
                                       f"admin key; make it private first: chmod o-w {path}")
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise KeyFileError(f"{path}: cannot read the key file: {exc.strerror}") from None
            return cls.parse(text, str(path))
        if os.environ.get(ENV_KEYS):
            return cls.parse(os.environ[ENV_KEYS], f"${ENV_KEYS}")
        return cls()

    def find(self, presented: str) -> ApiKey | None:
        """The key matching `presented`; every stored digest is compared, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for key, stored in zip(self.keys, self._digests, strict=True):
            if hmac.compare_digest(digest, stored):
                found = key
        return found


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kinerja-rules"'}


class AuthMiddleware:
    """Require a valid key on every /v1/ route: in scope for the policy, admin for admin routes.

    A middleware rather than a Litestar guard, so the check runs inline on the event loop;
    installed only when keys are configured.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ring: KeyRing = scope["litestar_app"].state.api_keys
        if scope["type"] == ScopeType.HTTP:
            check_key(ring, scope)
        await self.app(scope, receive, send)


def check_key(ring: KeyRing, scope: Scope) -> None:
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem("unauthorized", "send Authorization: Bearer <key>", headers=_CHALLENGE)
    key = ring.find(token.strip())
    if key is None:
        raise ApiProblem("unauthorized", "the API key is not valid", headers=_CHALLENGE)
    scope["state"]["api_key"] = key
    if scope["route_handler"].opt.get("admin") and not key.admin:
        raise ApiProblem("forbidden", f"key {key.name!r} is not an admin key")
    policy_id = scope["path_params"].get("policy_id")
    if policy_id is not None and not key.allows(policy_id):
        raise ApiProblem("forbidden", f"key {key.name!r} may not use policy {policy_id!r}", policy=policy_id)


def key_scope(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key a request was made with, or None when the service runs without keys."""
    key: ApiKey | None = connection.scope["state"].get("api_key")
    return key
