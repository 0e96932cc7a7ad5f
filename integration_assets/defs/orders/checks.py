"""Blocking checks on staging/storefront/orders, run with Great Expectations, batch by batch."""

import statistics
from collections.abc import Callable

import dagster as dg
import pandas as pd

from integration_assets.contracts import Contract, load_contract
from integration_assets.defs.gate_run import GateRun, count_balance_verdict
from integration_assets.defs.orders.names import (
    CHECK_COUNT_BALANCE,
    CHECK_KEYS_AND_VALUES,
    CHECK_KNOWN_QUIRKS,
    CHECK_REQUIRED_FIELDS,
    CHECK_TOTALS,
    CHECK_VOLUME,
    GATING_CHECKS,
    STAGING_ORDERS,
    STREAM,
)
from integration_assets.defs.orders.staging import CONTRACT_NAME
from integration_assets.quality import gx_runner
from integration_assets.quality.contract_suite import contract_suite
from integration_assets.storage import gates
from integration_assets.storage.drift_events import batch_drift_events
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.schema_drift import DriftEvent, drift_verdict

CHECK_DESCRIPTIONS = {
    CHECK_REQUIRED_FIELDS: "Schema drift: no required contract field is removed, renamed or retyped in more than the allowed share of a batch (new fields are recorded and notified, not blocking).",
    CHECK_KEYS_AND_VALUES: "The staged rows keep the contract's rules (a Great Expectations suite generated from it): unique (order id, version) keys, required values, allowed values, ISO currencies.",
    CHECK_TOTALS: "Order totals add up (lines - discounts + tax + shipping = total) in all but the allowed share of a batch.",
    CHECK_VOLUME: "A batch is not wildly larger than the trailing median of earlier batches (peak days are 10x; the limit is wider).",
    CHECK_COUNT_BALANCE: "Every record read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_KNOWN_QUIRKS: "Known quirks of real payloads (subtotal without discounts, partial representations...) are counted, not fixed.",
}

BatchJudge = Callable[[str, pd.DataFrame], tuple[bool, str]]


# Contract field -> staged column, for the suite generated from the contract (money in minor units).
STAGED_COLUMNS_BY_FIELD = {
    "id": "order_id",
    "updated_at": "updated_at",
    "created_at": "created_at",
    "currency": "currency",
    "total_price": "total_price_minor",
    "subtotal_price": "subtotal_price_minor",
    "total_tax": "total_tax_minor",
    "total_discounts": "total_discounts_minor",
    "financial_status": "financial_status",
    "fulfillment_status": "fulfillment_status",
    "cancelled_at": "cancelled_at",
    "closed_at": "closed_at",
    "name": "name",
    "email": "email",
}
STAGED_KEY = ("order_id", "updated_at", "payload_hash")


def judge_schema_drift(events: list[DriftEvent], contract_label: str) -> tuple[bool, str]:
    """Blocked by breaking drift (a required field removed, renamed or retyped), named field by
    field with the contract and the version the batch was staged with; additive drift passes."""
    return drift_verdict(events, contract_label)


def judge_keys_and_values(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    """The contract's own rules on the staged rows, as a Great Expectations suite generated from it."""
    if frame.empty:
        return True, "no staged rows"
    suite = contract_suite(contract, STAGED_COLUMNS_BY_FIELD, STAGED_KEY)
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures)
        or f"{len(frame)} rows: keys unique, values allowed ({len(suite)} expectations from {contract.label})"
    )


