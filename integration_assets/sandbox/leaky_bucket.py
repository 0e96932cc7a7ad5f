"""Shopify's REST rate limit: a leaky bucket per access token (pure; time is an argument).

Each request adds one unit; the bucket drains at `leak_per_second`; a request that would overflow
it is refused (429). Time comes in as a number so tests can drive it without sleeping.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    used: int
    size: int

    @property
    def header(self) -> str:
        """The `X-Shopify-Shop-Api-Call-Limit` value, e.g. `12/40`."""
        return f"{self.used}/{self.size}"


class LeakyBucket:
    """One bucket. Not thread-safe on its own; `LeakyBuckets` serializes access."""

    def __init__(self, size: int, leak_per_second: float, now: float) -> None:
        if size < 1:
            raise ValueError(f"bucket size must be >= 1, got {size}")
        if leak_per_second < 0:
            raise ValueError(f"leak rate must be >= 0, got {leak_per_second}")
        self.size = size
        self.leak_per_second = leak_per_second
        self._level = 0.0
        self._last = now

    def _drain(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._level = max(0.0, self._level - elapsed * self.leak_per_second)
        self._last = max(self._last, now)

    def _used(self) -> int:
        # Round up so a bucket that is not quite empty still shows the call it holds.
        return min(self.size, math.ceil(self._level - 1e-9))

    def try_acquire(self, now: float) -> BucketDecision:
        """Take one unit if it fits; the decision carries what the call-limit header shows."""
        self._drain(now)
        if self._level + 1 > self.size + 1e-9:
            return BucketDecision(False, self.size, self.size)
        self._level += 1
        return BucketDecision(True, self._used(), self.size)

    def peek(self, now: float) -> BucketDecision:
        self._drain(now)
        return BucketDecision(True, self._used(), self.size)


class LeakyBuckets:
    """One bucket per access token (Shopify: per app per store), safe across server threads."""

    def __init__(self, size: int, leak_per_second: float) -> None:
        self.size = size
        self.leak_per_second = leak_per_second
        self._buckets: dict[str, LeakyBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, token: str, now: float) -> LeakyBucket:
        bucket = self._buckets.get(token)
        if bucket is None:
            bucket = self._buckets[token] = LeakyBucket(self.size, self.leak_per_second, now)
        return bucket

    def try_acquire(self, token: str, now: float) -> BucketDecision:
        with self._lock:
            return self._bucket(token, now).try_acquire(now)

    def peek(self, token: str, now: float) -> BucketDecision:
        with self._lock:
            return self._bucket(token, now).peek(now)
