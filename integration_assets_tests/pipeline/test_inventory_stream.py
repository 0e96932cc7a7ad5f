"""The inventory ledger on the default scenario: positions, the damaged unit the count reveals, no oversell."""

import pytest


@pytest.fixture(scope="module")
def inventory(business_day):
    warehouse, results = business_day
    with warehouse.connect(read_only=True) as con:
        return {
            "kinds": dict(
                con.execute(
                    "SELECT kind, count(*) FROM core.inventory_ledger GROUP BY kind"
                ).fetchall()
            ),
            "drift": con.execute(
                "SELECT sku, location, delta, cause FROM core.inventory_drift"
            ).fetchall(),
            "oversells": con.execute("SELECT count(*) FROM core.inventory_oversells").fetchone()[0],
            "positions": con.execute(
                "SELECT sku, on_hand, committed, available FROM core.inventory_positions"
            ).fetchall(),
            "ledger_on_hand": dict(
                con.execute(
                    "SELECT sku, sum(on_hand_delta) FROM core.inventory_ledger GROUP BY sku"
                ).fetchall()
            ),
            "balances": con.execute(
                "SELECT holds FROM ops.count_balances WHERE asset_key = 'core/inventory_ledger'"
            ).fetchall(),
        }


def test_every_kind_of_movement_is_booked(inventory):
    assert {
        "sale_commitment",
        "release",
        "shipment",
        "receipt",
        "return_to_stock",
        "count_correction",
    } <= set(inventory["kinds"])


def test_the_damaged_unit_is_the_one_drift_and_nobody_explained_it(inventory):
    assert inventory["drift"] == [("IPOD2008GREEN", "WH-EAST", -1, "unexplained")]


def test_positions_add_up_and_nothing_is_oversold(inventory):
    assert inventory["oversells"] == 0
    for sku, on_hand, committed, available in inventory["positions"]:
        assert available == on_hand - committed and on_hand >= 0, sku
        assert on_hand == inventory["ledger_on_hand"][sku]


def test_the_ledger_balance_holds(inventory):
    assert inventory["balances"] and all(holds for (holds,) in inventory["balances"])
