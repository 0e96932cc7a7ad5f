"""staging/storefront/products: one typed row per variant (SKU) of each product version, gated."""

from collections import Counter

import dagster as dg
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.orders.staging import column_schema
from integration_assets.defs.products.names import (
    CONTRACT_NAME,
    GROUP,
    OWNER,
    RAW_PRODUCTS,
    STAGING_PRODUCTS,
    STREAM,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    batches_to_restage,
    record_batch_outcome,
    restage_batch,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.money import is_currency_code
from integration_assets.streams.product_records import StagedVariant, stage_product
from integration_assets.streams.schema_drift import DriftEvent, batch_drift
from integration_assets.streams.timestamps import naive_utc, utc_now_naive
from integration_assets.webhooks.routing import batches_staged_as

STAGED_TABLE = "staging.storefront_products"

COLUMNS = [
    "product_id",
    "variant_id",
    "sku",
    "price_minor",
    "compare_at_price_minor",
    "currency",
    "available",
    "inventory_quantity",
    "inventory_policy",
    "product_status",
    "category",
    "bundle_components",
    "updated_at",
    "variant_updated_at",
    "payload_hash",
    "batch_id",
    "record_index",
    "raw_ref",
    "contract_version",
    "staged_run_id",
    "staged_at",
]


class StagingProductsConfig(dg.Config):
    """The shop's currency: Shopify prices products in it (`GET shop.json` -> `currency`)."""

    shop_currency: str = "USD"


def split_product_batch(
    log: RawLog, manifest: BatchManifest, contract: Contract, currency: str
) -> tuple[
    dict[tuple, tuple[int, list[StagedVariant]]],
    list[tuple[int, str | None, Violation]],
    int,
    list[DriftEvent],
]:
    """Every record of a batch: staged product versions by (product id, updated_at, payload hash),
    quarantined records, exact duplicates within the batch, and the batch's schema drift against
    the contract."""
    staged: dict[tuple, tuple[int, list[StagedVariant]]] = {}
    quarantined = []
    duplicates = 0
    records = list(log.read_records(manifest))
    drift = batch_drift((record.get("payload") for record in records), contract)
    for record in records:
        index, payload = record["record_index"], record.get("payload")
        result = stage_product(payload, contract, currency)
        if isinstance(result, Violation):
            key = payload.get("id") if isinstance(payload, dict) else None
            quarantined.append((index, None if key is None else str(key), result))
            continue
        first = result[0]
        key = (first.product_id, first.updated_at, first.payload_hash)
        if key in staged:
            duplicates += 1
        else:
            staged[key] = (index, result)
    return staged, quarantined, duplicates, drift


def stage_products_batch(
    warehouse, log: RawLog, manifest: BatchManifest, contract: Contract, currency: str, run_id: str
) -> dict:
    """Stage one raw batch in one transaction: variant rows, quarantine, drift events, batch record
    (with the contract version) and its count balance.

    Balance (per product version, i.e. per raw record): read = staged + quarantined + duplicates.
    """
    with warehouse.transaction() as con:
        return stage_products_batch_in(con, log, manifest, contract, currency, run_id)


def restage_products_batch(
    warehouse, log: RawLog, manifest: BatchManifest, contract: Contract, currency: str, run_id: str
) -> dict:
    """Stage a blocked batch again under a newer contract version, in one transaction."""
    return restage_batch(
        warehouse,
        lambda con: stage_products_batch_in(con, log, manifest, contract, currency, run_id),
        stream=STREAM,
        asset_key=STAGING_PRODUCTS.to_user_string(),
        table=STAGED_TABLE,
        batch_id=manifest.batch_id,
    )


def stage_products_batch_in(
    con, log: RawLog, manifest: BatchManifest, contract: Contract, currency: str, run_id: str
) -> dict:
    """Stage one raw batch in the caller's transaction (see `stage_products_batch`)."""
    versions, quarantined, duplicates, drift = split_product_batch(
        log, manifest, contract, currency
    )
    now = utc_now_naive()
    product_ids = sorted({key[0] for key in versions})
    already = (
        {
            (row[0], row[1], row[2])
            for row in con.execute(
                f"SELECT DISTINCT product_id, updated_at, payload_hash FROM {STAGED_TABLE} "
                "WHERE list_contains(?::BIGINT[], product_id)",
                [product_ids],
            ).fetchall()
        }
        if product_ids
        else set()
    )
    rows = []
    new_versions = 0
    for (product_id, updated_at, digest), (index, variants) in versions.items():
        if (product_id, naive_utc(updated_at), digest) in already:
            duplicates += 1
            continue
        new_versions += 1
        rows += [
            [
                v.product_id,
                v.variant_id,
                v.sku,
                v.price_minor,
                v.compare_at_price_minor,
                v.currency,
                v.available,
                v.inventory_quantity,
                v.inventory_policy,
                v.product_status,
                v.category,
                v.bundle,
                naive_utc(v.updated_at),
                naive_utc(v.variant_updated_at),
                v.payload_hash,
                manifest.batch_id,
                index,
                manifest.raw_ref(index),
                contract.version,
                run_id,
                now,
            ]
            for v in variants
        ]
    if rows:
        frame = pd.DataFrame(rows, columns=COLUMNS)
        con.register("incoming", frame)
        con.execute(
            f"INSERT INTO staging.storefront_products ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM incoming"
        )
        con.unregister("incoming")
    balance = record_batch_outcome(
        con,
        stream=STREAM,
        asset_key=STAGING_PRODUCTS.to_user_string(),
        manifest=manifest,
        contract=contract,
        run_id=run_id,
        staged=new_versions,
        quarantined=quarantined,
        duplicates=duplicates,
        drift=drift,
    )
    return {
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": new_versions,
        "variant_rows": len(rows),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "quarantine_reasons": Counter(f"{v.rule}: {v.field}" for _, _, v in quarantined),
        "drift": drift,
        "balance": balance,
    }


def unstaged_product_batches(warehouse, log: RawLog) -> list[BatchManifest]:
    """Raw batches not staged yet, oldest first: the polled ones and the webhook deliveries of
    `products/create` and `products/update` (integration_assets/webhooks/routing.py)."""
    with warehouse.connect() as con:
        done = {
            row[0]
            for row in con.execute(
                "SELECT batch_id FROM staging.batches WHERE stream = ?", [STREAM]
            ).fetchall()
        }
    return [m for m in batches_staged_as(log, STREAM) if m.batch_id not in done]


@dg.asset(
    key=STAGING_PRODUCTS,
    deps=[RAW_PRODUCTS],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "staging", "source": "storefront", "pii": "false"},
    pool=WAREHOUSE_POOL,
    metadata={
        "dagster/column_schema": column_schema(load_contract(CONTRACT_NAME)),
        "contract": load_contract(CONTRACT_NAME).label,
    },
)
def staging_storefront_products(
    context: dg.AssetExecutionContext,
    config: StagingProductsConfig,
    raw_log: RawLogResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """One row per variant (SKU) of each product version: price in integer minor units of the shop's
    currency, availability, category (`product_type`), bundle components, the product's `updated_at`.

    Reads every raw batch not staged yet (the polls, and each `products/create|update` webhook
    delivery), and again every blocked batch staged under an older
    contract version than the one in force. Each batch's payloads are compared with the contract: a
    field it does not know is recorded in `ops.schema_drift` (the batch proceeds; merchandising is
    notified), a required field removed, renamed or retyped is breaking drift that blocks the batch
    until a new contract version accepts it. A product version that breaks a contract rule (its own or
    one of its variants') goes to `ops.quarantine` whole, with the rule, the field and its raw
    reference; exact duplicates (the same product, `updated_at` and payload) are counted and dropped.
    Each batch is staged in one transaction with its count balance: records read = staged +
    quarantined + duplicates. The blocking checks then decide what core/products may read.
    """
    if not is_currency_code(config.shop_currency):
        raise dg.Failure(f"shop_currency must be an ISO 4217 code, got {config.shop_currency!r}")
    contract = load_contract(CONTRACT_NAME)
    log, wh = raw_log.log(), warehouse.warehouse()
    # One opening of the warehouse for every batch's reads and transactions (no network here).
    with wh.session():
        restaged = [
            restage_products_batch(
                wh, log, manifest, contract, config.shop_currency, context.run_id
            )
            for manifest in batches_to_restage(wh, log, STREAM, contract)
        ]
        for result in restaged:
            context.log.info(
                f"batch {result['batch_id']} was blocked under an older contract version: "
                f"staged again under {contract.label}"
            )
        results = restaged + [
            stage_products_batch(wh, log, manifest, contract, config.shop_currency, context.run_id)
            for manifest in unstaged_product_batches(wh, log)
        ]
    totals, reasons, balance = staging_run_books(
        results,
        "quarantine_reasons",
        ("records_read", "staged", "variant_rows", "quarantined", "duplicates"),
    )
    drift = Counter(event.kind for r in results for event in r["drift"])
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} product version(s): {reason}")
    for event in (event for r in results for event in r["drift"]):
        log_drift = context.log.warning if event.breaking else context.log.info
        log_drift(f"batch schema drift ({event.kind}): {event.detail}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batches_restaged": len(restaged),
            "batch_ids": ", ".join(r["batch_id"] for r in results) or "none",
            **totals,
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "schema_drift": dg.MetadataValue.json(dict(drift)),
            "contract": contract.label,
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
