"""The money stream in set-based SQL: core.financial_ledger, core.payout_checks and each order's money
at the payment provider.

The rules are those of `streams/financial_ledger.py` and of the reconciliation's provider side (the
references in Python, which the tests hold these queries equal to). They read every gated staging
version of every payment object each run; one Python object per balance transaction made them the
slowest steps of the hourly run after the inventory ledger.

Every function runs inside the caller's transaction and starts from `load_latest`, which keeps the
newest version of each object from batches the gate passed in the temporary table `payments_latest`.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import orjson

from integration_assets.storage.gates import passed_batches_sql
from integration_assets.streams.financial_ledger import GROSS_KIND

LATEST = "payments_latest"


def _latest_sql(gating_checks: tuple[str, ...], where: str = "") -> str:
    """The newest staged version of each object (per resource, id and parent) from batches the
    gate passed; `where` narrows the objects read (a resource)."""
    return f"""
WITH passed AS ({passed_batches_sql("payments/%", gating_checks)})
SELECT o.resource, o.object_id, o.parent_id, o.payload
FROM staging.payments_objects o JOIN passed p USING (batch_id)
{where}
QUALIFY row_number() OVER (
    PARTITION BY o.resource, o.object_id, o.parent_id ORDER BY o.batch_id DESC, o.record_index DESC
) = 1
"""


GROSS_KIND_SQL = "(VALUES " + ", ".join(f"('{k}', '{v}')" for k, v in GROSS_KIND.items()) + ")"

# Which order each charge, refund and dispute belongs to: a charge names it in its metadata, a refund
# or a dispute through its charge.
ORDER_OF_SQL = f"""
charge_orders AS (
    SELECT object_id AS source, CAST(payload->>'$.metadata.shopify_order_id' AS BIGINT) AS order_id
    FROM {LATEST}
    WHERE resource = 'charges' AND coalesce(payload->>'$.metadata.shopify_order_id', '') <> ''
),
order_of AS (
    SELECT source, min(order_id) AS order_id FROM (
        SELECT source, order_id FROM charge_orders
        UNION ALL
        SELECT o.object_id, c.order_id
        FROM {LATEST} o JOIN charge_orders c ON c.source = o.payload->>'charge'
        WHERE o.resource IN ('refunds', 'disputes')
    ) GROUP BY source
)
"""

# Each balance transaction: its gross entry and, when it carries a fee, a fee entry (a dispute's fee
# is a dispute_fee), with the payout that paid it out and the order behind its source.
LEDGER_SQL = f"""
CREATE OR REPLACE TABLE core.financial_ledger AS
WITH {ORDER_OF_SQL},
payout_of AS (
    SELECT object_id AS transaction_id, max(parent_id) AS payout
    FROM {LATEST} WHERE resource = 'payout_transactions' GROUP BY object_id
),
transactions AS (
    SELECT t.object_id AS id,
           coalesce(k.kind, 'adjustment') AS kind,
           CAST(t.payload->>'amount' AS BIGINT) AS amount,
           coalesce(CAST(t.payload->>'fee' AS BIGINT), 0) AS fee,
           lower(t.payload->>'currency') AS currency,
           make_timestamp(CAST(t.payload->>'created' AS BIGINT) * 1000000) AS occurred_at,
           t.payload->>'source' AS source
    FROM {LATEST} t
    LEFT JOIN {GROSS_KIND_SQL} k(category, kind)
      ON k.category = coalesce(nullif(t.payload->>'reporting_category', ''), t.payload->>'type')
    WHERE t.resource = 'balance_transactions'
    QUALIFY row_number() OVER (PARTITION BY t.object_id ORDER BY t.parent_id NULLS FIRST) = 1
),
entries AS (
    SELECT id || ':gross' AS entry_id, kind, amount AS amount_minor, currency, occurred_at, id, source
    FROM transactions
    UNION ALL
    SELECT id || ':fee', CASE WHEN kind = 'dispute_hold' THEN 'dispute_fee' ELSE 'fee' END, -fee,
           currency, occurred_at, id, source
    FROM transactions WHERE fee <> 0
)
SELECT CAST(e.entry_id AS VARCHAR) AS entry_id, CAST(e.kind AS VARCHAR) AS kind,
       CAST(e.amount_minor AS BIGINT) AS amount_minor, CAST(e.currency AS VARCHAR) AS currency,
       CAST(e.occurred_at AS TIMESTAMP) AS occurred_at, CAST(e.id AS VARCHAR) AS balance_transaction,
       CAST(e.source AS VARCHAR) AS source, CAST(p.payout AS VARCHAR) AS payout,
       CAST(o.order_id AS BIGINT) AS order_id
