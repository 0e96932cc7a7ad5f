"""staging/payments/objects: typed, deduplicated versions of every payment-provider object."""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import load_contract
from integration_assets.defs.orders.staging import column_schema
from integration_assets.defs.payments.names import (
    CONTRACTS,
    OWNER,
    RAW,
    SOURCE,
    STAGING_PAYMENTS,
    STREAMS,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    insert_new_rows,
    record_batch_outcome,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.contract_rules import Violation, typed_fields
from integration_assets.streams.hashing import payload_hash

COLUMNS = [
    "resource",
    "object_id",
    "payload_hash",
    "batch_id",
    "record_index",
    "raw_ref",
    "created",
    "amount_minor",
    "currency",
    "status",
    "order_id",
    "parent_id",
    "payload",
    "contract_version",
    "staged_run_id",
    "staged_at",
]


def order_id_of(payload: dict) -> int | None:
    """The storefront order a payment belongs to, from the charge's (or refund's) metadata."""
    value = (payload.get("metadata") or {}).get("shopify_order_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def stage_payments_batch(
    warehouse, log: RawLog, resource: str, manifest: BatchManifest, run_id: str
) -> dict:
    contract = load_contract(CONTRACTS[resource])
    stream = STREAMS[resource]
    rows, quarantined, seen = [], [], set()
    duplicates = 0
    now = datetime.now(UTC).replace(tzinfo=None)
    for record in log.read_records(manifest):
        index, payload = record["record_index"], record.get("payload")
        typed = typed_fields(payload, contract)
        if isinstance(typed, Violation):
            key = payload.get("id") if isinstance(payload, dict) else None
            quarantined.append((index, key, typed))
            continue
        digest = payload_hash(payload)
        if (typed["id"], digest) in seen:
            duplicates += 1
            continue
        seen.add((typed["id"], digest))
        rows.append(
            [
                resource,
                typed["id"],
                digest,
                manifest.batch_id,
                index,
                manifest.raw_ref(index),
                datetime.fromtimestamp(typed["created"], UTC).replace(tzinfo=None),
                typed.get("amount"),
                typed["currency"],
                typed.get("status"),
                order_id_of(payload),
                (record.get("request_params") or {}).get("payout"),
                orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
                contract.version,
                run_id,
                now,
            ]
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    with warehouse.transaction() as con:
        staged = insert_new_rows(
            con,
            "staging.payments_objects",
            frame,
            COLUMNS,
            ("resource", "object_id", "payload_hash"),
        )
        duplicates += len(frame) - staged
        balance = record_batch_outcome(
            con,
            stream=stream,
            asset_key=STAGING_PAYMENTS.to_user_string(),
            manifest=manifest,
            contract=contract,
            run_id=run_id,
            staged=int(staged),
            quarantined=quarantined,
            duplicates=duplicates,
            balance_scope=f"{resource}:{manifest.batch_id}",
        )
    return {
        "resource": resource,
        "records_read": manifest.records,
        "staged": int(staged),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "reasons": Counter(f"{resource}: {v.rule} on {v.field}" for _, _, v in quarantined),
        "balance": balance,
    }


@dg.asset(
    key=STAGING_PAYMENTS,
    deps=list(RAW.values()),
    group_name="payments",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "staging", "source": "payments"},
    pool=WAREHOUSE_POOL,
    metadata={
        "dagster/column_schema": column_schema(
            *(load_contract(name) for name in sorted(set(CONTRACTS.values())))
        ),
        "contracts": ", ".join(
            load_contract(name).label for name in sorted(set(CONTRACTS.values()))
        ),
    },
)
def staging_payments_objects(
    context: dg.AssetExecutionContext, raw_log: RawLogResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every version of every Stripe object (charges, refunds, balance transactions, disputes, payouts,
    and which transactions each payout paid out), typed against its contract: integer minor units,
    lowercase ISO currency, the storefront order id from the charge metadata.

    Records that break a contract rule go to `ops.quarantine`; unchanged re-reads are counted as
    duplicates and dropped; each batch is staged in one transaction with its count balance.
    """
    log, wh = raw_log.log(), warehouse.warehouse()
    with wh.connect() as con:
        done = {
            row[0]
            for row in con.execute(
                "SELECT batch_id FROM staging.batches WHERE stream LIKE 'payments/%'"
            ).fetchall()
        }
    results = [
        stage_payments_batch(wh, log, resource, manifest, context.run_id)
        for resource in STREAMS
        for manifest in log.batches(SOURCE, resource)
        if manifest.batch_id not in done
    ]
    totals, reasons, balance = staging_run_books(results, "reasons")
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            **totals,
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
