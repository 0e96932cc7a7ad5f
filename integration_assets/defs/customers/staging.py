"""staging/customers/references: typed, deduplicated versions of CRM accounts and ERP customers, gated."""

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts import load_contract
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
    insert_new_rows,
    record_batch_outcome,
    staging_run_books,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL, Warehouse
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.customer_references import record_key, stage_reference
from integration_assets.streams.money import is_currency_code
from integration_assets.streams.timestamps import naive_utc

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


def stage_references_batch(
    warehouse: Warehouse,
    log: RawLog,
    stream: str,
    manifest: BatchManifest,
    company_currency: str,
    run_id: str,
) -> dict:
    """Stage one raw batch in one transaction: typed versions, quarantine, batch record, count balance.

    Balance: records read = staged + quarantined + duplicates (the same source record and payload,
    within the batch or already staged by an earlier one).
    """
    contract = load_contract(CONTRACTS[stream])
    system = SYSTEM_OF_STREAM[stream]
    rows, quarantined, seen = [], [], set()
    duplicates = 0
    now = datetime.now(UTC).replace(tzinfo=None)
    for record in log.read_records(manifest):
        index, payload = record["record_index"], record.get("payload")
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
    frame = pd.DataFrame(rows, columns=COLUMNS)
    # Typed explicitly: an all-NULL column (no ERP limit in the batch) must still insert as text/time.
    frame = frame.astype({"modified_at": "datetime64[us]", "currency": "string"})
    with warehouse.transaction() as con:
        staged_count = insert_new_rows(
            con,
            "staging.customer_references",
            frame,
            COLUMNS,
            ("system", "source_record_id", "payload_hash"),
        )
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
            balance_scope=f"{stream}:{manifest.batch_id}",
        )
    return {
        "stream": stream,
        "batch_id": manifest.batch_id,
        "records_read": manifest.records,
        "staged": int(staged_count),
        "quarantined": len(quarantined),
        "duplicates": duplicates,
        "reasons": Counter(f"{stream}: {v.rule} on {v.field}" for _, _, v in quarantined),
        "balance": balance,
    }


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
        "contracts": ", ".join(load_contract(name).label for name in CONTRACTS.values()),
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
    """
    if not is_currency_code(config.erp_company_currency):
        raise dg.Failure(
            f"erp_company_currency must be an ISO 4217 code, got {config.erp_company_currency!r}"
        )
    log, wh = raw_log.log(), warehouse.warehouse()
    results = [
        stage_references_batch(
            wh, log, stream, manifest, config.erp_company_currency, context.run_id
        )
        for stream, manifest in unstaged_batches(wh, log)
    ]
    totals, reasons, balance = staging_run_books(results, "reasons")
    for reason, count in reasons.most_common():
        context.log.warning(f"quarantined {count} record(s): {reason}")
    return dg.MaterializeResult(
        metadata={
            "batches_staged": len(results),
            "batch_ids": ", ".join(f"{r['stream']}:{r['batch_id']}" for r in results) or "none",
            **totals,
            "quarantine_reasons": dg.MetadataValue.json(dict(reasons)),
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )
