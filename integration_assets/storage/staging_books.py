"""The books every staged batch keeps, in the caller's transaction: its quarantined records, its row in
staging.batches, and its count balance (records read = staged + quarantined + duplicates)."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from integration_assets.contracts import Contract
from integration_assets.storage.balances import record_balance
from integration_assets.storage.raw_log import BatchManifest
from integration_assets.streams.balances import Balance
from integration_assets.streams.contract_rules import Violation


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
) -> Balance:
    now = datetime.now(UTC).replace(tzinfo=None)
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
    balance = Balance(
        "read_equals_staged_quarantined_duplicates",
        {"records_read": manifest.records},
        {"staged": int(staged), "quarantined": len(quarantined), "duplicates": int(duplicates)},
    )
    record_balance(con, run_id, asset_key, balance_scope or manifest.batch_id, balance)
    return balance
