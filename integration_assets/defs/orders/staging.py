"""staging/storefront/orders: the typed, deduplicated, validated checkpoint between raw and core."""

from collections import Counter
from dataclasses import dataclass, field

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.orders.names import (
    OWNER,
    RAW_ORDERS,
    STAGING_ORDERS,
    STREAM,
)
from integration_assets.storage import staging_books
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    insert_new_rows,
    record_batch_outcome,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams import schema_drift
from integration_assets.streams.order_records import StagedOrder, Violation, stage_order
from integration_assets.streams.timestamps import naive_utc, utc_now_naive
from integration_assets.webhooks.routing import batches_staged_as

CONTRACT_NAME = "storefront_orders"
ROWS_PER_INSERT = 10_000  # staged rows held at once while a batch is read

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


@dataclass
class _BatchStaging:
    """What staging one raw batch found, summed as its records stream by."""

    staged: int = 0  # new rows written
    duplicates: int = 0  # exact duplicates, within the batch or of rows already staged
    quarantined: list[tuple[int, str | None, Violation]] = field(default_factory=list)
    quality_flags: Counter = field(default_factory=Counter)
    quality_flagged: int = 0


def stage_records(
    con, log: RawLog, manifest: BatchManifest, contract: Contract, run_id: str
) -> tuple[_BatchStaging, list[schema_drift.DriftEvent]]:
    """Stage every record of a batch, reading the file once and writing `ROWS_PER_INSERT` rows at
    a time (a peak-day poll is a million records and gigabytes once parsed: only a chunk is held);
    returns the counts and the batch's schema drift against the contract."""
    books = _BatchStaging()
    keys: set[tuple] = set()
    chunk: list[tuple[int, StagedOrder]] = []

    def write_chunk() -> None:
        if chunk:
            frame = _staged_frame(chunk, manifest, contract, run_id)
            new_rows = insert_new_rows(
                con,
                "staging.storefront_orders",
                frame,
                STAGED_COLUMNS,
                ("order_id", "updated_at", "payload_hash"),
            )
            books.staged += new_rows
            books.duplicates += len(frame) - new_rows
            chunk.clear()

    def payloads_as_staged():
        for record in log.read_records(manifest):
            payload = record.get("payload")
            index = record["record_index"]
            result = stage_order(payload, contract)
            if isinstance(result, Violation):
                books.quarantined.append((index, _record_key(payload), result))
            elif (key := (result.order_id, result.updated_at, result.payload_hash)) in keys:
                books.duplicates += 1
            else:
                keys.add(key)
                chunk.append((index, result))
                books.quality_flags.update(result.quality_flags)
                books.quality_flagged += bool(result.quality_flags)
                if len(chunk) >= ROWS_PER_INSERT:
                    write_chunk()
            yield payload

    drift = schema_drift.batch_drift(payloads_as_staged(), contract)
    write_chunk()
    return books, drift


def _staged_frame(
    rows: list[tuple[int, StagedOrder]], manifest: BatchManifest, contract: Contract, run_id: str
) -> pd.DataFrame:
    now = utc_now_naive()
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
    """Stage one raw batch in one transaction: rows, quarantine, drift events, batch record and its
    count balance."""
    with warehouse.transaction() as con:
        return stage_batch_in(con, log, manifest, contract, run_id)


def restage_batch(
    warehouse, log: RawLog, manifest: BatchManifest, contract: Contract, run_id: str
) -> dict:
    """Stage a blocked batch again under a newer contract version, in one transaction: what the
    older version staged, quarantined and judged is replaced, so nothing is counted twice."""
    return staging_books.restage_batch(
        warehouse,
        lambda con: stage_batch_in(con, log, manifest, contract, run_id),
        stream=STREAM,
        asset_key=STAGING_ORDERS.to_user_string(),
        table="staging.storefront_orders",
        batch_id=manifest.batch_id,
    )


def stage_batch_in(
    con, log: RawLog, manifest: BatchManifest, contract: Contract, run_id: str
) -> dict:
    books, drift = stage_records(con, log, manifest, contract, run_id)
    balance = record_batch_outcome(
        con,
        stream=STREAM,
        asset_key=STAGING_ORDERS.to_user_string(),
        manifest=manifest,
        contract=contract,
        run_id=run_id,
        staged=books.staged,
        quarantined=books.quarantined,
        duplicates=books.duplicates,
        quality_flagged=books.quality_flagged,
        drift=drift,
    )
    return {
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": books.staged,
        "quarantined": len(books.quarantined),
        "duplicates": books.duplicates,
        "quality_flags": books.quality_flags,
        "quarantine_reasons": Counter(f"{v.rule}: {v.field}" for _, _, v in books.quarantined),
        "drift": drift,
        "balance": balance,
    }


