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


def test_before_the_first_stock_take_oversell_is_not_judged(tiny):
    import dagster as dg

    from integration_assets.defs.inventory.ledger import inventory_ledger, no_oversell
    from integration_assets_tests.pipeline.conftest import ALL_ASSETS

    tiny.advance(hours=12)
    result = dg.materialize(
        [*ALL_ASSETS, inventory_ledger, no_oversell],
        resources=tiny.resources,
        instance=tiny.instance,
    )
    metadata = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "core/inventory_ledger"
    )
    assert metadata["opening_stock_take"].value == "none yet: oversell not judged"
    assert (
        tiny.scalar("SELECT count(*) FROM core.inventory_ledger WHERE kind = 'sale_commitment'") > 0
    )
    assert tiny.scalar("SELECT count(*) FROM core.inventory_oversells") == 0
