"""The inventory ledger on the default scenario: positions, the damaged unit the count reveals, and the
last unit of LIMITED-ED sold on two channels (web and pos) in the same hour."""

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
            "oversells": con.execute(
                "SELECT sku, started_at, ended_at, lowest_available, orders, channels"
                " FROM core.inventory_oversells ORDER BY started_at"
            ).fetchall(),
            "staged_channels": dict(
                con.execute(
                    "SELECT name, arg_max(source_name, updated_at) FROM staging.storefront_orders "
                    "WHERE name IN ('#2267', '#2276', '#2007') GROUP BY name"
                ).fetchall()
            ),
            "reconciled": con.execute(
                "SELECT c.name, r.rule, r.amount_minor FROM core.payment_reconciliation r "
                "JOIN core.orders_current c USING (order_id) WHERE c.name IN ('#2267', '#2276') "
                "ORDER BY c.name, r.rule"
            ).fetchall(),
            "order_names": dict(
                con.execute("SELECT order_id, name FROM core.orders_current").fetchall()
            ),
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
            "no_oversell": [
                evaluation
                for result in results
                for evaluation in result.get_asset_check_evaluations()
                if evaluation.check_name == "no_oversell"
            ],
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


def test_the_last_unit_sold_on_web_and_pos_is_the_one_oversell(inventory):
    # 1 unit at WH-EAST; #2267 (web) takes 2 of it, #2276 (pos) 1 more forty minutes later: one
    # episode, still open, naming each order once
    names = inventory["order_names"]
    [(sku, started_at, ended_at, lowest, orders, channels)] = inventory["oversells"]
    assert (sku, ended_at, lowest, [names[order] for order in orders], channels) == (
        "LIMITED-ED",
        None,
        -2,
        ["#2267", "#2276"],
        ["web", "pos"],
    )
    latest = inventory["no_oversell"][-1]
    assert not latest.passed
    web, pos = orders
    assert latest.description == (
        f"LIMITED-ED: available -2 at lowest in 1 episode (open since {started_at:%Y-%m-%d %H:%M}),"
        f" orders [{web} (web), {pos} (pos)], sold on pos and web"
    )
    assert ("LIMITED-ED", 1, 3, -2) in inventory["positions"]


def test_staging_keeps_each_order_channel(inventory):
    assert inventory["staged_channels"] == {"#2007": "web", "#2267": "web", "#2276": "pos"}


def test_positions_add_up(inventory):
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


def test_the_oversold_orders_were_paid_and_reconcile(inventory):
    # charged at Stripe (11084 and 5292 less the fee), paid out after the demo's first payout
    assert inventory["reconciled"] == [
        ("#2267", "fee", -351),
        ("#2267", "matched", 0),
        ("#2267", "not_yet_settled", 10733),
        ("#2276", "fee", -183),
        ("#2276", "matched", 0),
        ("#2276", "not_yet_settled", 5109),
    ]
