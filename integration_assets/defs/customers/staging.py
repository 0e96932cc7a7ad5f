"""staging/customers/references: typed, deduplicated versions of CRM accounts and ERP customers, gated."""

from collections import Counter

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.customers.names import (
    CONTRACTS,
    GROUP,
    OWNER,
    RAW_CRM_ACCOUNTS,
    RAW_ERP_CUSTOMERS,
    STAGING_REFERENCES,
    STREAMS,
    SYSTEM_OF_STREAM,
)
from integration_assets.defs.orders.staging import column_schema
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.staging_books import (
    batches_to_restage,
    insert_new_rows,
    record_batch_outcome,
    restage_batch,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL, Warehouse
from integration_assets.streams.contract_names import with_contract_names
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.customer_references import record_key, stage_reference
from integration_assets.streams.money import is_currency_code
from integration_assets.streams.schema_drift import DriftEvent, batch_drift
from integration_assets.streams.timestamps import naive_utc, utc_now_naive

STAGED_TABLE = "staging.customer_references"
# A record version: the same source record with the same payload is one row, however often it is read.
STAGED_KEY = ("system", "source_record_id", "payload_hash")
COLUMNS = [
    "system",
    "customer_id",
    "source_record_id",
    "modified_at",
    "currency",
    "payload_hash",
    "batch_id",
    "record_index",
    "raw_ref",
    "payload",
    "contract_version",
    "staged_run_id",
    "staged_at",
]


class StagingCustomersConfig(dg.Config):
    """The ERP company's currency: a customer's credit limit without its own currency is in it."""

    erp_company_currency: str = "USD"


def split_references_batch(
    log: RawLog,
    stream: str,
    manifest: BatchManifest,
    contract: Contract,
    company_currency: str,
    run_id: str,
) -> tuple[list[list], list[tuple[int, str | None, Violation]], int, list[DriftEvent]]:
    """Every record of one raw batch: staged rows, quarantined records, exact duplicates within the
    batch, and the batch's schema drift against the stream's contract."""
    system = SYSTEM_OF_STREAM[stream]
    rows, quarantined, seen = [], [], set()
    duplicates = 0
    now = utc_now_naive()
    records = list(log.read_records(manifest))
    drift = batch_drift((record.get("payload") for record in records), contract)
    for record in records:
        index = record["record_index"]
        # Read under the contract's names (a rename a newer version accepted); raw keeps the original.
        payload = with_contract_names(record.get("payload"), contract)
        staged = stage_reference(system, payload, contract, company_currency)
        if isinstance(staged, Violation):
            quarantined.append((index, record_key(system, payload), staged))
            continue
        if (staged.source_record_id, staged.payload_hash) in seen:
            duplicates += 1
            continue
        seen.add((staged.source_record_id, staged.payload_hash))
        rows.append(
            [
                system,
                staged.customer_id,
                staged.source_record_id,
                naive_utc(staged.modified_at),
                staged.currency,
                staged.payload_hash,
                manifest.batch_id,
                index,
                manifest.raw_ref(index),
                orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
                contract.version,
                run_id,
                now,
            ]
        )
    return rows, quarantined, duplicates, drift


def balance_scope(stream: str, batch_id: str) -> str:
    """The count balance of a customers batch is kept per stream: `<stream>:<batch id>`."""
    return f"{stream}:{batch_id}"


def stage_references_batch_in(
    con,
    log: RawLog,
    stream: str,
    manifest: BatchManifest,
    contract: Contract,
    company_currency: str,
    run_id: str,
) -> dict:
    """Stage one raw batch in the caller's transaction: typed versions, quarantine, drift events,
    batch record (with the contract version) and its count balance.

    Balance: records read = staged + quarantined + duplicates (the same source record and payload,
    within the batch or already staged by an earlier one).
    """
    rows, quarantined, duplicates, drift = split_references_batch(
        log, stream, manifest, contract, company_currency, run_id
    )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # Typed explicitly: an all-NULL column (no ERP limit in the batch) must still insert as text/time.
    frame = frame.astype({"modified_at": "datetime64[us]", "currency": "string"})
    staged_count = insert_new_rows(con, STAGED_TABLE, frame, COLUMNS, STAGED_KEY)
    duplicates += len(frame) - staged_count
    balance = record_batch_outcome(
        con,
        stream=stream,
        asset_key=STAGING_REFERENCES.to_user_string(),
        manifest=manifest,
        contract=contract,
        run_id=run_id,
        staged=int(staged_count),
        quarantined=quarantined,
        duplicates=duplicates,
        balance_scope=balance_scope(stream, manifest.batch_id),
        drift=drift,
    )
    return {
        "stream": stream,
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": int(staged_count),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "reasons": Counter(f"{stream}: {v.rule} on {v.field}" for _, _, v in quarantined),
        "drift": drift,
        "balance": balance,
    }


def stage_references_batch(
    warehouse: Warehouse,
    log: RawLog,
    stream: str,
    manifest: BatchManifest,
    company_currency: str,
    run_id: str,
) -> dict:
    """Stage one raw batch in one transaction, against its stream's contract."""
    contract = load_contract(CONTRACTS[stream])
    with warehouse.transaction() as con:
        return stage_references_batch_in(
            con, log, stream, manifest, contract, company_currency, run_id
        )


def restage_references_batch(
    warehouse: Warehouse,
    log: RawLog,
    stream: str,
    manifest: BatchManifest,
    company_currency: str,
    run_id: str,
) -> dict:
    """Stage a blocked batch again under its stream's newer contract version, in one transaction."""
    contract = load_contract(CONTRACTS[stream])
    return restage_batch(
        warehouse,
        lambda con: stage_references_batch_in(
            con, log, stream, manifest, contract, company_currency, run_id
        ),
        stream=stream,
        asset_key=STAGING_REFERENCES.to_user_string(),
        table=STAGED_TABLE,
        batch_id=manifest.batch_id,
        balance_scope=balance_scope(stream, manifest.batch_id),
        row_filter={"system": SYSTEM_OF_STREAM[stream]},
    )


def references_batches_to_restage(
    warehouse: Warehouse, log: RawLog
) -> list[tuple[str, BatchManifest]]:
    """(stream, batch) of every blocked batch staged under an older version of its contract."""
    return [
        (stream, manifest)
        for stream in STREAMS
        for manifest in batches_to_restage(warehouse, log, stream, load_contract(CONTRACTS[stream]))
    ]


def unstaged_batches(warehouse: Warehouse, log: RawLog) -> list[tuple[str, BatchManifest]]:
    """(stream, manifest) of every raw batch of both streams that staging has not read yet."""
    with warehouse.connect() as con:
        done = {
            row[0]
            for row in con.execute(
                "SELECT batch_id FROM staging.batches WHERE list_contains(?, stream)",
                [list(STREAMS)],
            ).fetchall()
        }
    return [
        (stream, manifest)
        for stream in STREAMS
        for manifest in log.batches(*stream.split("/"))
        if manifest.batch_id not in done
    ]


def contract_labels() -> str:
    return ", ".join(load_contract(name).label for name in CONTRACTS.values())


@dg.asset(
    key=STAGING_REFERENCES,
    deps=[RAW_CRM_ACCOUNTS, RAW_ERP_CUSTOMERS],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "staging", "pii": "true"},
    pool=WAREHOUSE_POOL,
    metadata={
        "dagster/column_schema": column_schema(
            *(load_contract(name) for name in CONTRACTS.values())
        ),
        "contracts": contract_labels(),
    },
)
def staging_customer_references(
    context: dg.AssetExecutionContext,
    config: StagingCustomersConfig,
    raw_log: RawLogResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Every version of every CRM account and ERP customer, typed against its contract
    (crm_accounts, erp_customers) and read as the golden record will read it, keyed by the
    storefront customer id (`External_Id__c` / `external_id`).

    Reads every raw batch not staged yet. A row that breaks a rule (an account made by hand in the
    CRM without an external id, a segment the contract does not know, an ERP credit limit that is
    not money) goes to `ops.quarantine` with the rule, the field and its raw reference; unchanged
    re-reads are counted as duplicates and dropped. Each batch is staged in one transaction with its
    count balance: records read = staged + quarantined + duplicates. The blocking checks then
    decide, batch by batch, what core/customers may read.

    Each batch is also compared with its stream's contract: a field the contract does not know is
    recorded in `ops.schema_drift` (the batch proceeds; the contract's owner is notified), a
    required field removed, renamed or retyped is breaking drift that blocks the batch until a new
    contract version accepts it; the next run then stages that batch again under the new version.
    """
    if not is_currency_code(config.erp_company_currency):
        raise dg.Failure(
            f"erp_company_currency must be an ISO 4217 code, got {config.erp_company_currency!r}"
        )
    log, wh = raw_log.log(), warehouse.warehouse()
    # One opening of the warehouse for every batch's reads and transactions (no network here).
    with wh.session():
        restaged = [
            restage_references_batch(
                wh, log, stream, manifest, config.erp_company_currency, context.run_id
            )
            for stream, manifest in references_batches_to_restage(wh, log)
        ]
        for result in restaged:
            context.log.info(
                f"{result['stream']} batch {result['batch_id']} was blocked under an older contract "
                f"version: staged again under {load_contract(CONTRACTS[result['stream']]).label}"
            )
        results = restaged + [
            stage_references_batch(
                wh, log, stream, manifest, config.erp_company_currency, context.run_id
            )
            for stream, manifest in unstaged_batches(wh, log)
        ]
    totals, reasons, balance = staging_run_books(results, "reasons")
    drift = Counter(f"{r['stream']}: {event.kind}" for r in results for event in r["drift"])
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    for result in results:
        for event in result["drift"]:
            log_drift = context.log.warning if event.breaking else context.log.info
            log_drift(f"{result['stream']} batch schema drift ({event.kind}): {event.detail}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batches_restaged": len(restaged),
            "batch_ids": ", ".join(f"{r['stream']}:{r['batch_id']}" for r in results) or "none",
            **totals,
            "schema_drift": dg.MetadataValue.json(dict(drift)),
            "contracts": contract_labels(),
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
