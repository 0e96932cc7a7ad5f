"""Retry timing shared by the HTTP clients: honour Retry-After, else exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RequestStats:
    """What one client did over HTTP: requests sent, retries by cause, seconds spent waiting."""

    requests: int = 0
    retries_rate_limited: int = 0
    retries_server_error: int = 0
    retries_network: int = 0
    retries_invalid_body: int = 0
    cursor_restarts: int = 0
    waited_seconds: float = 0.0

    def as_metadata(self) -> dict[str, float | int]:
        return {
            "http_requests": self.requests,
            "retries_rate_limited": self.retries_rate_limited,
            "retries_server_error": self.retries_server_error,
            "retries_network": self.retries_network,
            "retries_invalid_body": self.retries_invalid_body,
            "cursor_restarts": self.cursor_restarts,
            "retry_wait_seconds": round(self.waited_seconds, 3),
        }


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds, Shopify's "2.0", or an HTTP date)."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, ceiling)
