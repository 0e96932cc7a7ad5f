"""The retention and compaction policy: what is kept, for how long, and in what form.

- **Raw** is the history every replay starts from: never deleted. A batch file older than
  `compress_raw_after_hours` is gzip-compressed in place (`<batch>.jsonl` -> `<batch>.jsonl.gz`; a
  landed warehouse file `<batch>.csv` -> `.csv.gz`). The manifest is untouched: its sha256 still
  proves the bytes, which every reader gets back unchanged (`raw_log.open_batch_file`). The
  compressed copy is written beside the file, synced, checked against the manifest's sha256, and only
  then is the plain file removed: a crash at any point leaves one readable copy.
- **The audit trail**: a client's audit file (one per run and process) that ops/audit_log has
  loaded to its last byte, older than `archive_audit_after_hours`, is gzip-compressed into
  `<audit dir>/archive/` (the lines stay readable with `zcat`); its rows stay in `ops.audit_log`
  for `audit_rows_keep_days` (13 months: a year of finance questions plus a month), after which
  only the archive holds them.
- **Dagster's own storage** (runs, event logs, ticks) is Dagster's: `dagster.yaml` sets tick
  retention; see docs/reliability.md.

Pure file work plus two small warehouse statements; `defs/ops` runs it daily as `ops/retention`.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from integration_assets.storage.raw_log import (
    COMPRESSED_SUFFIX,
    MANIFEST_SUFFIX,
    RawLog,
    compressed_path,
    sha256_of_stream,
)
from integration_assets.storage.warehouse import Warehouse

ARCHIVE_DIR = "archive"


@dataclass(frozen=True)
class RetentionPolicy:
    compress_raw_after_hours: float = 48.0
    archive_audit_after_hours: float = 24.0
    audit_rows_keep_days: float = 400.0


@dataclass
class RetentionReport:
    raw_files_compressed: int = 0
    raw_bytes_before: int = 0
    raw_bytes_after: int = 0
    audit_files_archived: int = 0
    audit_bytes_before: int = 0
    audit_bytes_after: int = 0
    audit_rows_pruned: int = 0
    problems: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int]:
        return {
            "raw_files_compressed": self.raw_files_compressed,
            "raw_bytes_before": self.raw_bytes_before,
            "raw_bytes_after": self.raw_bytes_after,
            "audit_files_archived": self.audit_files_archived,
            "audit_bytes_before": self.audit_bytes_before,
            "audit_bytes_after": self.audit_bytes_after,
            "audit_rows_pruned": self.audit_rows_pruned,
            "problems": len(self.problems),
        }


def compress_raw(log: RawLog, older_than: datetime, report: RetentionReport) -> None:
    """Compress every committed batch file (of any source and stream) committed before `older_than`."""
    for manifest_path in sorted(log.root.rglob(f"*{MANIFEST_SUFFIX}")):
        manifest = log.read_manifest(manifest_path)
        plain = manifest.path
        if not plain.exists() or _committed_at(manifest_path) >= older_than:
            continue
        target = compressed_path(plain)
        before = plain.stat().st_size
        _write_compressed(plain, target)
        with gzip.open(target, "rb") as handle:
            intact = sha256_of_stream(handle) == manifest.sha256
        if not intact:
            target.unlink()
            report.problems.append(
                f"{plain}: its bytes do not match the manifest's sha256; left as it is"
            )
            continue
        plain.unlink()
        report.raw_files_compressed += 1
        report.raw_bytes_before += before
        report.raw_bytes_after += target.stat().st_size


def archive_audit(
    con: duckdb.DuckDBPyConnection, folder: Path, older_than: datetime, report: RetentionReport
) -> None:
    """Move each audit file ops/audit_log has loaded whole, last written before `older_than`, into
    the archive folder, gzip-compressed. A file still being appended (not loaded to its end) stays."""
    if not folder.exists():
        return
    loaded = dict(con.execute("SELECT audit_file, bytes_loaded FROM ops.audit_files").fetchall())
    archive = folder / ARCHIVE_DIR
    for path in sorted(folder.glob("*.jsonl")):
        size = path.stat().st_size
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if int(loaded.get(path.name, -1)) != size or written >= older_than:
            continue
        archive.mkdir(exist_ok=True)
        target = archive / (path.name + COMPRESSED_SUFFIX)
        _write_compressed(path, target)
        path.unlink()
        report.audit_files_archived += 1
        report.audit_bytes_before += size
        report.audit_bytes_after += target.stat().st_size


def prune_audit_rows(
    con: duckdb.DuckDBPyConnection, folder: Path, older_than: datetime, report: RetentionReport
) -> None:
    """Delete ops.audit_log rows older than `older_than` whose file is in the archive (which keeps them)."""
    archived = [
        path.name.removesuffix(COMPRESSED_SUFFIX)
        for path in (folder / ARCHIVE_DIR).glob("*.jsonl.gz")
    ]
    if not archived:
        return
    report.audit_rows_pruned = len(
        con.execute(
            "DELETE FROM ops.audit_log WHERE occurred_at < ? AND list_contains(?, audit_file) "
            "RETURNING audit_id",
            [older_than.astimezone(UTC).replace(tzinfo=None), archived],
        ).fetchall()
    )


def apply_policy(
    log: RawLog,
    warehouse: Warehouse,
    audit_folder: Path,
    policy: RetentionPolicy,
    now: datetime | None = None,
) -> RetentionReport:
    """The whole policy; raw is compressed before the warehouse is opened (it needs no lock)."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    compress_raw(log, now - timedelta(hours=policy.compress_raw_after_hours), report)
    with warehouse.transaction() as con:
        archive_audit(
            con, audit_folder, now - timedelta(hours=policy.archive_audit_after_hours), report
        )
        prune_audit_rows(
            con, audit_folder, now - timedelta(days=policy.audit_rows_keep_days), report
        )
    return report


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (0 when it does not exist)."""
    if not folder.exists():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _committed_at(manifest_path: Path) -> datetime:
    return datetime.fromtimestamp(manifest_path.stat().st_mtime, UTC)


def _write_compressed(source: Path, target: Path) -> None:
    """`source` gzip-compressed to `target`, atomically and synced before anyone relies on it."""
    temporary = target.with_name(f".{target.name}.tmp")
    with source.open("rb") as plain, temporary.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as compressed:
            shutil.copyfileobj(plain, compressed, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(temporary, target)
