"""Blocking checks on staging/payments/objects, batch by batch, with Great Expectations suites
generated from each object type's contract, and schema drift judged against that contract."""

import dagster as dg
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.defs.payments.names import (
    CHECK_COUNT_BALANCE,
    CHECK_KEYS_AND_VALUES,
    CHECK_REQUIRED_FIELDS,
    CONTRACTS,
    GATING_CHECKS,
    STAGING_PAYMENTS,
    STREAMS,
)
from integration_assets.defs.payments.staging import STAGED_TABLE, balance_scope
from integration_assets.quality import gx_runner
from integration_assets.quality.contract_suite import contract_suite
from integration_assets.storage import gates
from integration_assets.storage.drift_events import judge_staged_batch_drift
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

DESCRIPTIONS = {
    CHECK_COUNT_BALANCE: "Every record read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_KEYS_AND_VALUES: "The staged objects keep their contract's rules (a Great Expectations suite generated "
    "from it): unique object versions, required values, allowed statuses, id prefixes, lowercase ISO currencies.",
    CHECK_REQUIRED_FIELDS: "Schema drift: no required field of the object type's contract is removed, renamed or "
    "retyped in more than the allowed share of a batch (new fields are recorded and notified, not blocking).",
}

# Contract field -> staged column (every Stripe object type is staged in the same table).
STAGED_COLUMNS_BY_FIELD = {
    "id": "object_id",
    "amount": "amount_minor",
    "currency": "currency",
    "status": "status",
    "created": "created",
}
STAGED_KEY = ("resource", "object_id", "payload_hash")
RESOURCE_OF_STREAM = {stream: resource for resource, stream in STREAMS.items()}


def judge_keys_and_values(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    """The contract's own rules on one object type's staged rows, as a generated GX suite."""
    if frame.empty:
        return True, "no staged rows"
    suite = contract_suite(contract, STAGED_COLUMNS_BY_FIELD, STAGED_KEY)
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures)
        or f"{len(frame)} rows: keys unique, values allowed ({len(suite)} expectations from {contract.label})"
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset=STAGING_PAYMENTS, blocking=True, description=DESCRIPTIONS[name]
        )
        for name in GATING_CHECKS
    ],
    pool=WAREHOUSE_POOL,
)
def staging_payments_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Judge every payments batch staged since the last gate, each against its object type's
    contract; record each verdict for core to respect."""
    gate = GateRun(GATING_CHECKS, context.op_execution_context.run_id)
    with warehouse.warehouse().connect() as con:
        streams = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT stream FROM staging.batches WHERE stream LIKE 'payments/%' ORDER BY stream"
            ).fetchall()
        ]
        for stream in streams:
            resource = RESOURCE_OF_STREAM[stream]
            contract = load_contract(CONTRACTS[resource])
            for batch_id in gates.pending_batches(con, stream, GATING_CHECKS):
                frame = con.execute(
                    f"SELECT {', '.join(sorted({*STAGED_COLUMNS_BY_FIELD.values(), *STAGED_KEY}))} "
                    f"FROM {STAGED_TABLE} WHERE batch_id = ? AND resource = ?",
                    [batch_id, resource],
                ).df()
                judged = {
                    CHECK_KEYS_AND_VALUES: judge_keys_and_values(frame, contract),
                    CHECK_COUNT_BALANCE: count_balance_verdict(
                        con, STAGING_PAYMENTS, balance_scope(resource, batch_id)
                    ),
                    CHECK_REQUIRED_FIELDS: judge_staged_batch_drift(
                        con, stream, batch_id, contract.name
                    ),
                }
                gate.record(con, stream, batch_id, judged, label=f"{stream}:{batch_id}")
    yield from gate.results(STAGING_PAYMENTS, verdicts_batch_key=None)
