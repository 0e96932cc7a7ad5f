"""Blocking checks on staging/customers/references, batch by batch, with Great Expectations suites
generated from each stream's contract (crm_accounts, erp_customers), and schema drift judged
against that contract."""

import dagster as dg
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.customers.names import (
    CHECK_COUNT_BALANCE,
    CHECK_KEYS_UNIQUE,
    CHECK_QUARANTINE_SHARE,
    CHECK_REQUIRED_FIELDS,
    CONTRACTS,
    GATING_CHECKS,
    STAGING_REFERENCES,
    STREAMS,
    SYSTEM_OF_STREAM,
)
from integration_assets.defs.customers.staging import STAGED_KEY, STAGED_TABLE, balance_scope
from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.quality import gx_runner
from integration_assets.quality.contract_suite import contract_suite
from integration_assets.storage import gates
from integration_assets.storage.drift_events import judge_staged_batch_drift
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

DEFAULT_MAX_QUARANTINED_RATIO = 0.5
DESCRIPTIONS = {
    CHECK_KEYS_UNIQUE: "The staged rows keep their contract's rules (a Great Expectations suite generated "
    "from it): record versions unique, every row names a customer, its source record and its version; "
    "and no customer id is claimed by two different source records (two CRM accounts with one "
    "External_Id__c need a person).",
    CHECK_COUNT_BALANCE: "Every record read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_QUARANTINE_SHARE: "No more than the contract's share of a batch is quarantined; more is a change "
    "at the source (a renamed field, a new picklist value), so the whole batch waits for a person.",
    CHECK_REQUIRED_FIELDS: "Schema drift: no required field of the stream's contract is removed, renamed or "
    "retyped in more than the allowed share of a batch (new fields are recorded and notified, not blocking).",
}

# Contract field -> staged column, per stream (both streams are staged in one table).
STAGED_COLUMNS_BY_FIELD = {
    "crm_accounts": {
        "External_Id__c": "customer_id",
        "Id": "source_record_id",
        "LastModifiedDate": "modified_at",
    },
    "erp_customers": {
        "external_id": "customer_id",
        "id": "source_record_id",
        "updated_at": "modified_at",
    },
}
JUDGED_COLUMNS = ("system", "customer_id", "source_record_id", "modified_at", "payload_hash")


def judge_keys(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    """frame: JUDGED_COLUMNS of one batch's staged rows. The contract's rules as a generated GX
    suite, and one rule the contract cannot say: one source record per customer id."""
    if frame.empty:
        return True, "no staged rows"
    suite = contract_suite(contract, STAGED_COLUMNS_BY_FIELD[contract.name], STAGED_KEY)
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    gxe = gx_runner.expectations()
    # A record seen twice in a batch (changed while the ERP was paged) is one record; two records
    # with the same customer id are two customers the golden record cannot tell apart.
    owners = frame[["customer_id", "source_record_id"]].drop_duplicates()
    outcome = gx_runner.validate(owners, [gxe.ExpectColumnValuesToBeUnique(column="customer_id")])
    if not outcome[0].success:
        claimed = owners[owners["customer_id"].duplicated(keep=False)]
        listed = ", ".join(
            f"{customer_id} ({', '.join(sorted(group['source_record_id']))})"
            for customer_id, group in claimed.groupby("customer_id")
        )
        failures.append(f"customer ids claimed by several source records: {listed}")
    return (not failures), (
        "; ".join(failures)
        or f"{len(frame)} rows: versions unique, one record per customer "
        f"({len(suite) + 1} expectations, {len(suite)} from {contract.label})"
    )


def judge_quarantine_share(
    records_read: int, quarantined_by_reason: dict[str, int], max_ratio: float
) -> tuple[bool, str]:
    quarantined = sum(quarantined_by_reason.values())
    if records_read == 0:
        return True, "empty batch"
    share = quarantined / records_read
    summary = f"{quarantined} of {records_read} records quarantined ({share:.0%}, allowed {max_ratio:.0%})"
    if share <= max_ratio:
        return True, summary
    reasons = ", ".join(f"{reason} ({count})" for reason, count in quarantined_by_reason.items())
    return False, f"{summary}: {reasons}"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset=STAGING_REFERENCES, blocking=True, description=DESCRIPTIONS[name]
        )
        for name in GATING_CHECKS
    ],
    pool=WAREHOUSE_POOL,
)
def staging_customers_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Judge every CRM and ERP batch staged since the last gate; record each verdict for core to respect.

    A failed batch stays out of core/customers, in this run and every later one, until someone fixes
    the cause and runs `integration-assets gate recheck <stream> <batch>`; a batch blocked by
    breaking schema drift is staged again, and judged anew, once a new contract version accepts it.
    """
    gate = GateRun(GATING_CHECKS, context.op_execution_context.run_id)
    with warehouse.warehouse().connect() as con:
        for stream in STREAMS:
            contract = load_contract(CONTRACTS[stream])
            max_ratio = contract.batch_rules.get(
                "max_quarantined_ratio", DEFAULT_MAX_QUARANTINED_RATIO
            )
            for batch_id in gates.pending_batches(con, stream, GATING_CHECKS):
                frame = con.execute(
                    f"SELECT {', '.join(JUDGED_COLUMNS)} FROM {STAGED_TABLE} "
                    "WHERE batch_id = ? AND system = ?",
                    [batch_id, SYSTEM_OF_STREAM[stream]],
                ).df()
                records_read = con.execute(
                    "SELECT records_read FROM staging.batches WHERE stream = ? AND batch_id = ?",
                    [stream, batch_id],
                ).fetchone()[0]
                reasons = dict(
                    con.execute(
                        "SELECT rule || ' on ' || field, count(*) FROM ops.quarantine "
                        "WHERE stream = ? AND batch_id = ? GROUP BY ALL ORDER BY 2 DESC, 1",
                        [stream, batch_id],
                    ).fetchall()
                )
                judged = {
                    CHECK_KEYS_UNIQUE: judge_keys(frame, contract),
                    CHECK_COUNT_BALANCE: count_balance_verdict(
                        con, STAGING_REFERENCES, balance_scope(stream, batch_id)
                    ),
                    CHECK_QUARANTINE_SHARE: judge_quarantine_share(
                        int(records_read), reasons, max_ratio
                    ),
                    CHECK_REQUIRED_FIELDS: judge_staged_batch_drift(
                        con, stream, batch_id, contract.name
                    ),
                }
                gate.record(con, stream, batch_id, judged, label=f"{stream}:{batch_id}")
    yield from gate.results(STAGING_REFERENCES, verdicts_batch_key="batch")
