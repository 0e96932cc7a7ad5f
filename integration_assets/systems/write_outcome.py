"""What one write to a working system (ERP, CRM, WMS) came to, in words the outbox can act on.

A target answers a write in one of a few ways that call for different handling: it took it
(`delivered`), it refused the content (`rejected`: fixing the data is the only cure), it refused it
against what it already holds (`conflict`: a human decides), it is waiting for a record the write
refers to (`missing_reference`: retry after the parent lands), or it could not be reached
(`unavailable`: retry later). Auth failures are not outcomes: they fail the run (`TargetAuthError`),
because every later write would fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTCOMES = frozenset({"delivered", "rejected", "conflict", "missing_reference", "unavailable"})
ERROR_CLASSES = frozenset(
    {
        "validation",
        "conflict",
        "missing_reference",
        "rate_limited",
        "server_error",
        "timeout",
        "connection",
    }
)
# Outcomes that a later attempt can turn into `delivered` without anyone changing the data.
RETRYABLE_OUTCOMES = frozenset({"unavailable", "missing_reference"})
# A target that answered but did not take the write: the error class each refusal carries.
REFUSAL_ERROR_CLASSES = {
    "rejected": "validation",
    "conflict": "conflict",
    "missing_reference": "missing_reference",
}
MESSAGE_CHARS = 500


@dataclass(frozen=True)
class WriteOutcome:
    """One write's result. `message` is the target's own words, cut to `MESSAGE_CHARS`."""

    outcome: str
    http_status: int | None
    message: str
    error_class: str | None = None
    target_record_id: str | None = None
    created: bool | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(
                f"unknown write outcome {self.outcome!r} (expected one of {sorted(OUTCOMES)})"
            )
        if self.error_class is not None and self.error_class not in ERROR_CLASSES:
            raise ValueError(
                f"unknown error class {self.error_class!r} (expected one of {sorted(ERROR_CLASSES)})"
            )
        if (self.outcome == "delivered") != (self.error_class is None):
            raise ValueError(
                f"outcome {self.outcome!r} with error class {self.error_class!r}: a delivered "
                "write has no error class and every other outcome has one"
            )
        if len(self.message) > MESSAGE_CHARS:
            object.__setattr__(self, "message", self.message[: MESSAGE_CHARS - 1] + "…")

    @property
    def retryable(self) -> bool:
        """True when trying again later can succeed with the same payload."""
        return self.outcome in RETRYABLE_OUTCOMES

    @classmethod
    def delivered(
        cls, http_status: int, message: str, target_record_id: str, created: bool
    ) -> WriteOutcome:
        """The target took the write; `target_record_id` is its id for the record."""
        return cls(
            outcome="delivered",
            http_status=http_status,
            message=message,
            target_record_id=target_record_id,
            created=created,
        )

    @classmethod
    def refused(cls, outcome: str, http_status: int, message: str) -> WriteOutcome:
        """The target answered but did not take the write: `rejected`, `conflict` or
        `missing_reference`, each with the error class the outbox routes it by."""
        if outcome not in REFUSAL_ERROR_CLASSES:
            raise ValueError(
                f"{outcome!r} is not a refusal (expected one of {sorted(REFUSAL_ERROR_CLASSES)})"
            )
        return cls(
            outcome=outcome,
            http_status=http_status,
            message=message,
            error_class=REFUSAL_ERROR_CLASSES[outcome],
        )

    @classmethod
    def unavailable(cls, error: TargetUnavailableError) -> WriteOutcome:
        """The outcome of a write whose retries ran out (429/5xx/timeout/connection)."""
        return cls(
            outcome="unavailable",
            http_status=error.http_status,
            message=str(error),
            error_class=error.error_class,
        )


class TargetError(RuntimeError):
    """A target request failed in a way the caller cannot classify as a write outcome (a
    misconfigured URL, an answer in an unexpected shape); the message says what to check."""


class TargetAuthError(TargetError):
    """Wrong credentials, or a token refused right after a refresh: every write would fail, so the
    run fails. The message names the environment variable to check, never the secret."""


class TargetUnavailableError(TargetError):
    """Retries exhausted on 429/5xx/timeouts/connection errors; `error_class` says which."""

    def __init__(self, message: str, *, error_class: str, http_status: int | None = None) -> None:
        super().__init__(message)
        if error_class not in ERROR_CLASSES:
            raise ValueError(f"unknown error class {error_class!r}")
        self.error_class = error_class
        self.http_status = http_status
