"""Load the clients' audit files into ops.audit_log, resuming each file where the last load stopped.

Audit files are append-only (integration_assets/systems/audit.py), so a file's first N bytes never
change: ops.audit_files remembers N per file and a load reads only what was appended since. Only whole
lines are loaded; a line being written at this moment waits for the next load. A line that is not
valid JSON is counted and skipped with its file and offset named, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import orjson
import pandas as pd

from integration_assets.streams.timestamps import utc_now_naive

COLUMNS = (
    "audit_id",
    "at",
    "system",
    "direction",
    "method",
    "endpoint",
    "idempotency_key",
    "request_hash",
    "status",
    "response_short",
    "duration_ms",
    "attempt",
    "run_id",
    "notices",  # a JSON object, absent from lines written before sources' notices were recorded
)


@dataclass
class AuditLoad:
    files_seen: int = 0
    lines_read: int = 0
    lines_loaded: int = 0
    already_loaded: int = (
        0  # same audit id seen before (a reload after a crash between insert and offset)
    )
    unreadable: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int]:
        return {
            "audit_files": self.files_seen,
            "audit_lines_read": self.lines_read,
            "audit_lines_loaded": self.lines_loaded,
            "audit_lines_already_loaded": self.already_loaded,
            "audit_lines_unreadable": len(self.unreadable),
        }


def load_audit_files(con: duckdb.DuckDBPyConnection, folder: Path) -> AuditLoad:
    """Load what was appended to every audit file under `folder` since the last load (in the caller's transaction)."""
    report = AuditLoad()
    if not folder.exists():
        return report
    offsets = dict(con.execute("SELECT audit_file, bytes_loaded FROM ops.audit_files").fetchall())
    for path in sorted(folder.glob("*.jsonl")):
        report.files_seen += 1
        start = int(offsets.get(path.name, 0))
        with path.open("rb") as handle:
            handle.seek(start)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            continue
        rows = []
        position = start
        for line in complete.splitlines(keepends=True):
            report.lines_read += 1
            try:
                record = orjson.loads(line)
                row = [record.get(column) for column in COLUMNS]
                notices = record.get("notices")
                row[-1] = None if notices is None else orjson.dumps(notices).decode()
                rows.append(row + [path.name])
            except orjson.JSONDecodeError:
                report.unreadable.append(f"{path.name}@{position}")
            position += len(line)
        if rows:
            frame = pd.DataFrame(rows, columns=[*COLUMNS, "audit_file"])
            frame["occurred_at"] = pd.to_datetime(frame.pop("at"), utc=True, format="ISO8601")
            frame["occurred_at"] = frame["occurred_at"].dt.tz_localize(None)
            con.register("audit_rows", frame)
            inserted = con.execute(
                "INSERT OR IGNORE INTO ops.audit_log (audit_id, occurred_at, system, direction, method, "
                "endpoint, idempotency_key, request_hash, status, response_short, duration_ms, attempt, "
                "run_id, audit_file, notices) SELECT audit_id, occurred_at, system, direction, method, "
                "endpoint, idempotency_key, request_hash, status, response_short, duration_ms, attempt, "
                "run_id, audit_file, notices::JSON FROM audit_rows RETURNING audit_id"
            ).fetchall()
            con.unregister("audit_rows")
            report.lines_loaded += len(inserted)
            report.already_loaded += len(rows) - len(inserted)
        con.execute(
            "INSERT OR REPLACE INTO ops.audit_files VALUES (?, ?, ?, ?)",
            [
                path.name,
                start + len(complete),
                len(rows),
                utc_now_naive(),
            ],
        )
    return report
