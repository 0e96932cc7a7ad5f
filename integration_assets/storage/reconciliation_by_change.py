"""core.payment_reconciliation kept by change: each order is classified again only when what the
rules read of it changed.

An order's differences depend on its own inputs only: the storefront's side (currency, total,
refunded, financial status, cancelled, gateway), the provider's side (charged, refunded, fees, lost
disputes, not yet paid out: `payments_ledger.PROVIDER_MONEY_SQL`) and whether a version of it is
quarantined. Those inputs are gathered set-based for every order each run (cheap in DuckDB) with a
digest; only the orders whose digest moved are read into Python and classified (`reconcile`), and
their rows replaced. `ops.reconciled_inputs` keeps the digest each order was classified from; the
whole table is classified again when the rules' code or settings change (ops.derivations).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from integration_assets.storage import payments_ledger
from integration_assets.storage.derivations import built_by, code_version, record_built
from integration_assets.storage.order_payloads import orders_condition
from integration_assets.storage.payments_ledger import PROVIDER_MONEY_SQL
from integration_assets.streams import reconciliation as reconciliation_module
from integration_assets.streams.reconciliation import (
    Difference,
    OrderMoney,
    ProviderMoney,
    ReconciliationResult,
)

TABLE = "core.payment_reconciliation"
COLUMNS = {
    "order_id": "BIGINT",
    "rule": "VARCHAR",
    "amount_minor": "BIGINT",
    "currency": "VARCHAR",
    "explained": "BOOLEAN",
    "detail": "VARCHAR",
}

INPUTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE reconciliation_inputs AS
WITH provider AS ({PROVIDER_MONEY_SQL}),
storefront AS (
    SELECT c.order_id, c.currency, coalesce(c.total_price_minor, 0) AS total,
           coalesce(c.refunded_minor, 0) AS refunded, c.financial_status,
           c.cancelled_at IS NOT NULL AS cancelled, g.gateway
    FROM core.orders_current c
    LEFT JOIN (SELECT order_id, arg_max(gateway, updated_at) AS gateway
               FROM staging.storefront_orders GROUP BY order_id) g USING (order_id)
),
quarantined AS (
    SELECT DISTINCT CAST(record_key AS BIGINT) AS order_id FROM ops.quarantine
    WHERE stream = 'storefront/orders' AND regexp_full_match(record_key, '[0-9]+')
),
joined AS (
    SELECT coalesce(s.order_id, p.order_id) AS order_id,
           s.order_id IS NOT NULL AS has_order, s.currency, s.total, s.refunded, s.financial_status,
           s.cancelled, s.gateway,
           p.order_id IS NOT NULL AS has_provider, p.currency AS provider_currency,
           p.charged, p.provider_refunded, p.fees, p.disputed, p.unsettled,
           q.order_id IS NOT NULL AS quarantined
    FROM storefront s
    FULL OUTER JOIN (SELECT order_id, currency, charged, refunded AS provider_refunded, fees,
                            disputed, unsettled FROM provider) p USING (order_id)
    LEFT JOIN quarantined q ON q.order_id = coalesce(s.order_id, p.order_id)
)
SELECT *, md5(CAST(row(has_order, currency, total, refunded, financial_status, cancelled, gateway,
                       has_provider, provider_currency, charged, provider_refunded, fees, disputed,
                       unsettled, quarantined) AS VARCHAR)) AS digest
FROM joined
"""

CHANGED_SQL = """
SELECT i.* FROM reconciliation_inputs i LEFT JOIN ops.reconciled_inputs r USING (order_id)
WHERE r.digest IS DISTINCT FROM i.digest
"""

GONE_SQL = """
SELECT order_id FROM ops.reconciled_inputs
WHERE order_id NOT IN (SELECT order_id FROM reconciliation_inputs)
"""


def rules_version(settings: object) -> str:
    return code_version(
        Path(reconciliation_module.__file__),
        Path(payments_ledger.__file__),
        Path(__file__),
        settings=settings,
    )


def refresh(
    con: duckdb.DuckDBPyConnection,
    classify: Callable[
        [list[OrderMoney], list[ProviderMoney], frozenset[int]], ReconciliationResult
    ],
    version: str,
) -> dict[str, int | bool]:
    """Classify the orders whose inputs changed (every order when `version` is new), inside the
    caller's transaction, with `payments_latest` loaded. Returns what was done."""
    whole = built_by(con, TABLE) != version
    if whole:
        declared = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} ({declared})")
        con.execute("DELETE FROM ops.reconciled_inputs")
        record_built(con, TABLE, version)
    con.execute(INPUTS_SQL)
    con.execute(f"CREATE OR REPLACE TEMP TABLE reconciliation_changed AS {CHANGED_SQL}")
    orders = [
        OrderMoney(*row)
        for row in con.execute(
            "SELECT order_id, currency, total, refunded, financial_status, cancelled, gateway "
            "FROM reconciliation_changed WHERE has_order"
        ).fetchall()
    ]
    provider = [
        ProviderMoney(*row)
        for row in con.execute(
            "SELECT order_id, provider_currency, charged, provider_refunded, fees, disputed, "
            "unsettled FROM reconciliation_changed WHERE has_provider"
        ).fetchall()
    ]
    quarantined = frozenset(
        order_id
        for (order_id,) in con.execute(
            "SELECT order_id FROM reconciliation_changed WHERE quarantined"
        ).fetchall()
    )
    (changed,) = con.execute("SELECT count(*) FROM reconciliation_changed").fetchone()
    redo = [
        order_id
        for (order_id,) in con.execute(
            f"SELECT order_id FROM reconciliation_changed UNION ALL {GONE_SQL}"
        ).fetchall()
    ]
    result = classify(orders, provider, quarantined)
    condition, params = orders_condition(redo)
    _replace(con, condition, params, result.differences)
    con.execute(f"DELETE FROM ops.reconciled_inputs WHERE {condition}", params)
    con.execute(
        "INSERT INTO ops.reconciled_inputs SELECT order_id, digest FROM reconciliation_changed"
    )
    con.execute("DROP TABLE reconciliation_changed")
    con.execute("DROP TABLE reconciliation_inputs")
    return {
        "orders_classified_now": int(changed),
        "orders_gone": len(redo) - int(changed),
        "classified_whole": whole,
    }


def _replace(
    con: duckdb.DuckDBPyConnection,
    condition: str,
    params: dict,
    differences: list[Difference],
) -> None:
    """The differences of the orders `condition` keeps, replaced by `differences`."""
    con.execute(f"DELETE FROM {TABLE} WHERE {condition}", params)
    if not differences:
        return
    frame = pd.DataFrame(
        [
            [d.order_id, d.rule, d.amount_minor, d.currency, d.explained, d.detail]
            for d in differences
        ],
        columns=list(COLUMNS),
    )
    con.register("new_differences", frame)
    try:
        con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM new_differences")
    finally:
        con.unregister("new_differences")
