"""staging/storefront/orders: the typed, deduplicated, validated checkpoint between raw and core."""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.orders.names import (
    OWNER,
    RAW_ORDERS,
    SOURCE,
    STAGING_ORDERS,
    STREAM,
    STREAM_NAME,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    insert_new_rows,
    record_batch_outcome,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.order_records import StagedOrder, Violation, stage_order
from integration_assets.streams.timestamps import naive_utc

CONTRACT_NAME = "storefront_orders"

STAGED_COLUMNS = [
    "order_id",
    "updated_at",
    "payload_hash",
    "batch_id",
    "record_index",
    "raw_ref",
    "name",
    "email",
    "currency",
    "financial_status",
    "fulfillment_status",
    "created_at",
    "cancelled_at",
    "closed_at",
    "total_price_minor",
    "subtotal_price_minor",
    "total_tax_minor",
    "total_discounts_minor",
    "shipping_minor",
    "totals_mismatch_minor",
    "gateway",
    "source_name",
    "snapshot",
    "quality_flags",
    "contract_version",
    "staged_run_id",
    "staged_at",
]


def _record_key(payload: object) -> str | None:
    return (
        str(payload.get("id"))
        if isinstance(payload, dict) and payload.get("id") is not None
        else None
    )


def split_batch(
    log: RawLog, manifest: BatchManifest, contract: Contract
) -> tuple[list[tuple[int, StagedOrder]], list[tuple[int, str | None, Violation]], int]:
    """Stage every record of a batch: (staged, quarantined, exact duplicates within the batch)."""
    staged: dict[tuple, tuple[int, StagedOrder]] = {}
    quarantined = []
    duplicates = 0
    for record in log.read_records(manifest):
        index = record["record_index"]
        result = stage_order(record.get("payload"), contract)
        if isinstance(result, Violation):
            quarantined.append((index, _record_key(record.get("payload")), result))
            continue
        key = (result.order_id, result.updated_at, result.payload_hash)
        if key in staged:
            duplicates += 1
        else:
            staged[key] = (index, result)
    return list(staged.values()), quarantined, duplicates


def _staged_frame(
    rows: list[tuple[int, StagedOrder]], manifest: BatchManifest, contract: Contract, run_id: str
) -> pd.DataFrame:
    now = datetime.now(UTC).replace(tzinfo=None)
    return pd.DataFrame(
        [
            {
                "order_id": order.order_id,
                "updated_at": naive_utc(order.updated_at),
                "payload_hash": order.payload_hash,
                "batch_id": manifest.batch_id,
                "record_index": index,
                "raw_ref": manifest.raw_ref(index),
                "name": order.name,
                "email": order.email,
                "currency": order.currency,
                "financial_status": order.financial_status,
                "fulfillment_status": order.fulfillment_status,
                "created_at": naive_utc(order.created_at),
                "cancelled_at": naive_utc(order.cancelled_at),
                "closed_at": naive_utc(order.closed_at),
                "total_price_minor": order.total_price_minor,
                "subtotal_price_minor": order.subtotal_price_minor,
                "total_tax_minor": order.total_tax_minor,
                "total_discounts_minor": order.total_discounts_minor,
                "shipping_minor": order.shipping_minor,
                "totals_mismatch_minor": order.totals_mismatch_minor,
                "gateway": order.gateway,
                "source_name": order.source_name,
                "snapshot": orjson.dumps(order.snapshot, option=orjson.OPT_SORT_KEYS).decode(),
                "quality_flags": list(order.quality_flags),
                "contract_version": contract.version,
                "staged_run_id": run_id,
                "staged_at": now,
            }
            for index, order in rows
        ],
        columns=STAGED_COLUMNS,
    )


def stage_batch(
    warehouse, log: RawLog, manifest: BatchManifest, contract: Contract, run_id: str
) -> dict:
    """Stage one raw batch in one transaction: rows, quarantine, batch record and its count balance."""
    rows, quarantined, duplicates_in_batch = split_batch(log, manifest, contract)
    frame = _staged_frame(rows, manifest, contract, run_id)
    with warehouse.transaction() as con:
        new_rows = insert_new_rows(
            con,
            "staging.storefront_orders",
            frame,
            STAGED_COLUMNS,
            ("order_id", "updated_at", "payload_hash"),
        )
        duplicates = duplicates_in_batch + (len(frame) - new_rows)
        balance = record_batch_outcome(
            con,
            stream=STREAM,
            asset_key=STAGING_ORDERS.to_user_string(),
            manifest=manifest,
            contract=contract,
            run_id=run_id,
            staged=int(new_rows),
            quarantined=quarantined,
            duplicates=duplicates,
            quality_flagged=sum(1 for _, order in rows if order.quality_flags),
        )
    return {
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": int(new_rows),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "quality_flags": Counter(flag for _, order in rows for flag in order.quality_flags),
        "quarantine_reasons": Counter(f"{v.rule}: {v.field}" for _, _, v in quarantined),
        "balance": balance,
    }


def unstaged_batches(warehouse, log: RawLog) -> list[BatchManifest]:
    with warehouse.connect() as con:
        done = {
            row[0]
            for row in con.execute(
                "SELECT batch_id FROM staging.batches WHERE stream = ?", [STREAM]
            ).fetchall()
        }
    return [m for m in log.batches(SOURCE, STREAM_NAME) if m.batch_id not in done]


def column_schema(contract: Contract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                rule.name,
                rule.type,
                description=rule.description or None,
                tags={"pii": "true"} if rule.pii else {},
            )
            for rule in contract.fields
        ]
    )


@dg.asset(
    key=STAGING_ORDERS,
    deps=[RAW_ORDERS],
    group_name="orders",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "staging", "source": "storefront", "pii": "true"},
    pool=WAREHOUSE_POOL,
    metadata={
        "dagster/column_schema": column_schema(load_contract(CONTRACT_NAME)),
        "contract": load_contract(CONTRACT_NAME).label,
    },
)
def staging_storefront_orders(
    context: dg.AssetExecutionContext, raw_log: RawLogResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Typed order versions (money in integer minor units, timestamps in UTC), one row per order id + version.

    Reads every raw batch not staged yet. A record that breaks a contract rule goes to `ops.quarantine`
    with the rule, the field and its raw reference, and the rest proceeds; exact duplicates (the same
    order, `updated_at` and payload) are counted and dropped. Each batch is staged in one transaction
    with its count balance: records read = staged + quarantined + duplicates.
    The blocking checks on this asset then decide, batch by batch, what is promoted to core.
    """
    contract = load_contract(CONTRACT_NAME)
    log, wh = raw_log.log(), warehouse.warehouse()
    results = [
        stage_batch(wh, log, manifest, contract, context.run_id)
        for manifest in unstaged_batches(wh, log)
    ]
    totals, reasons, balance = staging_run_books(results, "quarantine_reasons")
    flags = sum((r["quality_flags"] for r in results), Counter())
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batch_ids": ", ".join(r["batch_id"] for r in results) or "none",
            **totals,
            "quality_flagged": dg.MetadataValue.json(dict(flags)),
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "contract": contract.label,
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
