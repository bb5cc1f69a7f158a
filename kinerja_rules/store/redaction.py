"""Input fields kept as keyed hashes (HMAC-SHA-256) instead of their values, and the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinerja_rules.store.records import CANONICAL, StoreError

MAX_REDACTED_FIELDS = 32


@dataclass(frozen=True)
class Redactor:
    """Input fields (dotted paths) kept as keyed hashes (HMAC-SHA-256) instead of their values.

    A look-up by such a field hashes the query the same way, so it still finds its records; the
    value itself is not in the store, and a replay asks for it again.
    """

    fields: tuple[str, ...] = ()
    key: bytes = b""

    def __post_init__(self) -> None:
        if len(self.fields) > MAX_REDACTED_FIELDS:
            raise StoreError(f"at most {MAX_REDACTED_FIELDS} fields can be redacted")
        for name in self.fields:
            if not name or len(name) > 200 or any(not part for part in name.split(".")):
                raise StoreError(f"--redact takes a field's dotted name (such as nip or pegawai.nama), not {name!r}")
        if self.fields and len(self.key) < 16:
            raise StoreError("redacting needs a key of at least 16 bytes")

    def hash(self, value: Any) -> str:
        digest = hmac.new(self.key, CANONICAL.encode(value), hashlib.sha256).hexdigest()
        return f"{REDACTED_PREFIX}{digest}"

    def apply(self, record: Any) -> tuple[Any, tuple[str, ...]]:
        """`record` with each redacted field that it holds replaced by its hash, and which those were."""
        if not self.fields or not isinstance(record, dict):
            return record, ()
        done: list[str] = []
        out = dict(record)
        for name in self.fields:
            parts = name.split(".")
            holder = out
            for part in parts[:-1]:
                inner = holder.get(part)
                if not isinstance(inner, dict):
                    break
                holder[part] = holder = dict(inner)
            else:
                if parts[-1] in holder:
                    holder[parts[-1]] = self.hash(holder[parts[-1]])
                    done.append(name)
        return out, tuple(done)


REDACTED_PREFIX = "hmac-sha256:"
NO_REDACTION = Redactor()


def redaction_key(data_dir: Path | None) -> bytes:
    """The key of redacted fields: $KINERJA_REDACT_KEY (hex, 32 bytes or more), else `redact.key` in the
    data directory, made on first use and readable by its owner only."""
    text = os.environ.get("KINERJA_REDACT_KEY")
    if text is not None:
        try:
            key = bytes.fromhex(text.strip())
        except ValueError:
            raise StoreError("KINERJA_REDACT_KEY must be hex (64 digits or more)") from None
        if len(key) < 32:
            raise StoreError("KINERJA_REDACT_KEY must hold 32 bytes or more (64 hex digits)")
        return key
    if data_dir is None:
        raise StoreError("redacting with a PostgreSQL store needs $KINERJA_REDACT_KEY (64 hex digits), the same "
                         "on every host")
    path = data_dir / "redact.key"
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read the redaction key {path}: {exc}") from None
