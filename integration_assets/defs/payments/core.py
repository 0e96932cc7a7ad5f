"""core/financial_ledger and core/payment_reconciliation: the money stream and the three-way match."""

import dagster as dg
import yaml

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import ORDERS_CURRENT
from integration_assets.defs.payments.names import (
    CHECK_PAYOUTS_ADD_UP,
    CHECK_UNEXPLAINED,
    FINANCIAL_LEDGER,
    GATING_CHECKS,
    OWNER,
    RECONCILIATION,
    STAGING_PAYMENTS,
)
from integration_assets.storage.balances import record_balance
from integration_assets.storage.payments_ledger import load_latest, rebuild_ledger
from integration_assets.storage.reconciliation_by_change import refresh, rules_version
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance
from integration_assets.streams.reconciliation import (
    OrderMoney,
    ProviderMoney,
    ReconciliationResult,
    reconcile,
)

SETTINGS = yaml.safe_load((CONTRACTS_DIR / "reconciliation.yaml").read_text())
RECONCILIATION_TOLERANCE_MINOR = int(SETTINGS["unexplained_tolerance_minor"])
ROUNDING_TOLERANCE_MINOR = int(SETTINGS["rounding_tolerance_minor"])
PROVIDER_GATEWAYS = frozenset(SETTINGS["provider_gateways"])
RULES_VERSION = rules_version((ROUNDING_TOLERANCE_MINOR, sorted(PROVIDER_GATEWAYS)))


def classify_orders(
    orders: list[OrderMoney], provider: list[ProviderMoney], quarantined: frozenset[int]
) -> ReconciliationResult:
    """The reconciliation rules under this deployment's settings (contracts/reconciliation.yaml)."""
    return reconcile(
        orders,
        provider,
        tolerance_minor=ROUNDING_TOLERANCE_MINOR,
        provider_gateways=PROVIDER_GATEWAYS,
        quarantined_orders=quarantined,
    )


@dg.asset(
    key=FINANCIAL_LEDGER,
    deps=[STAGING_PAYMENTS],
    group_name="finance",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def financial_ledger(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every money movement at the payment provider as a signed entry in minor units: sales, fees, refunds,
    dispute holds and fees, dispute reversals, adjustments and payouts, each with its source reference
    (the Stripe balance transaction and the charge, refund, dispute or payout behind it) and its order.

    Rebuilt whole from the gated staging versions in set-based SQL (storage/payments_ledger.py), so
    re-materializing is always safe. `core.payout_checks` proves each payout equals the sum of `net` of
    the transactions it paid out.
    """
    with warehouse.warehouse().transaction() as con:
        load_latest(con, GATING_CHECKS)
        found = rebuild_ledger(con)
        balance = Balance(
            "transactions_equal_gross_entries",
            {"balance_transactions": found.balance_transactions},
            {"gross_entries": found.gross_entries},
        )
        record_balance(con, context.run_id, FINANCIAL_LEDGER.to_user_string(), "run", balance)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": found.entries,
            "balance_transactions": found.balance_transactions,
            "duplicate_transactions_dropped": found.duplicates,
            "payouts": found.payouts,
            "payouts_not_adding_up": found.payouts_not_adding_up,
            "totals_by_kind_minor": dg.MetadataValue.json(found.totals),
            "balance": balance.as_text(),
        }
    )


@dg.asset_check(
    asset=FINANCIAL_LEDGER,
    name=CHECK_PAYOUTS_ADD_UP,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Every payout equals the sum of net of the balance transactions it paid out.",
)
def payouts_add_up(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        rows = con.execute(
            "SELECT payout, payout_amount_minor, sum_of_net_minor FROM core.payout_checks WHERE NOT holds"
        ).fetchall()
        total = con.execute("SELECT count(*) FROM core.payout_checks").fetchone()[0]
    return dg.AssetCheckResult(
        passed=not rows,
        description="; ".join(f"{p}: payout {a} != transactions {n}" for p, a, n in rows) or None,
        metadata={"payouts_checked": int(total), "payouts_not_adding_up": len(rows)},
    )


@dg.asset(
    key=RECONCILIATION,
    deps=[FINANCIAL_LEDGER, ORDERS_CURRENT],
    group_name="finance",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def payment_reconciliation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Orders ↔ payment provider ↔ payouts. For every order and every provider record: each difference
    with its amount and the rule that classifies it (matched, fee, partial or full refund, dispute,
    not yet settled, rounding) or names it for a person (missing on one side, amount mismatch).
    Kept by change (storage/reconciliation_by_change.py): an order is classified again when what the
    rules read of it changed, every order when the rules or their settings change.
    """
    with warehouse.warehouse().transaction() as con:
        load_latest(con, GATING_CHECKS)
        done = refresh(con, classify_orders, RULES_VERSION)
        (orders_current,) = con.execute("SELECT count(*) FROM core.orders_current").fetchone()
        rows, reconciled, of_current, unexplained, unexplained_minor = con.execute(
            """
            SELECT count(*), count(DISTINCT order_id),
                   count(DISTINCT order_id) FILTER (
                       WHERE order_id IN (SELECT order_id FROM core.orders_current)),
                   count(*) FILTER (WHERE NOT explained),
                   coalesce(sum(abs(amount_minor)) FILTER (WHERE NOT explained), 0)
            FROM core.payment_reconciliation
            """
        ).fetchone()
        totals: dict[str, dict[str, int]] = {}
        for rule, currency, count, amount in con.execute(
            "SELECT rule, lower(currency), count(*), sum(amount_minor) "
            "FROM core.payment_reconciliation GROUP BY ALL ORDER BY ALL"
        ).fetchall():
            entry = totals.setdefault(rule, {"count": 0})
            entry["count"] += int(count)
            entry[f"{currency}_minor"] = int(amount)
        balance = Balance(
            "every_order_classified",
            {"orders_current": int(orders_current)},
            {"orders_in_reconciliation": int(of_current)},
        )
        record_balance(con, context.run_id, RECONCILIATION.to_user_string(), "run", balance)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "orders_reconciled": int(reconciled),
            "orders_classified_now": done["orders_classified_now"],
            "classified_whole": done["classified_whole"],
            "totals_by_rule": dg.MetadataValue.json(totals),
            "unexplained_differences": int(unexplained),
            "unexplained_minor": int(unexplained_minor),
            "balance": balance.as_text(),
        }
    )


@dg.asset_check(
    asset=RECONCILIATION,
    name=CHECK_UNEXPLAINED,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description=f"Unexplained differences stay within the tolerance ({RECONCILIATION_TOLERANCE_MINOR} minor units).",
)
def unexplained_within_tolerance(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        rows = con.execute(
            "SELECT order_id, rule, amount_minor, detail FROM core.payment_reconciliation WHERE NOT explained ORDER BY abs(amount_minor) DESC"
        ).fetchall()
    total = sum(abs(r[2]) for r in rows)
    return dg.AssetCheckResult(
        passed=total <= RECONCILIATION_TOLERANCE_MINOR,
        description="; ".join(f"order {o}: {rule} {amount}" for o, rule, amount, _ in rows[:10])
        or None,
        metadata={
            "unexplained_differences": len(rows),
            "unexplained_minor": int(total),
            "for_a_person": dg.MetadataValue.json(
                [
                    {"order_id": o, "rule": r, "amount_minor": a, "detail": d}
                    for o, r, a, d in rows[:50]
                ]
            ),
        },
    )
