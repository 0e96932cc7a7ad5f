"""The money stream end to end over HTTP: Stripe-shaped payments, the financial ledger, the three-way
reconciliation, on the default scenario, whose payment stories are documented in docs/scenario-format.md.
"""

from datetime import timedelta

import dagster as dg
import pytest

from integration_assets.defs import orders, payments, reporting
from integration_assets.sandbox import load_scenario
from integration_assets.sandbox.server import start_sandbox_systems
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.storefront import StorefrontClient
from integration_assets_tests.pipeline.conftest import SCENARIOS, check_outcomes

ASSETS = [
    *orders.defs.assets,
    *orders.defs.asset_checks,
    *payments.payments_assets,
    *payments.payments_checks,
    *reporting.defs.assets,
]


@pytest.fixture(scope="module")
def money(tmp_path_factory):
    """Two daily polls of the default scenario: by the second, the first payout has been made."""
    tmp = tmp_path_factory.mktemp("money")
    scenario = load_scenario(SCENARIOS / "default.yaml")
    with start_sandbox_systems(scenario) as systems:
        resources = {
            "storefront": StorefrontClient(
                shop_url=systems.storefront.url,
                access_token=scenario.shop.access_token,
                api_version=scenario.shop.api_version,
                backoff_base_seconds=0.01,
            ),
            "payments": PaymentsClient(
                base_url=systems.payments.url,
                secret_key=systems.payments.secret_key,
                backoff_base_seconds=0.01,
            ),
            "raw_log": RawLogResource(root=str(tmp / "raw")),
            "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
        }
        instance = dg.DagsterInstance.ephemeral()
        results = []
        for _ in range(2):
            systems.clock.advance(timedelta(hours=24))
            results.append(
                dg.materialize(ASSETS, resources=resources, instance=instance, raise_on_error=False)
            )
    warehouse = Warehouse(tmp / "warehouse.duckdb")
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
        assert outcomes["count_balance"] and outcomes["keys_unique_and_values_allowed"]


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
