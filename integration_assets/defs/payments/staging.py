"""staging/payments/objects: typed, deduplicated versions of every payment-provider object."""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.orders.staging import column_schema
from integration_assets.defs.payments.names import (
    CONTRACTS,
    OWNER,
    RAW,
    STAGING_PAYMENTS,
    STREAMS,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    batches_to_restage,
    insert_new_rows,
    record_batch_outcome,
    restage_batch,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.contract_rules import Violation, typed_fields
from integration_assets.streams.hashing import payload_hash
from integration_assets.streams.schema_drift import DriftEvent, batch_drift
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets.webhooks.routing import payments_batches_staged, staged_payload

STAGED_TABLE = "staging.payments_objects"

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


def split_payments_batch(
    log: RawLog, resource: str, manifest: BatchManifest, contract: Contract, run_id: str
) -> tuple[list[list], list[tuple[int, str | None, Violation]], int, list[DriftEvent]]:
    """Every record of one resource's batch: staged rows, quarantined records, exact duplicates
    within the batch, and the batch's schema drift against the resource's contract. A webhook
    batch's record is a Stripe event: what is staged is its `data.object` (`staged_payload`)."""
    rows, quarantined, seen = [], [], set()
    duplicates = 0
    now = utc_now_naive()

    def payloads_as_split():
        # One pass over the file: each record is split as the drift observer reads it, so only
        # the staged rows (serialized) are held, not every parsed record of a peak-day batch.
        nonlocal duplicates
        for record in log.read_records(manifest):
            index, payload = record["record_index"], staged_payload(manifest, record)
            yield payload
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

    drift = batch_drift(payloads_as_split(), contract)
    return rows, quarantined, duplicates, drift


def stage_payments_batch_in(
    con, log: RawLog, resource: str, manifest: BatchManifest, contract: Contract, run_id: str
) -> dict:
    """Stage one resource's batch in the caller's transaction: rows, quarantine, drift events,
    batch record (with the contract version) and its count balance."""
    stream = STREAMS[resource]
    rows, quarantined, duplicates, drift = split_payments_batch(
        log, resource, manifest, contract, run_id
    )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    staged = insert_new_rows(
        con, STAGED_TABLE, frame, COLUMNS, ("resource", "object_id", "payload_hash")
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
        balance_scope=balance_scope(resource, manifest.batch_id),
        drift=drift,
    )
    return {
        "resource": resource,
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": int(staged),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "reasons": Counter(f"{resource}: {v.rule} on {v.field}" for _, _, v in quarantined),
        "drift": drift,
        "balance": balance,
    }


def balance_scope(resource: str, batch_id: str) -> str:
    """The count balance of a payments batch is kept per resource: `<resource>:<batch id>`."""
    return f"{resource}:{batch_id}"


def stage_payments_batch(
    warehouse, log: RawLog, resource: str, manifest: BatchManifest, run_id: str
) -> dict:
    """Stage one resource's raw batch in one transaction, against the resource's contract."""
    contract = load_contract(CONTRACTS[resource])
    with warehouse.transaction() as con:
        return stage_payments_batch_in(con, log, resource, manifest, contract, run_id)


def restage_payments_batch(
    warehouse, log: RawLog, resource: str, manifest: BatchManifest, run_id: str
) -> dict:
    """Stage a blocked batch again under the resource's newer contract version, in one transaction."""
    contract = load_contract(CONTRACTS[resource])
    return restage_batch(
        warehouse,
        lambda con: stage_payments_batch_in(con, log, resource, manifest, contract, run_id),
        stream=STREAMS[resource],
        asset_key=STAGING_PAYMENTS.to_user_string(),
        table=STAGED_TABLE,
        batch_id=manifest.batch_id,
        balance_scope=balance_scope(resource, manifest.batch_id),
        row_filter={"resource": resource},
    )


def payments_batches_to_restage(warehouse, log: RawLog) -> list[tuple[str, BatchManifest]]:
    """(resource, batch) of every blocked batch staged under an older version of its contract."""
    return [
        (resource, manifest)
        for resource, stream in STREAMS.items()
        for manifest in batches_to_restage(
            warehouse, log, stream, load_contract(CONTRACTS[resource])
        )
    ]


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

    Stripe webhook events are staged here too: the event's `data.object`, as a batch of its object
    type. Each batch holds one object type and is compared with that type's contract: a field the
    contract does not know is recorded in `ops.schema_drift` (the batch proceeds; finance-ops is
    notified), a required field removed, renamed or retyped is breaking drift that blocks the batch
    until a new contract version accepts it; then the batch is staged again under that version.
    Records that break a contract rule go to `ops.quarantine`; unchanged re-reads are counted as
    duplicates and dropped; each batch is staged in one transaction with its count balance.
    """
    log, wh = raw_log.log(), warehouse.warehouse()
    # One opening of the warehouse for every batch's reads and transactions (no network here).
    with wh.session():
        restaged = [
            restage_payments_batch(wh, log, resource, manifest, context.run_id)
            for resource, manifest in payments_batches_to_restage(wh, log)
        ]
        for result in restaged:
            context.log.info(
                f"{result['resource']} batch {result['batch_id']} was blocked under an older contract "
                f"version: staged again under {load_contract(CONTRACTS[result['resource']]).label}"
            )
        with wh.connect() as con:
            done = {
                row[0]
                for row in con.execute(
                    "SELECT batch_id FROM staging.batches WHERE stream LIKE 'payments/%'"
                ).fetchall()
            }
        # Polled batches, and Stripe webhook events routed by their object's type (a charge.* event
        # whose data.object is a charge is staged as a charges batch).
        staged_as = payments_batches_staged(log, STREAMS.values())
        results = restaged + [
            stage_payments_batch(wh, log, resource, manifest, context.run_id)
            for resource, stream in STREAMS.items()
            for manifest in staged_as[stream]
            if manifest.batch_id not in done
        ]
    totals, reasons, balance = staging_run_books(results, "reasons")
    drift = Counter(f"{r['resource']}: {event.kind}" for r in results for event in r["drift"])
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    for result in results:
        for event in result["drift"]:
            log_drift = context.log.warning if event.breaking else context.log.info
            log_drift(f"{result['resource']} batch schema drift ({event.kind}): {event.detail}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batches_restaged": len(restaged),
            **totals,
            "schema_drift": dg.MetadataValue.json(dict(drift)),
            "contracts": ", ".join(
                load_contract(name).label for name in sorted(set(CONTRACTS.values()))
            ),
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
