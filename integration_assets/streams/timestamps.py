"""Timestamps: every source speaks ISO-8601 with its own offset; everything we store is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


class TimestampFormatError(ValueError):
    """A timestamp that cannot be read, or that has no offset (and so no meaning in UTC)."""


def parse_utc(value: object) -> datetime:
    """Parse an ISO-8601 timestamp with an offset into an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        raise TimestampFormatError(f"not a timestamp: {value!r}")
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise TimestampFormatError(f"not an ISO-8601 timestamp: {value!r}") from error
    if parsed.tzinfo is None:
        raise TimestampFormatError(f"timestamp without a UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def parse_optional_utc(value: object) -> datetime | None:
    return None if value is None else parse_utc(value)


def to_iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now_naive() -> datetime:
    """Now, as DuckDB TIMESTAMP columns hold it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime | None) -> datetime | None:
    """DuckDB TIMESTAMP columns hold naive UTC; convert at the storage edge only."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
