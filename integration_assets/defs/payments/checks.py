"""Blocking checks on staging/payments/objects, batch by batch, with Great Expectations."""

import dagster as dg

from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.defs.payments.names import (
    CHECK_COUNT_BALANCE,
    CHECK_KEYS_AND_VALUES,
    GATING_CHECKS,
    STAGING_PAYMENTS,
)
from integration_assets.quality import gx_runner
from integration_assets.storage import gates
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

DESCRIPTIONS = {
    CHECK_COUNT_BALANCE: "Every record read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_KEYS_AND_VALUES: "Object versions are unique, amounts are integers in minor units, currencies lowercase ISO.",
}


def judge_keys_and_values(frame) -> tuple[bool, str]:
    if frame.empty:
        return True, "no staged rows"
    gxe = gx_runner.expectations()
    suite = [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["resource", "object_id", "payload_hash"]),
        gxe.ExpectColumnValuesToNotBeNull(column="object_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[a-z]{3}$"),
        gxe.ExpectColumnValuesToNotBeNull(column="amount_minor"),
    ]
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures) or f"{len(frame)} rows: keys unique, values allowed"
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
    """Judge every payments batch staged since the last gate; record each verdict for core to respect."""
    gate = GateRun(GATING_CHECKS, context.op_execution_context.run_id)
    with warehouse.warehouse().connect() as con:
        streams = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT stream FROM staging.batches WHERE stream LIKE 'payments/%'"
            ).fetchall()
        ]
        for stream in streams:
            for batch_id in gates.pending_batches(con, stream, GATING_CHECKS):
                frame = con.execute(
                    "SELECT resource, object_id, payload_hash, currency, amount_minor FROM staging.payments_objects WHERE batch_id = ?",
                    [batch_id],
                ).df()
                judged = {
                    CHECK_KEYS_AND_VALUES: judge_keys_and_values(frame),
                    CHECK_COUNT_BALANCE: count_balance_verdict(
                        con, STAGING_PAYMENTS, f"%:{batch_id}", scope_like=True
                    ),
                }
                gate.record(con, stream, batch_id, judged, label=f"{stream}:{batch_id}")
    yield from gate.results(STAGING_PAYMENTS, verdicts_batch_key=None)
