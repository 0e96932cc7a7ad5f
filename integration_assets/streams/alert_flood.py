"""Flood control for alerts: one alert per key per window, the rest counted and reported later.

A failing hourly job, a check that fails on every batch or a target that dead-letters a thousand
writes must not bury the one alert that matters. The first alert of a key opens a window; the
others of that key inside it are suppressed and counted; the next alert of the key after the window
goes out carrying "(+N similar suppressed since HH:MM UTC)". Counts are never dropped silently: a
key whose suppressed alerts were never followed by another alert comes back from `expire` as a
summary alert.

The gate's state is a plain JSON-serialisable dict, so a sensor can keep it in its cursor, and it
stays bounded: a key is forgotten once its window has ended (at the latest one window later, when
its count, if any, is handed back by `expire`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

SEVERITY_INFO = "info"
SEVERITY_WARNING = "warning"
SEVERITY_ERROR = "error"
SEVERITY_CRITICAL = "critical"  # an escalation to a named owner
SEVERITIES = (SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR, SEVERITY_CRITICAL)

DEFAULT_WINDOW = timedelta(minutes=15)
STATE_VERSION = 1
# What a summary remembers of the suppressed alerts: enough to say what they were, never unbounded.
_REMEMBERED_TEXT_CHARS = 500


@dataclass(frozen=True)
class Alert:
    """One thing a human should look at. `key` groups alerts that are "the same problem again"."""

    key: str
    title: str
    text: str
    severity: str = SEVERITY_ERROR
    owner: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    suppressed: int = 0  # similar alerts of this key held back since the previous one went out

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("an alert needs a non-empty key (it is what flood control groups by)")
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"alert {self.key!r}: severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}"
            )
        if self.suppressed < 0:
            raise ValueError(f"alert {self.key!r}: suppressed cannot be negative")


def _epoch(now: datetime) -> float:
    if now.tzinfo is None:
        # A naive time is ambiguous (local? UTC?) and would shift every window by the UTC offset.
        raise ValueError(f"flood control needs a timezone-aware time, got naive {now.isoformat()}")
    return now.timestamp()


def _clock(epoch: float, now: float) -> str:
    """HH:MM UTC, with the date when it is not today's (a long window spans days)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if moment.date() == datetime.fromtimestamp(now, UTC).date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class FloodGate:
    """Decides which alerts go out; `state` is what to persist between sensor ticks."""

    def __init__(self, state: Mapping[str, Any] | None = None, window: timedelta = DEFAULT_WINDOW):
        if window <= timedelta(0):
            raise ValueError(f"the flood-control window must be positive, got {window}")
        self.window = window
        self._keys: dict[str, dict[str, Any]] = _read_state(state)

    @property
    def state(self) -> dict[str, Any]:
        """A JSON-serialisable copy: {"version": 1, "keys": {key: {"sent_at": epoch, "suppressed": n, ...}}}."""
        return {"version": STATE_VERSION, "keys": copy.deepcopy(self._keys)}

    def is_open(self, key: str, now: datetime) -> bool:
        """Would an alert of `key` go out at `now`? (For callers that hold back instead of counting.)"""
        entry = self._keys.get(key)
        return entry is None or _epoch(now) >= entry["sent_at"] + self.window.total_seconds()

    def admit(self, alert: Alert, now: datetime) -> Alert | None:
        """The alert to send now, or None when it is suppressed (and counted) inside its key's window."""
        moment = _epoch(now)
        self._forget_quiet(moment)
        entry = self._keys.get(alert.key)
        if entry is None or moment >= entry["sent_at"] + self.window.total_seconds():
            held_back = entry["suppressed"] if entry else 0
            self._keys[alert.key] = {"sent_at": moment, "suppressed": 0}
            if not held_back:
                return alert
            since = _clock(entry["sent_at"], moment)
            return replace(
                alert,
                text=f"{alert.text}\n(+{held_back} similar suppressed since {since})",
                suppressed=held_back,
            )
        entry["suppressed"] += 1
        entry.setdefault("first_suppressed_at", moment)
        entry["last_suppressed_at"] = moment
        entry["last"] = {
            "title": alert.title,
            "text": alert.text[:_REMEMBERED_TEXT_CHARS],
            "severity": alert.severity,
            "owner": alert.owner,
        }
        return None

    def expire(self, now: datetime) -> list[Alert]:
        """Forget keys whose window ended; a forgotten key's suppressed count comes back as a summary.

        A key with a count is kept one window longer than a quiet one, so that the next alert of
        that key, if it comes soon, carries the count itself.
        """
        moment = _epoch(now)
        self._forget_quiet(moment)
        summaries = []
        window = self.window.total_seconds()
        for key in sorted(self._keys):
            entry = self._keys[key]
            if moment < entry["sent_at"] + 2 * window:
                continue
            last = entry["last"]
            first, final = entry["first_suppressed_at"], entry["last_suppressed_at"]
            count = entry["suppressed"]
            summaries.append(
                Alert(
                    key=key,
                    title=f"{last['title']} (repeated {count}x)",
                    text=(
                        f"{count} similar alert{'s' if count != 1 else ''} suppressed between "
                        f"{_clock(first, moment)} and {_clock(final, moment)}; the last one said:\n"
                        f"{last['text']}"
                    ),
                    severity=last["severity"],
                    owner=last["owner"],
                    suppressed=count,
                )
            )
            del self._keys[key]
        return summaries

    def _forget_quiet(self, moment: float) -> None:
        """A key with nothing suppressed carries no information once its window has ended."""
        window = self.window.total_seconds()
        for key in [k for k, e in self._keys.items() if e["suppressed"] == 0]:
            if moment >= self._keys[key]["sent_at"] + window:
                del self._keys[key]


def _read_state(state: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Validate persisted state: a damaged cursor fails with what is wrong, not a KeyError later."""
    if not state:
        return {}
    if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
        raise ValueError(
            f"flood-gate state: expected a mapping with version {STATE_VERSION}, got {str(state)[:120]!r}"
        )
    keys = state.get("keys")
    if not isinstance(keys, Mapping):
        raise ValueError("flood-gate state: 'keys' must be a mapping of alert key -> window")
    entries = {}
    for key, entry in keys.items():
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("sent_at"), int | float)
            or isinstance(entry.get("suppressed"), bool)
            or not isinstance(entry.get("suppressed"), int)
            or entry["suppressed"] < 0
        ):
            raise ValueError(
                f"flood-gate state: key {key!r} needs a numeric 'sent_at' and a count 'suppressed'"
            )
        if entry["suppressed"] and (
            not isinstance(entry.get("last"), Mapping)
            or not {"title", "text", "severity"} <= set(entry["last"])
            or not isinstance(entry.get("first_suppressed_at"), int | float)
            or not isinstance(entry.get("last_suppressed_at"), int | float)
        ):
            raise ValueError(
                f"flood-gate state: key {key!r} counts suppressed alerts but lacks what they were "
                "('last' with title, text, severity; 'first_suppressed_at'; 'last_suppressed_at')"
            )
        entries[str(key)] = copy.deepcopy(dict(entry))
    return entries
