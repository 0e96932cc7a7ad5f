"""Blocking checks on staging/storefront/products (Great Expectations suites generated from the
contract, and schema drift against it, batch by batch) and a check on the history's shape."""

import dagster as dg
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET
from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.defs.products.names import (
    CHECK_COUNT_BALANCE,
    CHECK_HISTORY_WELL_FORMED,
    CHECK_KEYS_AND_VALUES,
    CHECK_REQUIRED_FIELDS,
    CONTRACT_NAME,
    GATING_CHECKS,
    PRODUCT_HISTORY,
    STAGING_PRODUCTS,
    STREAM,
)
from integration_assets.defs.products.staging import STAGED_TABLE
from integration_assets.quality import gx_runner
from integration_assets.quality.contract_suite import contract_suite
from integration_assets.storage import gates
from integration_assets.storage.drift_events import judge_staged_batch_drift
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

DESCRIPTIONS = {
    CHECK_KEYS_AND_VALUES: "The staged variant rows keep the contract's rules (a Great Expectations suite generated "
    "from it, product and variant fields): unique (variant, updated_at, payload) versions, required values "
    "(product, updated_at, variant, SKU, price), allowed statuses and inventory policies; and, beyond the "
    "contract, prices are non-negative minor units in an ISO 4217 shop currency.",
    CHECK_COUNT_BALANCE: "Every product version read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_REQUIRED_FIELDS: "Schema drift: no required contract field is removed, renamed or retyped in more than "
    "the allowed share of a batch (new fields are recorded and notified, not blocking).",
}

# Contract field -> staged column: the product's fields, and its variants' (`line_item_fields`).
STAGED_COLUMNS_BY_FIELD = {
    "id": "product_id",
    "updated_at": "updated_at",
    "status": "product_status",
}
STAGED_COLUMNS_BY_VARIANT_FIELD = {
    "id": "variant_id",
    "sku": "sku",
    "price": "price_minor",
    "inventory_policy": "inventory_policy",
}
STAGED_KEY = ("variant_id", "updated_at", "payload_hash")


def judge_product_keys_and_values(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    """The contract's rules on the staged variant rows (a generated GX suite), plus the two batch
    rules the contract cannot say: prices in minor units are not negative, the shop currency is
    an upper-case ISO code (it comes from the shop's configuration, not from the payload)."""
    if frame.empty:
        return True, "no staged rows"
    gxe = gx_runner.expectations()
    suite = contract_suite(
        contract, STAGED_COLUMNS_BY_FIELD, STAGED_KEY, STAGED_COLUMNS_BY_VARIANT_FIELD
    ) + [
        gxe.ExpectColumnValuesToBeBetween(column="price_minor", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
    ]
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures)
        or f"{len(frame)} rows: keys unique, values allowed ({len(suite)} expectations, from {contract.label})"
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset=STAGING_PRODUCTS, blocking=True, description=DESCRIPTIONS[name]
        )
        for name in GATING_CHECKS
    ],
    pool=WAREHOUSE_POOL,
)
def staging_products_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Judge every product batch staged since the last gate; record each verdict for core to respect."""
    contract = load_contract(CONTRACT_NAME)
    gate = GateRun(GATING_CHECKS, context.op_execution_context.run_id)
    columns = sorted(
        {
            *STAGED_COLUMNS_BY_FIELD.values(),
            *STAGED_COLUMNS_BY_VARIANT_FIELD.values(),
            *STAGED_KEY,
            "currency",
        }
    )
    with warehouse.warehouse().connect() as con:
        for batch_id in gates.pending_batches(con, STREAM, GATING_CHECKS):
            frame = con.execute(
                f"SELECT {', '.join(columns)} FROM {STAGED_TABLE} WHERE batch_id = ?",
                [batch_id],
            ).df()
            judged = {
                CHECK_KEYS_AND_VALUES: judge_product_keys_and_values(frame, contract),
                CHECK_COUNT_BALANCE: count_balance_verdict(con, STAGING_PRODUCTS, batch_id),
                CHECK_REQUIRED_FIELDS: judge_staged_batch_drift(
                    con, STREAM, batch_id, contract.name
                ),
            }
            gate.record(con, STREAM, batch_id, judged)
    yield from gate.results(STAGING_PRODUCTS, metadata={"contract": contract.label})


@dg.asset_check(
    asset=PRODUCT_HISTORY,
    name=CHECK_HISTORY_WELL_FORMED,
    blocking=True,
    description="Every SKU has exactly one current row (valid_to NULL), and its periods neither overlap "
    "nor leave gaps: each row ends where the next begins.",
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
)
def product_history_well_formed(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        current = con.execute(
            "SELECT sku, count(*) FILTER (WHERE valid_to IS NULL) AS n FROM core.product_history "
            "GROUP BY sku HAVING n <> 1 ORDER BY sku"
        ).fetchall()
        broken = con.execute(
            """
            SELECT sku, valid_from, valid_to, next_from FROM (
                SELECT sku, valid_from, valid_to,
                       lead(valid_from) OVER (PARTITION BY sku ORDER BY valid_from) AS next_from
                FROM core.product_history)
            WHERE (next_from IS NOT NULL AND valid_to IS DISTINCT FROM next_from)
               OR (valid_to IS NOT NULL AND valid_to <= valid_from)
            ORDER BY sku, valid_from
            """
        ).fetchall()
        skus = con.execute("SELECT count(DISTINCT sku) FROM core.product_history").fetchone()[0]
    problems = [f"{sku}: {n} current rows" for sku, n in current] + [
        f"{sku}: row from {start} to {end} but the next starts at {nxt}"
        for sku, start, end, nxt in broken
    ]
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems[:20]) or None,
        metadata={"skus": skus, "problems": len(problems)},
    )
