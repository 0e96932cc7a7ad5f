"""Turn consecutive versions of an order into an ordered stream of change events.

A version is one snapshot the storefront reported (from a poll or a webhook). Versions are ordered by
their source version key (updated_at, then payload hash, so ties are broken the same way every time).
Exact duplicates are counted and dropped; a version older than what has already been applied is
counted as stale and never applied over newer state. Each applied version is diffed against the
previous one, and each change becomes an event with the attribute's value before and after.

Folding the events' `after` values in sequence rebuilds the current snapshot (`fold_events`): the
current-state view is derived from the stream, not kept beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from integration_assets.streams.timestamps import parse_utc

# Attributes that belong to the order's identity and content: set by `order_created` on first sight.
BASE_ATTRIBUTES = (
    "name",
    "email",
    "currency",
    "created_at",
    "shipping_address",
    "totals",
    "tags",
    "note",
)
# Groups keyed by id inside the snapshot: one event per member added, changed or removed.
GROUPS = ("lines", "fulfillments", "refunds")

FINANCIAL_EVENTS = {
    "pending": "payment_pending",
    "authorized": "payment_authorized",
    "partially_paid": "order_partially_paid",
    "paid": "order_paid",
    "partially_refunded": "order_partially_refunded",
    "refunded": "order_refunded",
    "voided": "payment_voided",
    "expired": "payment_expired",
}
FULFILLMENT_EVENTS = {
    "partial": "order_partially_fulfilled",
    "fulfilled": "order_fulfilled",
    "restocked": "order_restocked",
}
SIMPLE_EVENTS = {
    "email": "email_changed",
    "shipping_address": "shipping_address_updated",
    "totals": "totals_changed",
    "tags": "order_annotated",
    "note": "order_annotated",
    "name": "order_renamed",
    "currency": "currency_changed",
    "created_at": "created_at_changed",
    "cancel_reason": "cancel_reason_changed",
}
# Within one version, events are listed in lifecycle order so that the timeline reads naturally.
EVENT_RANK = {
    "order_created": 0,
    "line_item_added": 1,
    "line_item_removed": 1,
    "line_item_quantity_changed": 1,
    "line_item_changed": 1,
    "payment_pending": 2,
    "payment_authorized": 2,
    "order_partially_paid": 2,
    "order_paid": 3,
    "fulfillment_created": 5,
    "fulfillment_updated": 5,
    "order_partially_fulfilled": 6,
    "order_fulfilled": 6,
    "refund_created": 7,
    "order_partially_refunded": 8,
    "order_refunded": 8,
    "payment_voided": 8,
    "cancel_reason_changed": 9,
    "order_cancelled": 9,
    "order_closed": 10,
}


@dataclass(frozen=True)
class OrderVersion:
    order_id: int
    updated_at: datetime
    payload_hash: str
    raw_ref: str
    snapshot: Mapping[str, Any]

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.payload_hash)

    @property
    def source_version(self) -> str:
        return f"{self.updated_at.strftime('%Y-%m-%dT%H:%M:%SZ')}#{self.payload_hash[:12]}"


@dataclass(frozen=True)
class OrderHead:
    """The newest applied version of an order and the last sequence number used."""

    order_id: int
    sequence: int
    updated_at: datetime
    payload_hash: str
    snapshot: Mapping[str, Any]

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.payload_hash)


@dataclass(frozen=True)
class OrderEvent:
    order_id: int
    sequence: int
    event_type: str
    attribute: str
    before: Any
    after: Any
    occurred_at: datetime
    observed_at: datetime
    source_version: str
    raw_ref: str


@dataclass
class DiffOutcome:
    events: list[OrderEvent] = field(default_factory=list)
    head: OrderHead | None = None
    applied_versions: int = 0
    duplicate_versions: int = 0
    stale_versions: list[OrderVersion] = field(default_factory=list)
    versions_without_change: int = 0
    # Same source timestamp, different content: the source contradicted itself. Resolved by the
    # version key (the higher payload hash wins, deterministically) and listed for a human.
    conflicts: list[tuple[OrderVersion, str, str]] = field(default_factory=list)


def _occurred(value: str | None, fallback: datetime) -> datetime:
    return parse_utc(value) if value else fallback


def _group_event(group: str, before: Any, after: Any) -> str:
    if group == "lines":
        if before is None:
            return "line_item_added"
        if after is None:
            return "line_item_removed"
        only_quantity = {k for k in after if after.get(k) != before.get(k)} == {"quantity"}
        return "line_item_quantity_changed" if only_quantity else "line_item_changed"
    if group == "fulfillments":
        return (
            "fulfillment_created"
            if before is None
            else ("fulfillment_removed" if after is None else "fulfillment_updated")
        )
    return (
        "refund_created"
        if before is None
        else ("refund_removed" if after is None else "refund_updated")
    )


def diff_snapshots(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], observed_at: datetime
) -> list[tuple[str, str, Any, Any, datetime]]:
    """Changes from `before` to `after` as (event_type, attribute, before, after, occurred_at).

    Groups missing from `after` were not reported in that version (a partial representation): they
    are carried forward, never read as "everything was removed".
    """
    changes: list[tuple[str, str, Any, Any, datetime]] = []
    old = dict(before or {})
    if before is None:
        created = {name: after.get(name) for name in BASE_ATTRIBUTES}
        changes.append(
            (
                "order_created",
                "order",
                None,
                created,
                _occurred(after.get("created_at"), observed_at),
            )
        )
        old.update(created)
    else:
        for name in BASE_ATTRIBUTES:
            if after.get(name) != old.get(name):
                changes.append(
                    (SIMPLE_EVENTS[name], name, old.get(name), after.get(name), observed_at)
                )

    for name in ("cancel_reason",):
        if after.get(name) != old.get(name):
            changes.append((SIMPLE_EVENTS[name], name, old.get(name), after.get(name), observed_at))
    if after.get("financial_status") != old.get("financial_status"):
        event = FINANCIAL_EVENTS.get(after.get("financial_status"), "financial_status_changed")
        changes.append(
            (
                event,
                "financial_status",
                old.get("financial_status"),
                after.get("financial_status"),
                observed_at,
            )
        )
    if after.get("fulfillment_status") != old.get("fulfillment_status"):
        event = FULFILLMENT_EVENTS.get(
            after.get("fulfillment_status"), "fulfillment_status_changed"
        )
        changes.append(
            (
                event,
                "fulfillment_status",
                old.get("fulfillment_status"),
                after.get("fulfillment_status"),
                observed_at,
            )
        )
    for name, set_event, unset_event in (
        ("cancelled_at", "order_cancelled", "order_uncancelled"),
        ("closed_at", "order_closed", "order_reopened"),
    ):
        if after.get(name) != old.get(name):
            event = set_event if after.get(name) else unset_event
            changes.append(
                (
                    event,
                    name,
                    old.get(name),
                    after.get(name),
                    _occurred(after.get(name), observed_at),
                )
            )

    for group in GROUPS:
        if group not in after:
            continue
        old_members = old.get(group) or {}
        new_members = after[group]
        for member_id in sorted(set(old_members) | set(new_members)):
            was, now = old_members.get(member_id), new_members.get(member_id)
            if was == now:
                continue
            occurred = observed_at
            if now is not None and was is None and group != "lines":
                occurred = _occurred(now.get("created_at"), observed_at)
            if before is None and group == "lines":
                occurred = _occurred(after.get("created_at"), observed_at)
            changes.append(
                (_group_event(group, was, now), f"{group}.{member_id}", was, now, occurred)
            )

    changes.sort(key=lambda change: (EVENT_RANK.get(change[0], 4), change[4], change[1]))
    return changes


def merge_snapshot(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """The state after applying `after`, carrying forward groups it did not report."""
    merged = dict(after)
    for group in GROUPS:
        if group not in merged and before is not None and group in before:
            merged[group] = before[group]
    return merged


def apply_versions(head: OrderHead | None, versions: Iterable[OrderVersion]) -> DiffOutcome:
    """Apply new versions of one order on top of its head; the arrival order of `versions` does not matter."""
    outcome = DiffOutcome(head=head)
    distinct: dict[tuple[datetime, str], OrderVersion] = {}
    for version in versions:
        if version.key in distinct:
            outcome.duplicate_versions += 1
        else:
            distinct[version.key] = version
    for key in sorted(distinct):
        version = distinct[key]
        current = outcome.head
        if current is not None and version.updated_at == current.updated_at and key != current.key:
            resolution = (
                "skipped_lower_version_key" if key < current.key else "applied_higher_version_key"
            )
            outcome.conflicts.append((version, resolution, current.payload_hash))
        if current is not None and key <= current.key:
            if key == current.key:
                outcome.duplicate_versions += 1
            else:
                outcome.stale_versions.append(version)
            continue
        changes = diff_snapshots(
            current.snapshot if current else None, version.snapshot, version.updated_at
        )
        sequence = current.sequence if current else 0
        for event_type, attribute, old_value, new_value, occurred_at in changes:
            sequence += 1
            outcome.events.append(
                OrderEvent(
                    order_id=version.order_id,
                    sequence=sequence,
                    event_type=event_type,
                    attribute=attribute,
                    before=old_value,
                    after=new_value,
                    occurred_at=occurred_at,
                    observed_at=version.updated_at,
                    source_version=version.source_version,
                    raw_ref=version.raw_ref,
                )
            )
        outcome.applied_versions += 1
        outcome.versions_without_change += 0 if changes else 1
        outcome.head = OrderHead(
            order_id=version.order_id,
            sequence=sequence,
            updated_at=version.updated_at,
            payload_hash=version.payload_hash,
            snapshot=merge_snapshot(current.snapshot if current else None, version.snapshot),
        )
    return outcome


def fold_events(events: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """Rebuild an order's snapshot from its (event_type, attribute, after) in sequence order."""
    state: dict[str, Any] = {}
    for event_type, attribute, after in events:
        if event_type == "order_created":
            state.update(after)
        elif "." in attribute:
            group, member_id = attribute.split(".", 1)
            members = state.setdefault(group, {})
            if after is None:
                members.pop(member_id, None)
            else:
                members[member_id] = after
        else:
            state[attribute] = after
    return state