FROM entries e
LEFT JOIN payout_of p ON p.transaction_id = e.id
LEFT JOIN order_of o ON o.source = e.source
ORDER BY e.occurred_at, e.entry_id
"""

# Each payout against the sum of `net` of the transactions it paid out (its own `payout` transaction
# is not one of them).
PAYOUT_CHECKS_SQL = f"""
CREATE OR REPLACE TABLE core.payout_checks AS
WITH paid AS (
    SELECT DISTINCT ON (parent_id, object_id) parent_id AS payout, object_id,
           CAST(payload->>'net' AS BIGINT) AS net
    FROM {LATEST}
    WHERE resource = 'payout_transactions' AND coalesce(payload->>'type', '') <> 'payout'
),
sums AS (SELECT payout, count(*) AS transactions, sum(net) AS net FROM paid GROUP BY payout)
SELECT CAST(p.object_id AS VARCHAR) AS payout, CAST(lower(p.payload->>'currency') AS VARCHAR) AS currency,
       CAST(p.payload->>'amount' AS BIGINT) AS payout_amount_minor,
       CAST(coalesce(s.transactions, 0) AS BIGINT) AS transactions,
       CAST(coalesce(s.net, 0) AS BIGINT) AS sum_of_net_minor,
       CAST(p.payload->>'amount' AS BIGINT) = coalesce(s.net, 0) AS holds
FROM {LATEST} p LEFT JOIN sums s ON s.payout = p.object_id
WHERE p.resource = 'payouts'
ORDER BY payout
"""

# The provider's side of each order: succeeded charges and refunds, lost disputes, fees, and sales,
# fees and refunds not yet in a paid payout. An order appears once any of them is found.
PROVIDER_MONEY_SQL = f"""
WITH {ORDER_OF_SQL},
objects AS (
    SELECT l.resource, o.order_id, l.payload->>'status' AS status,
           CAST(l.payload->>'amount' AS BIGINT) AS amount, l.payload->>'currency' AS currency
    FROM {LATEST} l JOIN order_of o ON o.source = l.object_id
    WHERE l.resource IN ('charges', 'refunds', 'disputes')
),
paid_payouts AS (
    SELECT object_id AS payout FROM {LATEST}
    WHERE resource = 'payouts' AND payload->>'status' = 'paid'
),
money AS (
    SELECT order_id, amount AS charged, 0 AS refunded, 0 AS disputed, 0 AS fees, 0 AS unsettled,
           currency
    FROM objects WHERE resource = 'charges' AND status = 'succeeded'
    UNION ALL
    SELECT order_id, 0, amount, 0, 0, 0, NULL FROM objects
    WHERE resource = 'refunds' AND status = 'succeeded'
    UNION ALL
    SELECT order_id, 0, 0, amount, 0, 0, NULL FROM objects
    WHERE resource = 'disputes' AND status = 'lost'
    UNION ALL
    SELECT o.order_id, 0, 0, 0, CASE WHEN l.kind = 'fee' THEN -l.amount_minor ELSE 0 END,
           CASE WHEN p.payout IS NULL AND l.kind IN ('sale', 'fee', 'refund') THEN l.amount_minor ELSE 0 END,
           NULL
    FROM core.financial_ledger l JOIN order_of o USING (source)
    LEFT JOIN paid_payouts p ON p.payout = l.payout
    WHERE l.order_id IS NOT NULL
      AND (l.kind = 'fee' OR (l.kind IN ('sale', 'refund') AND p.payout IS NULL))
)
SELECT order_id, coalesce(max(currency), 'usd') AS currency, sum(charged) AS charged,
       sum(refunded) AS refunded, sum(fees) AS fees, sum(disputed) AS disputed,
       sum(unsettled) AS unsettled
FROM money GROUP BY order_id
"""


@dataclass(frozen=True)
class LedgerFigures:
    balance_transactions: int
    gross_entries: int
    entries: int
    duplicates: int
    payouts: int
    payouts_not_adding_up: int
    totals: dict[str, int]  # "<currency>:<kind>" -> sum of amount_minor


def load_latest(con: duckdb.DuckDBPyConnection, gating_checks: tuple[str, ...]) -> None:
    """The newest gated version of every payment object, in the temporary table `payments_latest`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {LATEST} AS {_latest_sql(gating_checks)}")


def latest_objects(
    con: duckdb.DuckDBPyConnection, gating_checks: tuple[str, ...], resource: str
) -> list[dict]:
    """The newest gated version of every object of one resource, parsed, with `_parent` (the payout
    of a payout's transaction)."""
    rows = con.execute(
        _latest_sql(gating_checks, "WHERE o.resource = $resource"), {"resource": resource}
    ).fetchall()
    return [{**orjson.loads(payload), "_parent": parent} for _, _, parent, payload in rows]


def rebuild_ledger(con: duckdb.DuckDBPyConnection) -> LedgerFigures:
    """Replace core.financial_ledger and core.payout_checks from `payments_latest`."""
    con.execute(LEDGER_SQL)
    con.execute(PAYOUT_CHECKS_SQL)
    transactions, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT object_id) FROM {LATEST} WHERE resource = 'balance_transactions'"
    ).fetchone()
    entries, gross = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE entry_id LIKE '%:gross') FROM core.financial_ledger"
    ).fetchone()
    payouts, not_adding_up = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT holds) FROM core.payout_checks"
    ).fetchone()
    totals = con.execute(
        "SELECT currency, kind, sum(amount_minor) FROM core.financial_ledger GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return LedgerFigures(
        balance_transactions=int(distinct),
        gross_entries=int(gross),
        entries=int(entries),
        duplicates=int(transactions - distinct),
        payouts=int(payouts),
        payouts_not_adding_up=int(not_adding_up),
        totals={f"{currency}:{kind}": int(total) for currency, kind, total in totals},
    )
