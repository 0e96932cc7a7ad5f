"""The scenario clock: the one notion of "now" the sandbox serves orders at.

Tests and the demo move it explicitly (`advance`, `set`) so that what the storefront answers is
reproducible; `speed` lets `make dev` watch orders evolve on their own (scenario seconds per real
second, 0 = frozen until told).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_DURATION_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: str | int | float) -> timedelta:
    """`30m`, `2h`, `1d3h`, `45s`, `-2h` or a number of seconds -> timedelta.

    Raises ValueError with the offending text, so callers can say where it came from.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '4h' or a number of seconds, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '4h' or a number of seconds, got {value!r}")
    text = value.strip()
    sign = 1.0
    if text and text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    try:
        return timedelta(seconds=sign * float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(
            f"invalid duration {value!r}: use a number of seconds or units d/h/m/s like '1d3h', '45m'"
        )
    seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    return timedelta(seconds=sign * seconds)


def require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class ScenarioClock:
    """Thread-safe scenario time: `start` plus explicit moves plus `speed` x elapsed real time."""

    def __init__(self, start: datetime, speed: float = 0.0) -> None:
        if speed < 0:
            raise ValueError(f"clock speed must be >= 0, got {speed}")
        self._lock = threading.Lock()
        self._base = require_aware(start)
        self._anchor = time.monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def _now_locked(self) -> datetime:
        if self._speed == 0:
            return self._base
        elapsed = time.monotonic() - self._anchor
        return self._base + timedelta(seconds=elapsed * self._speed)

    def now(self) -> datetime:
        """The current scenario time, timezone-aware UTC."""
        with self._lock:
            return self._now_locked()

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (or, if you insist, backward) by `delta`; returns the new now."""
        with self._lock:
            self._base = self._now_locked() + delta
            self._anchor = time.monotonic()
            return self._base

    def set(self, moment: datetime) -> datetime:
        """Jump to `moment` (must be timezone-aware); returns the new now."""
        with self._lock:
            self._base = require_aware(moment)
            self._anchor = time.monotonic()
            return self._base
