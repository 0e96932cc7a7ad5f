"""The money stream end to end over HTTP: Stripe-shaped payments, the financial ledger, the three-way
reconciliation, on the default scenario, whose payment stories are documented in docs/scenario-format.md.
"""

import shutil

import pytest

from integration_assets.defs import orders, payments, reporting
from integration_assets.defs.payments.core import RULES_VERSION, classify_orders
from integration_assets.defs.payments.names import GATING_CHECKS
from integration_assets.storage.payments_ledger import load_latest
from integration_assets.storage.reconciliation_by_change import refresh
from integration_assets.storage.warehouse import Warehouse
from integration_assets_tests.pipeline.conftest import check_outcomes

ASSETS = [
    *orders.defs.assets,
    *orders.defs.asset_checks,
    *payments.payments_assets,
    *payments.payments_checks,
    *reporting.defs.assets,
]


@pytest.fixture(scope="module")
def money(business_day):
    warehouse, results = business_day
    with warehouse.connect(read_only=True) as con:
        by_order = {}
        for name, rule, amount in con.execute(
            "SELECT c.name, r.rule, r.amount_minor FROM core.payment_reconciliation r JOIN core.orders_current c USING (order_id)"
        ).fetchall():
            by_order.setdefault(name, {})[rule] = amount
        unexplained = con.execute(
            "SELECT order_id, rule, amount_minor FROM core.payment_reconciliation WHERE NOT explained"
        ).fetchall()
        payouts = con.execute(
            "SELECT payout, payout_amount_minor, transactions, holds FROM core.payout_checks"
        ).fetchall()
        ledger = dict(
            con.execute(
                "SELECT kind, sum(amount_minor) FROM core.financial_ledger GROUP BY kind"
            ).fetchall()
        )
        balances = con.execute("SELECT asset_key, scope, holds FROM ops.count_balances").fetchall()
    return {
        "results": results,
        "by_order": by_order,
        "unexplained": unexplained,
        "payouts": payouts,
        "ledger": ledger,
        "balances": balances,
    }


def test_every_run_succeeds_and_the_payments_gate_passes(money):
    for result in money["results"]:
        assert result.success
        outcomes = check_outcomes(result)
        assert outcomes.get("count_balance", True) and outcomes.get(
            "keys_unique_and_values_allowed", True
        )


def test_each_payment_story_ends_in_its_documented_state(money):
    by_order = money["by_order"]
    assert by_order["#2007"]["dispute"] == -24141  # dispute lost: the charge is withdrawn
    assert by_order["#2041"]["partial_refund"] == 21492  # refunded in part, on both sides
    assert by_order["#2051"]["full_refund"] == 22742  # refunded in full, on both sides
    assert by_order["#2057"] == {"paid_outside_provider": 0}  # paid through another gateway
    assert (
        by_order["#2019"]["matched"] == 0
    )  # edited after payment: extra charge and refunds net out
    assert by_order["#2009"]["fee"] == -653  # authorized, then captured: the fee is explained
    assert money["ledger"]["dispute_reversal"] == 5684  # the dispute won on #2025 is reinstated


def test_only_the_charge_for_a_quarantined_order_is_left_for_a_person(money):
    assert money["unexplained"] == [(5100127000, "storefront_record_quarantined", 2149)]


def test_the_payout_equals_its_transactions(money):
    assert [(amount, n, holds) for _, amount, n, holds in money["payouts"]] == [
        (4297826, 192, True)
    ]
    assert money["ledger"]["payout"] == -4297826


def test_every_count_balance_holds(money):
    keys = {asset_key for asset_key, _, _ in money["balances"]}
    assert {
        "staging/payments/objects",
        "core/financial_ledger",
        "core/payment_reconciliation",
    } <= keys
    assert all(holds for _, _, holds in money["balances"])


def test_the_reconciliation_classifies_only_orders_whose_money_changed(
    money, business_day, tmp_path
):
    warehouse, _ = business_day
    runs = [
        {k: v.value for k, v in event.materialization.metadata.items()}
        for result in money["results"]
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "core/payment_reconciliation"
    ]
    assert [run["classified_whole"] for run in runs] == [True, False]
    assert 0 < runs[1]["orders_classified_now"] < runs[1]["orders_reconciled"]

    # What was kept by change is what classifying every order again gives.
    copy = Warehouse(tmp_path / "warehouse.duckdb")
    shutil.copy(warehouse.path, copy.path)
    rows = "SELECT * FROM core.payment_reconciliation ORDER BY ALL"
    with copy.transaction() as con:
        by_change = con.execute(rows).fetchall()
        load_latest(con, GATING_CHECKS)
        assert refresh(con, classify_orders, RULES_VERSION)["orders_classified_now"] == 0
        con.execute("DELETE FROM ops.derivations WHERE name = 'core.payment_reconciliation'")
        load_latest(con, GATING_CHECKS)
        again = refresh(con, classify_orders, RULES_VERSION)
        assert (
            again["classified_whole"]
            and again["orders_classified_now"] == runs[1]["orders_reconciled"]
        )
        assert con.execute(rows).fetchall() == by_change
