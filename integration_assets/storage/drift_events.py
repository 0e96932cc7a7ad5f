"""ops.schema_drift: the drift events found in staged batches, and what has been notified.

Staging writes a batch's events in the batch's own transaction, under the contract version it
staged the batch with, so a re-staging under a newer version adds its own (usually none) and the
older ones stay as the history of what was seen. The gate reads the events of a batch's current
version; the alert sensor notifies each (stream, contract version, kind, field) once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from integration_assets.contracts import Contract
from integration_assets.streams.schema_drift import DriftEvent, drift_verdict
from integration_assets.streams.timestamps import utc_now_naive


def record_drift_events(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    batch_id: str,
    contract: Contract,
    events: Sequence[DriftEvent],
    run_id: str,
) -> None:
    if not events:
        return
    now = utc_now_naive()
    con.executemany(
        "INSERT OR REPLACE INTO ops.schema_drift VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [
            [
                stream,
                batch_id,
                contract.name,
                contract.version,
                event.kind,
                event.field,
                event.breaking,
                event.detail,
                event.records_affected,
                event.records_read,
                contract.owner,
                run_id,
                now,
            ]
            for event in events
        ],
    )


def batch_drift_events(
    con: duckdb.DuckDBPyConnection, stream: str, batch_id: str, contract_version: int
) -> list[DriftEvent]:
    """The events found in one batch when it was staged with `contract_version`, breaking first."""
    rows = con.execute(
        "SELECT kind, field, detail, records_affected, records_read FROM ops.schema_drift "
        "WHERE stream = ? AND batch_id = ? AND contract_version = ? "
        "ORDER BY NOT breaking, field, kind",
        [stream, batch_id, contract_version],
    ).fetchall()
    return [DriftEvent(*row) for row in rows]


def judge_staged_batch_drift(
    con: duckdb.DuckDBPyConnection, stream: str, batch_id: str, contract_name: str
) -> tuple[bool, str]:
    """The blocking drift check's verdict on one staged batch, from the events recorded when it was
    staged, under the contract version it was staged with (named in the message): fails on any
    breaking event (a required field removed, renamed or retyped), passes on additive drift."""
    row = con.execute(
        "SELECT contract_version FROM staging.batches WHERE stream = ? AND batch_id = ?",
        [stream, batch_id],
    ).fetchone()
    if row is None:
        return False, f"batch {batch_id} of {stream} is not staged: nothing to judge"
    version = int(row[0])
    events = batch_drift_events(con, stream, batch_id, version)
    return drift_verdict(events, f"{contract_name} v{version}")


@dataclass(frozen=True)
class DriftNotice:
    """One new (stream, contract version, kind, field), over every batch it was seen in."""

    stream: str
    contract: str
    contract_version: int
    kind: str
    field: str
    breaking: bool
    owner: str
    detail: str
    batches: int

    @property
    def key(self) -> str:
        return f"schema_drift:{self.stream}:v{self.contract_version}:{self.kind}:{self.field}"


def claim_drift_notices(con: duckdb.DuckDBPyConnection) -> list[DriftNotice]:
    """Mark every event not notified yet as notified, and return what to notify: one notice per
    (stream, contract version, kind, field) never notified before (the same new field in every
    later batch is not news). Call inside a transaction, and post after it commits."""
    rows = con.execute(
        """
        SELECT stream, contract, contract_version, kind, field, bool_or(breaking), any_value(owner),
               arg_min(detail, batch_id), count(*)
        FROM ops.schema_drift n
        WHERE notified_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM ops.schema_drift d
                          WHERE d.notified_at IS NOT NULL AND d.stream = n.stream
                            AND d.contract_version = n.contract_version
                            AND d.kind = n.kind AND d.field = n.field)
        GROUP BY ALL
        ORDER BY stream, contract_version, kind, field
        """
    ).fetchall()
    con.execute(
        "UPDATE ops.schema_drift SET notified_at = ? WHERE notified_at IS NULL", [utc_now_naive()]
    )
    return [DriftNotice(*row) for row in rows]


def open_breaking_drift(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(stream, batch_id, detail) of breaking drift still holding something back.

    API batches: not promoted, judged with the contract version they are staged under now (a newer
    version that re-staged them closes them). Warehouse files (`warehouse/<kind>`, batch = the landed
    file): the file is still in ops.file_quarantine (a newer version that read it again removes it).
    """
    return con.execute(
        """
        SELECT d.stream, d.batch_id, d.detail FROM ops.schema_drift d
        JOIN staging.batches b ON b.stream = d.stream AND b.batch_id = d.batch_id
                              AND b.contract_version = d.contract_version
        WHERE d.breaking AND d.batch_id NOT IN
              (SELECT batch_id FROM core.promoted_batches p WHERE p.stream = d.stream)
        UNION ALL
        SELECT d.stream, d.batch_id, d.detail FROM ops.schema_drift d
        WHERE d.breaking AND d.stream LIKE 'warehouse/%' AND EXISTS (
              SELECT 1 FROM ops.file_quarantine q
              WHERE q.raw_ref = 'raw/warehouse/files/' || d.batch_id)
        ORDER BY 1, 2, 3
        """
    ).fetchall()


def drift_by_kind(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, int]]:
    """(kind, events, distinct fields) over every recorded drift event."""
    return con.execute(
        "SELECT kind, count(*), count(DISTINCT stream || '/' || field) FROM ops.schema_drift "
        "GROUP BY kind ORDER BY kind"
    ).fetchall()
