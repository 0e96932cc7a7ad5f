"""The order stream: diffing versions into events, whatever order or duplication they arrive in."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.order_events import OrderVersion, apply_versions, fold_events

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def snapshot(**changes):
    base = {
        "name": "#1001",
        "email": "a@example.com",
        "currency": "USD",
        "created_at": "2026-11-20T09:00:00Z",
        "financial_status": "pending",
        "fulfillment_status": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "shipping_address": {"city": "Ottawa"},
        "totals": {"total_price_minor": 1000},
        "tags": "",
        "note": None,
        "lines": {"1": {"sku": "A", "quantity": 1, "price_minor": 1000}},
        "fulfillments": {},
        "refunds": {},
    }
    base.update(changes)
    return base


def version(minutes: int, snap: dict) -> OrderVersion:
    return OrderVersion(
        1, T0 + timedelta(minutes=minutes), payload_hash(snap), f"raw/x#{minutes}", snap
    )


LIFECYCLE = [
    version(0, snapshot()),
    version(10, snapshot(financial_status="paid")),
    version(
        20,
        snapshot(
            financial_status="paid",
            lines={
                "1": {"sku": "A", "quantity": 2, "price_minor": 1000},
                "2": {"sku": "B", "quantity": 1, "price_minor": 500},
            },
        ),
    ),
    version(
        30,
        snapshot(
            financial_status="paid",
            shipping_address={"city": "Toronto"},
            lines={"2": {"sku": "B", "quantity": 1, "price_minor": 500}},
        ),
    ),
    version(
        40,
        snapshot(
            financial_status="paid",
            fulfillment_status="partial",
            shipping_address={"city": "Toronto"},
            lines={"2": {"sku": "B", "quantity": 1, "price_minor": 500}},
            fulfillments={
                "9": {"status": "success", "created_at": "2026-11-20T09:35:00Z", "lines": {"2": 1}}
            },
        ),
    ),
    version(
        50,
        snapshot(
            financial_status="refunded",
            fulfillment_status="partial",
            cancelled_at="2026-11-20T09:50:00Z",
            shipping_address={"city": "Toronto"},
            lines={"2": {"sku": "B", "quantity": 1, "price_minor": 500}},
            fulfillments={
                "9": {"status": "success", "created_at": "2026-11-20T09:35:00Z", "lines": {"2": 1}}
            },
            refunds={
                "7": {"created_at": "2026-11-20T09:50:00Z", "amount_minor": 500, "lines": {"2": 1}}
            },
        ),
    ),
]


def event_types(outcome):
    return [e.event_type for e in outcome.events]


def test_lifecycle_becomes_ordered_events():
    outcome = apply_versions(None, LIFECYCLE)
    assert event_types(outcome) == [
        "order_created",
        "line_item_added",
        "payment_pending",
        "order_paid",
        "line_item_quantity_changed",
        "line_item_added",
        "line_item_removed",
        "shipping_address_updated",
        "fulfillment_created",
        "order_partially_fulfilled",
        "refund_created",
        "order_refunded",
        "order_cancelled",
    ]
    assert [e.sequence for e in outcome.events] == list(range(1, 14))
    removed = next(e for e in outcome.events if e.event_type == "line_item_removed")
    assert (
        removed.before == {"sku": "A", "quantity": 2, "price_minor": 1000} and removed.after is None
    )
    fulfillment = next(e for e in outcome.events if e.event_type == "fulfillment_created")
    assert fulfillment.occurred_at == datetime(
        2026, 11, 20, 9, 35, tzinfo=UTC
    )  # its own time, not the poll's
    assert fulfillment.observed_at == T0 + timedelta(minutes=40)


def test_folding_the_events_rebuilds_the_newest_version():
    outcome = apply_versions(None, LIFECYCLE)
    folded = fold_events((e.event_type, e.attribute, e.after) for e in outcome.events)
    expected = {k: v for k, v in LIFECYCLE[-1].snapshot.items() if v not in (None, {})}
    assert {k: v for k, v in folded.items() if v not in (None, {})} == expected


def test_stale_version_is_counted_and_never_applied_over_newer_state():
    first = apply_versions(None, LIFECYCLE[:3])
    later = apply_versions(first.head, [LIFECYCLE[1], LIFECYCLE[3]])
    assert [v.updated_at for v in later.stale_versions] == [LIFECYCLE[1].updated_at]
    assert later.applied_versions == 1
    assert later.head.updated_at == LIFECYCLE[3].updated_at
    assert later.events[0].sequence == first.head.sequence + 1


def test_exact_duplicates_are_counted_not_applied():
    outcome = apply_versions(None, LIFECYCLE + LIFECYCLE[:2])
    assert outcome.duplicate_versions == 2
    assert outcome.applied_versions == len(LIFECYCLE)


def test_a_partial_representation_does_not_remove_lines():
    partial = {
        k: v
        for k, v in LIFECYCLE[1].snapshot.items()
        if k not in ("lines", "fulfillments", "refunds")
    }
    outcome = apply_versions(None, [LIFECYCLE[0], version(15, {**partial, "note": "gift"})])
    assert "line_item_removed" not in event_types(outcome)
    assert outcome.head.snapshot["lines"] == LIFECYCLE[0].snapshot["lines"]


@settings(max_examples=200, deadline=None)
@given(
    st.permutations(range(len(LIFECYCLE))), st.lists(st.integers(0, len(LIFECYCLE) - 1), max_size=8)
)
def test_any_shuffle_or_duplication_yields_the_same_events(order, repeats):
    reference = apply_versions(None, LIFECYCLE).events
    arrivals = [LIFECYCLE[i] for i in order] + [LIFECYCLE[i] for i in repeats]
    outcome = apply_versions(None, arrivals)
    assert outcome.events == reference
    assert outcome.duplicate_versions == len(repeats)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, len(LIFECYCLE) - 1), unique=True).map(sorted))
def test_splitting_in_order_across_batches_yields_the_same_events(cuts):
    reference = apply_versions(None, LIFECYCLE).events
    head, events = None, []
    for start, end in zip([0, *cuts], [*cuts, len(LIFECYCLE)], strict=True):
        outcome = apply_versions(head, LIFECYCLE[start:end])
        head, events = outcome.head, events + outcome.events
    assert events == reference


def test_same_timestamp_with_different_content_is_a_conflict_resolved_the_same_way_every_time():
    base = LIFECYCLE[1]
    twin_snapshot = {**base.snapshot, "note": "edited without a new updated_at"}
    twin = OrderVersion(
        1, base.updated_at, payload_hash(twin_snapshot), "raw/x#twin", twin_snapshot
    )
    winner, loser = sorted([base, twin], key=lambda v: v.payload_hash, reverse=True)
    one_batch = apply_versions(None, [LIFECYCLE[0], base, twin])
    assert one_batch.head.payload_hash == winner.payload_hash
    assert [(v.payload_hash, resolution) for v, resolution, _ in one_batch.conflicts] == [
        (winner.payload_hash, "applied_higher_version_key")
    ]
    first = apply_versions(None, [LIFECYCLE[0], winner])
    later = apply_versions(first.head, [loser])
    assert later.head.payload_hash == winner.payload_hash
    assert [v.payload_hash for v in later.stale_versions] == [loser.payload_hash]
    assert [resolution for _, resolution, _ in later.conflicts] == ["skipped_lower_version_key"]