def judge_totals(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    if frame.empty:
        return True, "no staged rows"
    tolerance = contract.batch_rules.get("totals_tolerance_minor", 1)
    ratio = contract.batch_rules.get("max_totals_mismatch_ratio", 0.1)
    gxe = gx_runner.expectations()
    suite = [
        gxe.ExpectColumnValuesToBeBetween(
            column="totals_mismatch_minor",
            min_value=-tolerance,
            max_value=tolerance,
            mostly=1 - ratio,
        )
    ]
    outcome = gx_runner.validate(frame, suite)[0]
    off = outcome.observed.get("unexpected_count", 0)
    summary = f"{off} of {len(frame)} orders do not add up (tolerance {tolerance} minor units, allowed share {ratio:.0%})"
    return outcome.success, summary


def judge_volume(count: int, history: list[int], contract: Contract) -> tuple[bool, str]:
    rules = contract.batch_rules
    if len(history) < rules.get("volume_min_history_batches", 3):
        return True, f"{count} records; too little history ({len(history)} batches) to judge volume"
    median = statistics.median(history)
    limit = max(
        rules.get("volume_min_rows_to_judge", 200), rules.get("volume_anomaly_factor", 30) * median
    )
    gxe = gx_runner.expectations()
    frame = pd.DataFrame({"n": range(count)})
    outcome = gx_runner.validate(
        frame, [gxe.ExpectTableRowCountToBeBetween(min_value=0, max_value=int(limit))]
    )[0]
    verdict = "within" if outcome.success else "ABOVE"
    return (
        outcome.success,
        f"{count} records, {verdict} the limit {int(limit)} (trailing median {median:g})",
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset=STAGING_ORDERS, blocking=True, description=CHECK_DESCRIPTIONS[name]
        )
        for name in (
            CHECK_REQUIRED_FIELDS,
            CHECK_KEYS_AND_VALUES,
            CHECK_TOTALS,
            CHECK_VOLUME,
            CHECK_COUNT_BALANCE,
        )
    ]
    + [
        dg.AssetCheckSpec(
            CHECK_KNOWN_QUIRKS,
            asset=STAGING_ORDERS,
            description=CHECK_DESCRIPTIONS[CHECK_KNOWN_QUIRKS],
        )
    ],
    pool=WAREHOUSE_POOL,
)
def staging_orders_gate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
    """Judge every batch staged since the last gate, record each verdict, and report per check."""
    contract = load_contract(CONTRACT_NAME)
    wh = warehouse.warehouse()
    gate = GateRun(CHECK_DESCRIPTIONS, context.op_execution_context.run_id)
    quirks: dict[str, int] = {}
    with wh.connect() as con:
        batches = gates.pending_batches(con, STREAM, GATING_CHECKS)
        for batch_id in batches:
            records_read, staged_version = con.execute(
                "SELECT records_read, contract_version FROM staging.batches WHERE stream = ? AND batch_id = ?",
                [STREAM, batch_id],
            ).fetchone()
            staged = con.execute(
                f"SELECT {', '.join(sorted({*STAGED_COLUMNS_BY_FIELD.values(), *STAGED_KEY}))}, "
                "totals_mismatch_minor, quality_flags "
                "FROM staging.storefront_orders WHERE batch_id = ?",
                [batch_id],
            ).df()
            drift = batch_drift_events(con, STREAM, batch_id, staged_version)
            history = [
                row[0]
                for row in con.execute(
                    # Polls only: a webhook batch (one order, raw/webhooks/...) would drag the median to 1.
                    "SELECT records_read FROM staging.batches WHERE stream = ? AND batch_id < ? AND records_read > 0 "
                    "AND raw_file LIKE '%/' || stream || '/' || batch_id || '.jsonl' ORDER BY batch_id DESC LIMIT 24",
                    [STREAM, batch_id],
                ).fetchall()
            ]
            judged = {
                CHECK_REQUIRED_FIELDS: judge_schema_drift(
                    drift, f"{contract.name} v{staged_version}"
                ),
                CHECK_KEYS_AND_VALUES: judge_keys_and_values(staged, contract),
                CHECK_TOTALS: judge_totals(staged, contract),
                CHECK_VOLUME: judge_volume(records_read, history, contract),
                CHECK_COUNT_BALANCE: count_balance_verdict(con, STAGING_ORDERS, batch_id),
            }
            gate.record(con, STREAM, batch_id, judged)
            for flags in staged["quality_flags"]:
                for flag in flags:
                    quirks[flag] = quirks.get(flag, 0) + 1

    yield from gate.results(
        STAGING_ORDERS,
        check_names=(
            CHECK_REQUIRED_FIELDS,
            CHECK_KEYS_AND_VALUES,
            CHECK_TOTALS,
            CHECK_VOLUME,
            CHECK_COUNT_BALANCE,
        ),
        metadata={"contract": contract.label},
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_KNOWN_QUIRKS,
        asset_key=STAGING_ORDERS,
        passed=not quirks,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quirks": dg.MetadataValue.json(quirks), "rows_flagged": sum(quirks.values())},
    )
