"""The set-based inventory ledger (storage/inventory_ledger.py) equals the reference rules
(streams/inventory_ledger.py) on generated order streams and warehouse files: line edits, SKU
changes, removals, cancellations after partial shipments, duplicated file lines, counts that open a
place, agree or drift, and the oversells in between."""

from collections import defaultdict
from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_assets.storage.inventory_ledger import rebuild
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.inventory_ledger import (
    LineEvent,
    Movement,
    StockCount,
    apply_counts,
    claims,
    oversells,
    positions,
    unique_movements,
)

T0 = datetime(2026, 12, 14, 9)
SKUS = ("A", "B", "C")
LOCATIONS = ("main", "east")

minutes = st.integers(0, 40).map(lambda n: T0 + timedelta(minutes=n))
skus = st.sampled_from(SKUS)
locations = st.sampled_from(LOCATIONS)
quantities = st.integers(0, 6)


@st.composite
def order_stream(draw, order_id: int) -> list[tuple]:
    """One order's line events and cancellations: (order_id, sequence, event_type, attribute, after, at)."""
    events, lines, next_line = [], {}, 0
    for sequence in range(1, draw(st.integers(1, 7)) + 1):
        action = draw(st.sampled_from(["add", "add", "quantity", "sku", "remove", "cancel"]))
        at = draw(minutes)
        if action == "cancel":
            events.append((order_id, sequence, "order_cancelled", "cancelled_at", "{}", at))
            continue
        if action == "add" or not lines:
            next_line += 1
            line_id = str(next_line)
            lines[line_id] = {"sku": draw(skus), "quantity": draw(quantities)}
            events.append(
                (order_id, sequence, "line_item_added", f"lines.{line_id}", lines[line_id], at)
            )
            continue
        line_id = draw(st.sampled_from(sorted(lines)))
        if action == "remove":
            del lines[line_id]
            events.append((order_id, sequence, "line_item_removed", f"lines.{line_id}", None, at))
            continue
        changed = dict(lines[line_id])
        if action == "quantity":
            changed["quantity"] = draw(quantities)
        else:
            changed["sku"] = draw(skus)
        lines[line_id] = changed
        event_type = "line_item_quantity_changed" if action == "quantity" else "line_item_changed"
        events.append((order_id, sequence, event_type, f"lines.{line_id}", changed, at))
    return events


def file_rows(identifier: str, with_order: bool, with_condition: bool = False):
    fields = {
        "id": st.sampled_from([f"{identifier}{n}" for n in range(1, 5)]),
        "sku": skus,
        "quantity": st.integers(1, 6),
        "location": locations,
        "at": minutes,
    }
    if with_order:
        fields["order_id"] = st.integers(1, 4)
    if with_condition:
        fields["condition"] = st.sampled_from(["sellable", "sellable", "damaged"])
    return st.lists(st.fixed_dictionaries(fields), max_size=6)


scenarios = st.fixed_dictionaries(
    {
        "orders": st.tuples(*(order_stream(order_id) for order_id in range(1, 5))),
        "receipts": file_rows("r", with_order=False),
        "shipments": file_rows("s", with_order=True),
        "returns": file_rows("t", with_order=True, with_condition=True),
        "counts": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.sampled_from([f"c{n}" for n in range(1, 7)]),
                    "sku": skus,
                    "location": locations,
                    "counted": st.integers(0, 8),
                    "at": minutes,
                }
            ),
            max_size=6,
        ),
    }
)


def _load(con, scenario: dict) -> None:
    file = {"file_sha256": "f", "raw_ref": "raw", "run_id": "run"}
    for events in scenario["orders"]:
        for order_id, sequence, event_type, attribute, after, at in events:
            con.execute(
                "INSERT INTO core.order_events VALUES (?, ?, ?, ?, NULL, ?, ?, ?, 'v', 'raw', 'b', 'run')",
                [
                    order_id,
                    sequence,
                    event_type,
                    attribute,
                    orjson.dumps(after).decode() if after is not None else None,
                    at,
                    at,
                ],
            )
    for line, row in enumerate(scenario["receipts"]):
        con.execute(
            "INSERT INTO staging.wms_receipts VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            [
                row["id"],
                row["sku"],
                row["quantity"],
                row["location"],
                row["at"],
                file["file_sha256"],
                line,
                f"r#{line}",
                "run",
            ],
        )
    for line, row in enumerate(scenario["shipments"]):
        con.execute(
            "INSERT INTO staging.wms_shipments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["id"],
                row["order_id"],
                row["sku"],
                row["quantity"],
                row["location"],
                row["at"],
                "f",
                line,
                f"s#{line}",
                "run",
            ],
        )
    for line, row in enumerate(scenario["returns"]):
        con.execute(
            "INSERT INTO staging.wms_return_receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["id"],
                row["order_id"],
                row["sku"],
                row["quantity"],
                row["condition"],
                row["location"],
                row["at"],
                "f",
                line,
                f"t#{line}",
                "run",
            ],
        )
    for line, row in enumerate(scenario["counts"]):
        con.execute(
            "INSERT INTO staging.wms_stock_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["id"],
                row["sku"],
                row["location"],
                row["counted"],
                row["at"],
                "f",
                line,
                f"c#{line}",
                "run",
            ],
        )


