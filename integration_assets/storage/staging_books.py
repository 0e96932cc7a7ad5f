"""The books every staged batch keeps, in the caller's transaction: its quarantined records, its row in
staging.batches, and its count balance (records read = staged + quarantined + duplicates); and how a
batch blocked under an older contract version is found and staged again under the new one (shared by
every stream whose staging observes schema drift: orders, payments, products)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import duckdb
import pandas as pd

from integration_assets.contracts import Contract
from integration_assets.storage import gates
from integration_assets.storage.balances import record_balance
from integration_assets.storage.drift_events import record_drift_events
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.warehouse import Warehouse
from integration_assets.streams.balances import Balance
from integration_assets.streams.contract_rules import Violation
from integration_assets.streams.schema_drift import DriftEvent
from integration_assets.streams.timestamps import utc_now_naive
from integration_assets.webhooks.routing import batches_staged_as

T = TypeVar("T")


def record_batch_outcome(
    con: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    asset_key: str,
    manifest: BatchManifest,
    contract: Contract,
    run_id: str,
    staged: int,
    quarantined: list[tuple[int, str | None, Violation]],
    duplicates: int,
    quality_flagged: int = 0,
    balance_scope: str | None = None,
    drift: Sequence[DriftEvent] = (),
) -> Balance:
    """A staged batch's books, in the caller's transaction: its quarantined records, its
    staging.batches row (with the contract version), its schema drift events and its count balance."""
    now = utc_now_naive()
    if quarantined:
        con.executemany(
            "INSERT OR REPLACE INTO ops.quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    stream,
                    manifest.batch_id,
                    index,
                    manifest.raw_ref(index),
                    key,
                    violation.rule,
                    violation.field,
                    violation.message,
                    contract.label,
                    run_id,
                    now,
                ]
                for index, key, violation in quarantined
            ],
        )
    con.execute(
        "INSERT INTO staging.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            stream,
            manifest.batch_id,
            str(manifest.path),
            manifest.sha256,
            manifest.records,
            int(staged),
            len(quarantined),
            int(duplicates),
            int(quality_flagged),
            contract.version,
            run_id,
            now,
        ],
    )
    record_drift_events(con, stream, manifest.batch_id, contract, drift, run_id)
    balance = staged_balance(manifest.records, int(staged), len(quarantined), int(duplicates))
    record_balance(con, run_id, asset_key, balance_scope or manifest.batch_id, balance)
    return balance


def _is_unique_key(con: duckdb.DuckDBPyConnection, table: str, key_columns: Sequence[str]) -> bool:
    """Is `key_columns` (in any order) the primary key or a unique constraint of `table`?"""
    schema, _, name = table.rpartition(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ? "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
            "AND list_sort(constraint_column_names) = list_sort(?::VARCHAR[])",
            [schema or "main", name, list(key_columns)],
        ).fetchone()[0]
    )


def insert_new_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    columns: Sequence[str],
    key_columns: Sequence[str],
) -> int:
    """Insert the rows of `frame` that `table` does not hold yet (the same `key_columns`: a record
    version and its payload hash); returns how many were new. The rest are exact re-reads, which
    the caller counts as duplicates, so re-staging a batch never doubles a row.

    When the key is the table's primary key (every staging table), each incoming row is looked up
    in its index, so the cost follows the batch, not the table; otherwise an anti-join reads the
    table's keys."""
    con.register("incoming", frame)
    try:
        if _is_unique_key(con, table, key_columns):
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {', '.join(columns)} FROM incoming "
                f"ON CONFLICT ({', '.join(key_columns)}) DO NOTHING"
            )
        else:
            same_key = " AND ".join(f"s.{column} = i.{column}" for column in key_columns)
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {', '.join('i.' + column for column in columns)} FROM incoming i "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} s WHERE {same_key})"
            )
        new_rows = con.execute(sql).fetchone()[0]
    finally:
        con.unregister("incoming")
    return int(new_rows)


STAGED_COUNTS = ("records_read", "staged", "quarantined", "duplicates")


