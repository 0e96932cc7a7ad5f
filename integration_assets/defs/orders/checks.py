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
from integration_assets.storage import gates
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

CHECK_DESCRIPTIONS = {
    CHECK_REQUIRED_FIELDS: "Schema drift: no required contract field is missing or null in more than the allowed share of a batch.",
    CHECK_KEYS_AND_VALUES: "Staged rows have unique (order id, version) keys, ISO currencies and allowed financial statuses.",
    CHECK_TOTALS: "Order totals add up (lines - discounts + tax + shipping = total) in all but the allowed share of a batch.",
    CHECK_VOLUME: "A batch is not wildly larger than the trailing median of earlier batches (peak days are 10x; the limit is wider).",
    CHECK_COUNT_BALANCE: "Every record read is accounted for: read = staged + quarantined + duplicates.",
    CHECK_KNOWN_QUIRKS: "Known quirks of real payloads (subtotal without discounts, partial representations...) are counted, not fixed.",
}

BatchJudge = Callable[[str, pd.DataFrame], tuple[bool, str]]


def _raw_presence(log: RawLog, raw_file: str, contract: Contract) -> pd.DataFrame:
    manifest = next(m for m in log.batches("storefront", "orders") if str(m.path) == raw_file)
    rows = []
    for record in log.read_records(manifest):
        payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
        rows.append(
            {
                name: (None if payload.get(name) is None else True)
                for name in contract.required_fields
            }
        )
    return pd.DataFrame(rows, columns=list(contract.required_fields), dtype="object")


def judge_required_fields(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    if frame.empty:
        return True, "empty batch"
    ratio = contract.batch_rules.get("max_required_field_missing_ratio", 0.2)
    gxe = gx_runner.expectations()
    suite = [
        gxe.ExpectColumnValuesToNotBeNull(column=name, mostly=1 - ratio)
        for name in contract.required_fields
    ]
    failures = [o for o in gx_runner.validate(frame, suite) if not o.success]
    if not failures:
        return True, f"all {len(contract.required_fields)} required fields present"
    parts = [
        f"required field '{o.column}' missing or null in {o.observed['unexpected_count']} of {o.observed['element_count']} records"
        for o in failures
    ]
    return False, f"schema drift against contract {contract.label}: " + "; ".join(
        parts
    ) + f" (allowed: {ratio:.0%})"


def judge_keys_and_values(frame: pd.DataFrame, contract: Contract) -> tuple[bool, str]:
    if frame.empty:
        return True, "no staged rows"
    allowed = next(rule.allowed for rule in contract.fields if rule.name == "financial_status")
    gxe = gx_runner.expectations()
    suite = [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["order_id", "updated_at", "payload_hash"]),
        gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
        gxe.ExpectColumnValuesToBeInSet(column="financial_status", value_set=list(allowed)),
        gxe.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
    ]
    failures = [o.describe() for o in gx_runner.validate(frame, suite) if not o.success]
    return (not failures), (
        "; ".join(failures) or f"{len(frame)} rows: keys unique, values allowed"
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
def staging_orders_gate(
    context: dg.AssetCheckExecutionContext, raw_log: RawLogResource, warehouse: WarehouseResource
):
    """Judge every batch staged since the last gate, record each verdict, and report per check."""
    contract = load_contract(CONTRACT_NAME)
    log, wh = raw_log.log(), warehouse.warehouse()
    gate = GateRun(CHECK_DESCRIPTIONS, context.op_execution_context.run_id)
    quirks: dict[str, int] = {}
    with wh.connect() as con:
        batches = gates.pending_batches(con, STREAM, GATING_CHECKS)
        for batch_id in batches:
            raw_file, records_read = con.execute(
                "SELECT raw_file, records_read FROM staging.batches WHERE stream = ? AND batch_id = ?",
                [STREAM, batch_id],
            ).fetchone()
            staged = con.execute(
                "SELECT order_id, updated_at, payload_hash, currency, financial_status, totals_mismatch_minor, quality_flags "
                "FROM staging.storefront_orders WHERE batch_id = ?",
                [batch_id],
            ).df()
            history = [
                row[0]
                for row in con.execute(
                    "SELECT records_read FROM staging.batches WHERE stream = ? AND batch_id < ? AND records_read > 0 ORDER BY batch_id DESC LIMIT 24",
                    [STREAM, batch_id],
                ).fetchall()
            ]
            judged = {
                CHECK_REQUIRED_FIELDS: judge_required_fields(
                    _raw_presence(log, raw_file, contract), contract
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
