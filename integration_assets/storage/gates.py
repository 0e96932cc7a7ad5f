"""The staging gate: per-batch verdicts of the blocking checks, kept in ops.batch_gates.

Dagster stops downstream steps when a blocking check fails in the same run. Keeping each batch's
verdict in the warehouse as well means a batch that failed a gate is never promoted by a later run
either, until someone re-checks it (`integration-assets gate recheck STREAM BATCH`) after fixing the cause.
Every stream (storefront orders, payments objects, ...) uses the same table, keyed by its name.
"""

from __future__ import annotations

import duckdb

from integration_assets.streams.timestamps import utc_now_naive


def pending_batches(
    con: duckdb.DuckDBPyConnection, stream: str, gating_checks: tuple[str, ...]
) -> list[str]:
    """Staged batches that have not yet received a verdict from every gating check."""
    rows = con.execute(
        """
        SELECT b.batch_id FROM staging.batches b
        WHERE b.stream = ? AND (SELECT count(*) FROM ops.batch_gates g
                                WHERE g.stream = b.stream AND g.batch_id = b.batch_id
                                  AND list_contains(?, g.check_name)) < ?
        ORDER BY b.batch_id
        """,
        [stream, list(gating_checks), len(gating_checks)],
    ).fetchall()
    return [row[0] for row in rows]


def record_verdict(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    batch_id: str,
    check_name: str,
    passed: bool,
    reason: str,
    run_id: str,
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO ops.batch_gates VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            stream,
            batch_id,
            check_name,
            passed,
            reason,
            run_id,
            utc_now_naive(),
        ],
    )


def promotable_batches(
    con: duckdb.DuckDBPyConnection, stream: str, gating_checks: tuple[str, ...]
) -> list[str]:
    """Batches every gating check passed, not promoted yet, oldest first."""
    rows = con.execute(
        """
        SELECT g.batch_id FROM ops.batch_gates g
        WHERE g.stream = ? AND list_contains(?, g.check_name) AND g.passed
          AND g.batch_id NOT IN (SELECT batch_id FROM core.promoted_batches WHERE stream = ?)
        GROUP BY g.batch_id HAVING count(*) = ?
        ORDER BY g.batch_id
        """,
        [stream, list(gating_checks), stream, len(gating_checks)],
    ).fetchall()
    return [row[0] for row in rows]


def blocked_batches(con: duckdb.DuckDBPyConnection, stream: str) -> list[tuple[str, str, str]]:
    """(batch_id, check_name, reason) of every failed verdict on a batch not promoted."""
    return con.execute(
        """
        SELECT batch_id, check_name, reason FROM ops.batch_gates
        WHERE stream = ? AND NOT passed
          AND batch_id NOT IN (SELECT batch_id FROM core.promoted_batches WHERE stream = ?)
        ORDER BY batch_id, check_name
        """,
        [stream, stream],
    ).fetchall()


def clear_verdicts(con: duckdb.DuckDBPyConnection, stream: str, batch_id: str) -> int:
    """Forget a batch's verdicts so the next check run judges it again (after a contract fix)."""
    return con.execute(
        "DELETE FROM ops.batch_gates WHERE stream = ? AND batch_id = ?", [stream, batch_id]
    ).fetchone()[0]


def passed_batches_sql(stream_pattern: str, gating_checks: tuple[str, ...]) -> str:
    """SQL selecting (stream, batch_id) of every batch whose streams match and that passed every gating check.

    For core assets that are rebuilt whole from staging: they read only what the gate let through.
    """
    checks = ", ".join(f"'{name}'" for name in gating_checks)
    return f"""
        SELECT stream, batch_id FROM ops.batch_gates
        WHERE stream LIKE '{stream_pattern}' AND check_name IN ({checks}) AND passed
        GROUP BY stream, batch_id HAVING count(*) = {len(gating_checks)}
    """


def blocked_under_older_contract(
    con: duckdb.DuckDBPyConnection, stream: str, contract_version: int
) -> list[str]:
    """Batches a gating check failed, not promoted, staged under a contract version older than
    `contract_version`: a new version may accept what blocked them, so they are staged again."""
    rows = con.execute(
        """
        SELECT b.batch_id FROM staging.batches b
        WHERE b.stream = ? AND b.contract_version < ?
          AND b.batch_id NOT IN (SELECT batch_id FROM core.promoted_batches WHERE stream = ?)
          AND EXISTS (SELECT 1 FROM ops.batch_gates g
                      WHERE g.stream = b.stream AND g.batch_id = b.batch_id AND NOT g.passed)
        ORDER BY b.batch_id
        """,
        [stream, contract_version, stream],
    ).fetchall()
    return [row[0] for row in rows]