def staged_balance(records_read: int, staged: int, quarantined: int, duplicates: int) -> Balance:
    """Every record read is accounted for: read = staged + quarantined + duplicates."""
    return Balance(
        "read_equals_staged_quarantined_duplicates",
        {"records_read": records_read},
        {"staged": staged, "quarantined": quarantined, "duplicates": duplicates},
    )


def staging_run_books(
    results: Sequence[Mapping[str, Any]],
    reasons_key: str,
    count_keys: Sequence[str] = STAGED_COUNTS,
) -> tuple[dict[str, int], Counter[str], Balance]:
    """A staging run's books over the batches it staged (each batch's counts, as its stager
    returned them): the totals of `count_keys`, the quarantine reasons under `reasons_key` added
    up, and the run's balance, so the asset's metadata shows that nothing was lost in the run.
    """
    totals = {key: sum(result[key] for result in results) for key in count_keys}
    reasons: Counter[str] = sum((result[reasons_key] for result in results), Counter())
    balance = staged_balance(
        totals["records_read"], totals["staged"], totals["quarantined"], totals["duplicates"]
    )
    return totals, reasons, balance


def forget_staged_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    asset_key: str,
    table: str,
    batch_id: str,
    balance_scope: str | None = None,
    row_filter: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Remove everything staging and the gate wrote for one batch (its staged rows in `table`, its
    quarantined records, its staging.batches row, its count balance and its verdicts), in the
    caller's transaction, so that it can be staged again under a new contract version. Its raw
    batch is untouched, and its drift events stay as the record of what the older version saw.

    `balance_scope`: the scope its balance was recorded under (the batch id unless given);
    `row_filter`: further column = value conditions on its rows in `table` (a table shared by
    several streams, such as the payments objects, keyed by resource)."""
    row_filter = dict(row_filter or {})
    row_conditions = "".join(f" AND {column} = ?" for column in row_filter)
    statements = {
        "staged_rows": (
            f"DELETE FROM {table} WHERE batch_id = ?{row_conditions}",
            [batch_id, *row_filter.values()],
        ),
        "quarantined": (
            "DELETE FROM ops.quarantine WHERE stream = ? AND batch_id = ?",
            [stream, batch_id],
        ),
        "batches": (
            "DELETE FROM staging.batches WHERE stream = ? AND batch_id = ?",
            [stream, batch_id],
        ),
        "balances": (
            "DELETE FROM ops.count_balances WHERE asset_key = ? AND scope = ?",
            [asset_key, balance_scope or batch_id],
        ),
        "verdicts": (
            "DELETE FROM ops.batch_gates WHERE stream = ? AND batch_id = ?",
            [stream, batch_id],
        ),
    }
    # Each count is fetched before the next statement runs (DuckDB keeps one result per connection).
    return {
        name: int(con.execute(sql, params).fetchone()[0])
        for name, (sql, params) in statements.items()
    }


def batches_to_restage(
    warehouse: Warehouse, log: RawLog, stream: str, contract: Contract
) -> list[BatchManifest]:
    """The raw batches of `stream` (polled, or webhook deliveries routed to it) that a gating check
    blocked, not promoted, staged under an older contract version than `contract`'s (a reviewed new
    version may accept what blocked them), oldest first."""
    with warehouse.connect() as con:
        blocked = set(gates.blocked_under_older_contract(con, stream, contract.version))
    if not blocked:
        return []
    return [m for m in batches_staged_as(log, stream) if m.batch_id in blocked]


def restage_batch(
    warehouse: Warehouse,
    stage_in: Callable[[duckdb.DuckDBPyConnection], T],
    *,
    stream: str,
    asset_key: str,
    table: str,
    batch_id: str,
    balance_scope: str | None = None,
    row_filter: Mapping[str, Any] | None = None,
) -> T:
    """Stage a blocked batch again under a newer contract version, in one transaction: what the
    older version staged, quarantined, balanced and judged is forgotten (`forget_staged_batch`),
    then `stage_in(con)` stages it afresh, so nothing is counted twice and the gate judges it anew."""
    with warehouse.transaction() as con:
        forget_staged_batch(
            con,
            stream=stream,
            asset_key=asset_key,
            table=table,
            batch_id=batch_id,
            balance_scope=balance_scope,
            row_filter=row_filter,
        )
        return stage_in(con)
