"""Every exception kinerja-rules raises on purpose.

The hierarchy::

    KinerjaError                      root; catch this to catch everything below
    ├── PolicyError (ValueError)      a policy failed to load, check or compile;
    │                                 carries every Diagnostic found, all at once
    ├── RecordError (ValueError)      a record broke the policy's input schema;
    │                                 carries one FieldError per bad field path
    ├── EvaluationError (RuntimeError) a checked policy faulted on one record
    │                                 (division by zero on odd data, a plugin raising)
    ├── PluginError                   a plugin could not be loaded or registered
    └── UnknownPolicyError (LookupError) no policy with that id is loaded

Diagnostics and field errors are plain data, so the CLI and the server render them
the same way without knowing where they came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

__all__ = [
    "Diagnostic",
    "EvaluationError",
    "FieldError",
    "KinerjaError",
    "PluginError",
    "PolicyError",
    "RecordError",
    "Span",
    "UnknownPolicyError",
]


class Span(msgspec.Struct, frozen=True, kw_only=True):
    """A place in a source file; line and column are 1-based, end is exclusive."""

    file: str
    line: int
    column: int
    end_line: int = 0
    end_column: int = 0
    text: str = ""  # the whole source line, for the caret rendering

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Diagnostic(msgspec.Struct, frozen=True, kw_only=True):
    """One problem found in a policy, with the place it was found."""

    code: str
    message: str
    span: Span | None = None
    severity: str = "error"
    hint: str = ""

    def render(self, words: Mapping[str, str] | None = None) -> str:
        """Render as `file:line:col: error[CODE]: message`, the source line and a caret; `words` names
        the severity in another language (`{"error": "galat", ...}`)."""
        where = f"{self.span}: " if self.span else ""
        severity = words.get(self.severity, self.severity) if words else self.severity
        out = [f"{where}{severity}[{self.code}]: {self.message}"]
        span = self.span
        if span is not None and span.text:
            width = 1
            if span.end_line == span.line and span.end_column > span.column:
                width = span.end_column - span.column
            gutter = f"{span.line:>4} | "
            out.append(gutter + span.text.rstrip("\n"))
            out.append(" " * (len(gutter) + span.column - 1) + "^" * max(1, width))
        if self.hint:
            out.append(f"     = {self.hint}")
        return "\n".join(out)


class FieldError(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A bad value in a record, named by its path (`skp.indikator[2].target`)."""

    path: str
    message: str
    check: str | None = None
    """The policy's check (`checks:`) the record fails, when the error is one."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class KinerjaError(Exception):
    """The root of every error kinerja-rules raises on purpose."""


class PolicyError(KinerjaError, ValueError):
    """A policy failed to load, check or compile."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        count = len(self.diagnostics)
        first = self.diagnostics[0].render() if count else "unknown policy error"
        more = f"\n(and {count - 1} more)" if count > 1 else ""
        super().__init__(first + more)

    def render(self, words: Mapping[str, str] | None = None) -> str:
        """Render every diagnostic, blank-line separated, with a count at the end (`words`: as
        `Diagnostic.render`, and `count`, the count's template)."""
        body = "\n\n".join(d.render(words) for d in self.diagnostics)
        n = len(self.diagnostics)
        count = words["count"].format(count=n) if words and "count" in words else f"{n} error{'s' if n != 1 else ''}"
        return f"{body}\n\n{count}"


class RecordError(KinerjaError, ValueError):
    """A record broke the policy's input schema."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class EvaluationError(KinerjaError, RuntimeError):
    """A checked policy faulted on one record; names where in the policy and the record."""

    def __init__(self, message: str, *, where: str = "", paths: Sequence[str] = ()) -> None:
        self.where = where
        self.paths = tuple(paths)
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)


class PluginError(KinerjaError):
    """A plugin could not be discovered, imported or registered."""


class UnknownPolicyError(KinerjaError, LookupError):
    """No loaded policy has the requested id."""

    def __init__(self, policy_id: str, known: Sequence[str] = ()) -> None:
        from kinerja_rules._suggest import did_you_mean

        self.policy_id = policy_id
        super().__init__(f"unknown policy {policy_id!r}{did_you_mean(policy_id, known)}")
