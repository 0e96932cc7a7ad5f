"""The inventory ledger: positions, oversells and drift."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from integration_assets.streams.inventory_ledger import (
    Movement,
    Oversell,
    classify_drift,
    oversells,
    positions,
    short_orders_text,
)

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def move(n, kind, qty, sku="IPOD", location="main", order_id=None):
    return Movement(
        T0 + timedelta(minutes=n),
        f"m{n}",
        sku,
        None if kind in ("sale_commitment", "release") else location,
        kind,
        qty,
        f"ref{n}",
        order_id,
    )


STORY = [
    move(0, "receipt", 10),
    move(1, "sale_commitment", 3, order_id=1),
    move(2, "sale_commitment", 2, order_id=2),
    move(3, "release", 2, order_id=2),  # order 2 cancelled
    move(4, "shipment", 3, order_id=1),
    move(5, "return_to_stock", 1, order_id=1),
    move(6, "count_correction", -1),
]


def test_positions_follow_every_movement():
    position = positions(STORY)["IPOD"]
    assert (position.on_hand, position.committed, position.available) == (7, 0, 7)
    assert position.on_hand_by_location == {"main": 7}


@settings(max_examples=200, deadline=None)
@given(st.permutations(range(len(STORY))), st.lists(st.integers(0, len(STORY) - 1), max_size=10))
def test_any_order_and_duplication_give_the_same_positions(order, repeats):
    shuffled = [STORY[i] for i in order] + [STORY[i] for i in repeats]
    assert positions(shuffled) == positions(STORY)


def test_the_last_unit_sold_on_two_channels_is_an_oversell_naming_both_orders():
    movements = [
        move(0, "receipt", 1),
        move(1, "sale_commitment", 1, order_id=10),
        move(2, "sale_commitment", 1, order_id=20),
    ]
    [oversell] = oversells(movements)
    assert oversell == Oversell("IPOD", T0 + timedelta(minutes=2), None, -1, (20,))
    [more] = oversells([*movements, move(3, "sale_commitment", 1, order_id=30)])
    assert (more.started_at, more.lowest_available, more.orders) == (
        oversell.started_at,
        -2,
        (20, 30),
    )


def test_a_sku_negative_for_many_commitments_is_one_episode_naming_each_order_once():
    movements = [move(0, "receipt", 1)]
    movements += [move(n, "sale_commitment", 1, order_id=n) for n in range(1, 2001)]
    # order 7 is edited to two units later on: still short, still named once
    movements.append(move(3000, "sale_commitment", 1, order_id=7))
    [episode] = oversells(movements)
    assert episode.started_at == T0 + timedelta(minutes=2)  # order 1 took the last unit
    assert episode.ended_at is None
    assert episode.orders == tuple(range(2, 2001))
    assert episode.lowest_available == -2000


def test_a_receipt_that_covers_the_shortfall_closes_the_episode():
    movements = [
        move(0, "sale_commitment", 2, order_id=10),
        move(1, "receipt", 1),  # -1: still short
        move(2, "sale_commitment", 1, order_id=20),
        move(3, "receipt", 2),  # back to 0: the episode ends here
        move(4, "sale_commitment", 1, order_id=30),
    ]
    first, second = oversells(movements)
    assert first == Oversell("IPOD", T0, T0 + timedelta(minutes=3), -2, (10, 20))
    assert second == Oversell("IPOD", T0 + timedelta(minutes=4), None, -1, (30,))


def test_below_zero_without_a_commitment_names_no_order_and_is_no_oversell():
    movements = [
        move(0, "receipt", 1),
        move(1, "sale_commitment", 1, order_id=10),
        move(2, "count_correction", -1),  # the shelf had none: available -1, nobody sold short
        move(3, "receipt", 1),
    ]
    assert oversells(movements) == []


def test_episodes_are_per_sku():
    movements = [
        move(0, "sale_commitment", 1, sku="A", order_id=1),
        move(1, "sale_commitment", 1, sku="B", order_id=2),
        move(2, "receipt", 1, sku="A"),
    ]
    assert [(o.sku, o.ended_at, o.orders) for o in oversells(movements)] == [
        ("A", T0 + timedelta(minutes=2), (1,)),
        ("B", None, (2,)),
    ]


OVERSELL_STORY = [
    move(0, "receipt", 1),
    move(1, "sale_commitment", 1, order_id=1),
    move(2, "sale_commitment", 2, order_id=2),
    move(3, "sale_commitment", 1, order_id=3),
    move(4, "release", 1, order_id=3),
    move(5, "receipt", 3),
    move(6, "sale_commitment", 1, order_id=4),
    move(7, "sale_commitment", 1, order_id=5),
    move(8, "sale_commitment", 1, order_id=2),
]


@settings(max_examples=200, deadline=None)
@given(
    st.permutations(range(len(OVERSELL_STORY))),
    st.lists(st.integers(0, len(OVERSELL_STORY) - 1), max_size=10),
)
def test_any_order_and_duplication_give_the_same_episodes(order, repeats):
    shuffled = [OVERSELL_STORY[i] for i in order] + [OVERSELL_STORY[i] for i in repeats]
    assert oversells(shuffled) == oversells(OVERSELL_STORY)
    assert [(o.orders, o.ended_at is None) for o in oversells(OVERSELL_STORY)] == [
        ((2, 3), False),
        ((5, 2), True),
    ]


def test_the_short_orders_text_names_a_bounded_number():
    assert short_orders_text([1, 2], ["web", "pos"]) == "[1 (web), 2 (pos)]"
    assert short_orders_text([1, 2], ["web", "pos"], 50) == "[1 (web), 2 (pos), and 48 more]"


def test_drift_is_classified_by_rule_or_listed():
    at = T0 + timedelta(hours=1)
    assert classify_drift(STORY, "IPOD", "main", at, 7) is None
    shipped_not_reported = classify_drift(STORY, "IPOD", "main", at, 5, unrecorded_shipments=2)
    assert (shipped_not_reported.cause, shipped_not_reported.delta) == (
        "shipment_not_yet_recorded",
        -2,
    )
    returned = classify_drift(STORY, "IPOD", "main", at, 8, unrecorded_returns=1)
    assert returned.cause == "return_not_yet_recorded"
    unknown = classify_drift(STORY, "IPOD", "main", at, 4)
    assert unknown.cause == "unexplained" and "-3" in unknown.explanation


def test_counts_open_the_ledger_then_correct_its_drift():
    from integration_assets.streams.inventory_ledger import StockCount, apply_counts

    sold = [move(10, "sale_commitment", 2, order_id=1), move(20, "shipment", 2, order_id=1)]
    counts = [
        StockCount("C1", "IPOD", "main", 10, T0),  # opening stock take
        StockCount(
            "C2", "IPOD", "main", 7, T0 + timedelta(hours=1)
        ),  # ledger says 8: one unit missing
        StockCount(
            "C3", "IPOD", "main", 7, T0 + timedelta(hours=2)
        ),  # in line after the correction
    ]
    corrections, drifts = apply_counts(sold, counts)
    assert [(c.movement_id, c.quantity) for c in corrections] == [
        ("count:C1:IPOD:main", 10),
        ("count:C2:IPOD:main", -1),
    ]
    assert [(d.ledger_on_hand, d.counted, d.cause) for d in drifts] == [(8, 7, "unexplained")]
    position = positions([*sold, *corrections])["IPOD"]
    assert (position.on_hand, position.committed) == (7, 0)