def _reference(scenario: dict) -> dict:
    """What the reference rules make of the same rows, in the order the asset reads them."""
    events = sorted(
        (
            LineEvent(o, s, t, a, after, at)
            for stream in scenario["orders"]
            for o, s, t, a, after, at in stream
        ),
        key=lambda e: (e.order_id, e.sequence),
    )
    shipped = defaultdict(int)
    for row in scenario["shipments"]:
        shipped[(row["order_id"], row["sku"])] += row["quantity"]
    file_moves = [
        Movement(
            r["at"],
            f"receipt:{r['id']}:{r['sku']}",
            r["sku"],
            r["location"],
            "receipt",
            r["quantity"],
            "r",
        )
        for r in scenario["receipts"]
    ]
    file_moves += [
        Movement(
            r["at"],
            f"shipment:{r['id']}:{r['sku']}",
            r["sku"],
            r["location"],
            "shipment",
            r["quantity"],
            "s",
            r["order_id"],
        )
        for r in scenario["shipments"]
    ]
    file_moves += [
        Movement(
            r["at"],
            f"return:{r['id']}:{r['sku']}",
            r["sku"],
            r["location"],
            "return_to_stock",
            r["quantity"],
            "t",
            r["order_id"],
        )
        for r in scenario["returns"]
        if r["condition"] == "sellable"
    ]
    counts = [
        StockCount(c["id"], c["sku"], c["location"], c["counted"], c["at"])
        for c in scenario["counts"]
    ]
    opening = min((c.counted_at for c in counts), default=None)
    all_claims = claims(events, shipped)
    booked = [m for m in all_claims if opening is None or m.occurred_at >= opening]
    corrections, drifts = apply_counts([*booked, *file_moves], counts)
    ledger, duplicates = unique_movements([*booked, *file_moves, *corrections])
    return {
        "ledger": sorted(
            (m.movement_id, m.occurred_at, m.sku, m.location, m.kind, m.quantity, m.order_id)
            for m in ledger
        ),
        "positions": {
            p.sku: (p.on_hand, p.committed, p.available, p.on_hand_by_location)
            for p in positions(ledger).values()
        },
        "drifts": [
            (d.sku, d.location, d.counted_at, d.ledger_on_hand, d.counted, d.delta, d.explanation)
            for d in drifts
        ],
        "oversells": [
            (o.sku, o.started_at, o.ended_at, o.lowest_available, list(o.orders))
            for o in (oversells(ledger) if opening is not None else [])
        ],
        "duplicates": duplicates,
        "before_opening": len(all_claims) - len(booked),
    }


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return Warehouse(tmp_path_factory.mktemp("inventory") / "warehouse.duckdb")


TABLES = (
    "core.order_events",
    "staging.wms_receipts",
    "staging.wms_shipments",
    "staging.wms_return_receipts",
    "staging.wms_stock_counts",
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenarios)
def test_the_set_based_ledger_equals_the_reference(warehouse, scenario):
    with warehouse.connect() as con:
        con.begin()  # rolled back: each example starts from empty tables
        _load(con, scenario)
        found = rebuild(con)
        ledger = con.execute(
            "SELECT movement_id, occurred_at, sku, location, kind, quantity, order_id FROM core.inventory_ledger ORDER BY ALL"
        ).fetchall()
        position_rows = con.execute(
            "SELECT sku, on_hand, committed, available, on_hand_by_location FROM core.inventory_positions"
        ).fetchall()
        drifts = con.execute(
            "SELECT sku, location, counted_at, ledger_on_hand, counted, delta, explanation FROM core.inventory_drift"
        ).fetchall()
        episodes = con.execute(
            "SELECT sku, started_at, ended_at, lowest_available, orders FROM core.inventory_oversells"
        ).fetchall()
        con.rollback()
    expected = _reference(scenario)
    assert [tuple(row) for row in ledger] == expected["ledger"]
    assert {s: (h, c, a, orjson.loads(by)) for s, h, c, a, by in position_rows} == expected[
        "positions"
    ]
    assert [tuple(row) for row in drifts] == expected["drifts"]
    assert [(s, st_, en, low, list(o)) for s, st_, en, low, o in episodes] == expected["oversells"]
    assert (found.duplicates, found.before_opening) == (
        expected["duplicates"],
        expected["before_opening"],
    )
    assert found.movements_derived == found.ledger_entries + found.duplicates + found.before_opening