def batches_to_restage(warehouse, log: RawLog, contract: Contract) -> list[BatchManifest]:
    """Blocked batches staged under an older contract version than `contract`'s, oldest first."""
    return staging_books.batches_to_restage(warehouse, log, STREAM, contract)


def unstaged_batches(warehouse, log: RawLog) -> list[BatchManifest]:
    """Raw batches not staged yet, oldest first: the polled ones and the webhook deliveries of an
    order topic (integration_assets/webhooks/routing.py), whose body is an order like a polled one."""
    with warehouse.connect() as con:
        done = {
            row[0]
            for row in con.execute(
                "SELECT batch_id FROM staging.batches WHERE stream = ?", [STREAM]
            ).fetchall()
        }
    return [m for m in batches_staged_as(log, STREAM) if m.batch_id not in done]


def column_schema(*contracts: Contract) -> dg.TableSchema:
    """The `dagster/column_schema` shown in the UI, generated from the contract(s): one column per
    contract field (named `<contract>.<field>` when an asset stages several contracts), with its
    type, its rule and its PII tag."""

    def described(contract: Contract, rule) -> str | None:
        parts = [rule.description] if rule.description else []
        if rule.required:
            parts.append("required")
        if rule.allowed is not None:
            parts.append(f"one of {list(rule.allowed)}")
        if rule.source:
            parts.append(f"sent by the source as '{rule.source}'")
        if len(contracts) > 1:
            parts.append(contract.label)
        return "; ".join(parts) or None

    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                rule.name if len(contracts) == 1 else f"{contract.name}.{rule.name}",
                rule.type,
                description=described(contract, rule),
                tags={"pii": "true"} if rule.pii else {},
            )
            for contract in contracts
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

    Reads every raw batch not staged yet (the polls, and each webhook delivery of an order topic,
    whose body is the same order document), and again every blocked batch staged under an older
    contract version than the one in force (a reviewed new version may accept what blocked it). Each
    batch's payloads are compared with the contract: a field it does not know is recorded in
    `ops.schema_drift` (the batch proceeds; the contract's owner is notified), a required field
    removed, renamed or retyped is breaking drift that blocks the batch. A record that breaks a contract rule goes to `ops.quarantine`
    with the rule, the field and its raw reference, and the rest proceeds; exact duplicates (the same
    order, `updated_at` and payload) are counted and dropped. Each batch is staged in one transaction
    with its count balance: records read = staged + quarantined + duplicates.
    The blocking checks on this asset then decide, batch by batch, what is promoted to core.
    """
    contract = load_contract(CONTRACT_NAME)
    log, wh = raw_log.log(), warehouse.warehouse()
    # One opening of the warehouse for every batch's reads and transactions (no network here).
    with wh.session():
        restaged = [
            restage_batch(wh, log, manifest, contract, context.run_id)
            for manifest in batches_to_restage(wh, log, contract)
        ]
        for result in restaged:
            context.log.info(
                f"batch {result['batch_id']} was blocked under an older contract version: "
                f"staged again under {contract.label}"
            )
        results = restaged + [
            stage_batch(wh, log, manifest, contract, context.run_id)
            for manifest in unstaged_batches(wh, log)
        ]
    totals, reasons, balance = staging_run_books(results, "quarantine_reasons")
    flags = sum((r["quality_flags"] for r in results), Counter())
    drift = Counter(event.kind for r in results for event in r["drift"])
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    for event in (event for r in results for event in r["drift"]):
        log_drift = context.log.warning if event.breaking else context.log.info
        log_drift(f"batch schema drift ({event.kind}): {event.detail}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batches_restaged": len(restaged),
            "batch_ids": ", ".join(r["batch_id"] for r in results) or "none",
            **totals,
            "quality_flagged": dg.MetadataValue.json(dict(flags)),
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "schema_drift": dg.MetadataValue.json(dict(drift)),
            "contract": contract.label,
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
