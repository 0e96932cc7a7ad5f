"""raw/warehouse/files and staging/warehouse/*: WMS CSV drops landed by hash, staged whole or quarantined whole."""

import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts.warehouse_files import FILENAME as CONTRACT_FILENAME
from integration_assets.contracts.warehouse_files import (
    FileKind,
    WarehouseFilesContract,
    load_warehouse_files_contract,
)
from integration_assets.defs.warehouse.names import (
    CHECK_COUNT_BALANCE,
    CHECK_FILES_ACCOUNTED,
    CHECK_SCHEMA,
    DROPS_STREAM,
    FILE_STATUS_DUPLICATE,
    FILE_STATUS_QUARANTINED,
    FILE_STATUS_STAGED,
    FILES_STREAM,
    GROUP,
    OWNER,
    POOL,
    RAW_FILES,
    SOURCE,
    STAGING_BY_KIND,
    STAGING_FILES,
    TABLE_BY_KIND,
)
from integration_assets.storage.balances import record_balance
from integration_assets.storage.drift_events import record_drift_events
from integration_assets.storage.raw_log import MANIFEST_SUFFIX, BatchManifest, RawLog, new_batch_id
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.streams.balances import Balance
from integration_assets.streams.timestamps import naive_utc, to_iso_utc, utc_now_naive
from integration_assets.streams.warehouse_files import (
    CONTRACT_RULES,
    FILE_KINDS,
    FileRejection,
    ParsedFile,
    kind_of,
    read_warehouse_file,
    sha256_of,
)
from integration_assets.systems.audit import audit_exchange

FILE_BALANCE = "rows_in_file_equal_staged_or_quarantined_whole"
RUN_DROPS_BALANCE = "files_dropped_equal_landed_plus_duplicates"
RUN_LANDED_BALANCE = "files_landed_equal_staged_plus_quarantined"
RUN_REREAD_BALANCE = "files_reread_under_new_contract_equal_staged_plus_quarantined"


# ---- raw: land each new inbox file as-is, one immutable batch per file --------------------------
def list_inbox(folder: Path) -> list[Path]:
    """Regular, non-hidden files (hidden ones are writers' temporary files), oldest drop first."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def land_file(log: RawLog, data: bytes, details: dict[str, Any]) -> BatchManifest:
    """The file's bytes exactly as dropped, then its manifest (the commit marker), both atomically."""
    batch_id = new_batch_id()
    folder = log.stream_dir(SOURCE, FILES_STREAM)
    temporary = folder / f".{batch_id}.csv.tmp"
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    final = folder / f"{batch_id}.csv"
    os.replace(temporary, final)
    manifest = {
        "source": SOURCE,
        "stream": FILES_STREAM,
        "batch_id": batch_id,
        "file": final.name,
        "records": 1,  # one file per batch
        "sha256": sha256_of(data),
        "bytes": len(data),
        "committed_at": datetime.now(UTC).isoformat(),
        "details": details,
    }
    manifest_tmp = folder / f".{batch_id}.manifest.tmp"
    manifest_tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    os.replace(manifest_tmp, folder / f"{batch_id}{MANIFEST_SUFFIX}")
    return log.read_manifest(folder / f"{batch_id}{MANIFEST_SUFFIX}")


@dataclass
class Sweep:
    inbox: Path
    files_in_inbox: int
    drops: list[dict[str, Any]]  # one per new file: outcome landed | duplicate
    drop_batch: BatchManifest | None

    def count(self, outcome: str) -> int:
        return sum(1 for drop in self.drops if drop["outcome"] == outcome)

    @property
    def balance(self) -> Balance:
        return Balance(
            RUN_DROPS_BALANCE,
            {"files_dropped": len(self.drops)},
            {"files_landed": self.count("landed"), "duplicate_drops": self.count("duplicate")},
        )


def sweep_inbox(inbox: Path, log: RawLog, run_id: str) -> Sweep:
    """Land every inbox file not seen before; a file whose sha256 is already landed is a duplicate drop.

    "Seen" is (name, sha256) in an earlier drop log, so a re-run, or a sensor that fires twice,
    lands nothing twice; the same name with new bytes (a re-export) is a new drop.
    """
    landed: dict[str, BatchManifest] = {}
    for manifest in log.batches(SOURCE, FILES_STREAM):
        landed.setdefault(manifest.sha256, manifest)  # the first landing of these bytes
    seen = {
        (record["name"], record["sha256"])
        for manifest in log.batches(SOURCE, DROPS_STREAM)
        for record in log.read_records(manifest)
    }
    files = list_inbox(inbox)
    drops: list[dict[str, Any]] = []
    for path in files:
        data = path.read_bytes()
        digest = sha256_of(data)
        if (path.name, digest) in seen:
            continue
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        first = landed.get(digest)
        if first is not None and first.details.get("original_name") == path.name:
            outcome = "landed"  # landed by a run that stopped before its drop log: not a duplicate
        elif first is not None:
            outcome = "duplicate"
        else:
            first = land_file(
                log,
                data,
                {
                    "original_name": path.name,
                    "size": len(data),
                    "inbox": str(inbox),
                    "modified_at": to_iso_utc(modified),
                    "landed_at": to_iso_utc(datetime.now(UTC)),
                    "run_id": run_id,
                },
            )
            landed[digest] = first
            outcome = "landed"
        drops.append(
            {
                "name": path.name,
                "sha256": digest,
                "size": len(data),
                "modified_at": to_iso_utc(modified),
                "seen_at": to_iso_utc(datetime.now(UTC)),
                "outcome": outcome,
                "raw_ref": first.raw_ref_prefix,
                "landed_batch_id": first.batch_id,
                "duplicate_of": first.details.get("original_name")
                if outcome == "duplicate"
                else None,
                "run_id": run_id,
            }
        )
        seen.add((path.name, digest))
    drop_batch = None
    if drops:
        writer = log.open_batch(SOURCE, DROPS_STREAM)
        try:
            for index, drop in enumerate(drops):
                writer.append({**drop, "batch_id": writer.batch_id, "record_index": index})
            drop_batch = writer.commit(
                {
                    "run_id": run_id,
                    "inbox": str(inbox),
                    "files_in_inbox": len(files),
                    "files_dropped": len(drops),
                    "files_landed": sum(1 for d in drops if d["outcome"] == "landed"),
                    "duplicate_drops": sum(1 for d in drops if d["outcome"] == "duplicate"),
                }
            )
        except BaseException:
            writer.abort()
            raise
    return Sweep(inbox, len(files), drops, drop_batch)


@dg.asset(
    key=RAW_FILES,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"csv"},
    tags={"layer": "raw", "source": "warehouse"},
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def raw_warehouse_files(
    context: dg.AssetExecutionContext,
    raw_log: RawLogResource,
    warehouse_inbox: WarehouseInboxResource,
) -> dg.MaterializeResult:
    """Every CSV file the WMS dropped into its inbox, landed byte for byte, once per content.

    Each new file becomes one immutable raw batch (`raw/warehouse/files/<batch_id>.csv` and a manifest
    with its sha256, original name, size, landed-at and run id). A file whose sha256 was already landed
    (the same export dropped again under another name) is recorded as a duplicate drop and not landed
    again. Every new file, landed or duplicate, is listed in this run's drop log
    (`raw/warehouse/drops`), which is what staging reads. Balance: files dropped = landed + duplicates.
    Safe to re-run: a file already seen (same name and bytes) is skipped.
    """
    inbox = warehouse_inbox.folder()
    started = time.monotonic()
    sweep = sweep_inbox(inbox, raw_log.log(), context.run_id)
    balance = sweep.balance
    seconds = time.monotonic() - started
    for drop in sweep.drops:  # the audit trail: every inbound file, as every inbound fetch
        audit_exchange(
            system="warehouse",
            direction="inbound",
            method="FILE",
            url=str(inbox / drop["name"]),
            status=drop["outcome"],
            duration_ms=1000 * seconds / max(1, len(sweep.drops)),
            attempt=1,
            run_id=context.run_id,
            response_text=f"sha256 {drop['sha256']}, {drop['size']} bytes"
            + (f", same bytes as {drop['duplicate_of']}" if drop.get("duplicate_of") else ""),
        )
    for drop in sweep.drops:
        if drop["outcome"] == "duplicate":
            context.log.warning(
                f"{drop['name']} has the same bytes as {drop['duplicate_of']} "
                f"(sha256 {drop['sha256'][:12]}...): recorded as a duplicate drop, not landed again"
            )
    return dg.MaterializeResult(
        metadata={
            "inbox": dg.MetadataValue.path(str(inbox)),
            "files_in_inbox": sweep.files_in_inbox,
            "files_dropped": len(sweep.drops),
            "files_landed": sweep.count("landed"),
            "duplicate_drops": sweep.count("duplicate"),
            "new_files": dg.MetadataValue.json(
                [
                    {key: d[key] for key in ("name", "sha256", "size", "outcome", "raw_ref")}
                    for d in sweep.drops
                ]
            ),
            "drop_log": sweep.drop_batch.batch_id if sweep.drop_batch else "none",
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )


# ---- staging: each landed file whole, in one transaction ------------------------------------------
FILE_KINDS_CONTRACT_LABEL = load_warehouse_files_contract().label  # as the assets were defined
_SQL_TYPES = {"text": "VARCHAR", "int": "BIGINT", "timestamp": "TIMESTAMP"}


def _described(column) -> str | None:
    parts = [column.description] if column.description else []
    if column.minimum is not None:
        parts.append(f"at least {column.minimum}")
    if column.allowed:
        parts.append(f"one of {list(column.allowed)}")
    if column.source:
        parts.append(f"sent by the WMS as '{column.source}'")
    return "; ".join(parts) or None


def column_schema(kind: str) -> dg.TableSchema:
    """The `dagster/column_schema` of a kind's staging asset, generated from the warehouse file
    contract: its columns in order with type, rule, nullability and PII tag, then the lineage ones."""
    columns = [
        dg.TableColumn(
            column.name,
            _SQL_TYPES[column.type],
            description=_described(column),
            constraints=dg.TableColumnConstraints(nullable=not column.required),
            tags={"pii": "true"} if column.pii else {},
        )
        for column in FILE_KINDS[kind].columns
    ]
    columns += [
        dg.TableColumn(
            "file_sha256", "VARCHAR", description="sha256 of the file the row came from"
        ),
        dg.TableColumn("line", "INTEGER", description="physical line in that file (header = 1)"),
        dg.TableColumn("raw_ref", "VARCHAR", description="raw/warehouse/files/<batch_id>#line=N"),
        dg.TableColumn("run_id", "VARCHAR"),
    ]
    return dg.TableSchema(columns=columns)


def files_to_reread(con, contract: WarehouseFilesContract) -> set[tuple[str, str]]:
    """(name, sha256) of files quarantined under an older version of the contract for a rule a
    contract decides (a header, a type, a value): a new version may accept them, so they are read
    again, once per version (their staging row then carries the version they were read under)."""
    return set(
        con.execute(
            "SELECT f.name, f.sha256 FROM staging.warehouse_files f "
            "JOIN ops.file_quarantine q ON q.file_name = f.name AND q.sha256 = f.sha256 "
            "WHERE f.status = ? AND f.contract = ? AND f.contract_version < ? "
            "AND q.rule IN (SELECT unnest(?))",
            [FILE_STATUS_QUARANTINED, contract.name, contract.version, list(CONTRACT_RULES)],
        ).fetchall()
    )


def drop_logs_to_read(
    con, log: RawLog, also: Collection[tuple[str, str]] = ()
) -> list[BatchManifest]:
    """The drop logs some record of which has no staging row yet, or that list a file in `also`
    ((name, sha256)), oldest first. A drop log whose every file has its row (counted by drop_ref)
    is not read again, so a run reads the new drops, not the whole history of them."""
    rows_per_log = dict(
        con.execute(
            "SELECT split_part(drop_ref, '#', 1), count(*) FROM staging.warehouse_files GROUP BY 1"
        ).fetchall()
    )
    also_logs = (
        {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT split_part(drop_ref, '#', 1) FROM staging.warehouse_files "
                "WHERE list_contains(?, name || '/' || sha256)",
                [[f"{name}/{digest}" for name, digest in also]],
            ).fetchall()
        }
        if also
        else set()
    )
    return [
        manifest
        for manifest in log.batches(SOURCE, DROPS_STREAM)
        if rows_per_log.get(manifest.raw_ref_prefix, 0) < manifest.records
        or manifest.raw_ref_prefix in also_logs
    ]


def pending_drops(
    wh, log: RawLog, contract: WarehouseFilesContract | None = None
) -> list[tuple[BatchManifest, int, dict[str, Any]]]:
    """Drop-log records whose file has no row in staging.warehouse_files yet, oldest first, then
    (with `contract`) the quarantined files a newer contract version may accept."""
    with wh.connect() as con:
        done = set(con.execute("SELECT name, sha256 FROM staging.warehouse_files").fetchall())
        reread = files_to_reread(con, contract) if contract else set()
        pending = []
        for manifest in drop_logs_to_read(con, log, reread):
            for index, record in enumerate(log.read_records(manifest)):
                file = (record["name"], record["sha256"])
                if file not in done or (file in reread and record["outcome"] == "landed"):
                    pending.append((manifest, index, record))
                    done.add(file)
                    reread.discard(file)
        return pending


def _landed_manifest(log: RawLog, batch_id: str) -> BatchManifest:
    return log.read_manifest(log.stream_dir(SOURCE, FILES_STREAM) / f"{batch_id}{MANIFEST_SUFFIX}")


_PANDAS_TYPES = {"text": "object", "int": "Int64", "timestamp": "datetime64[us]"}
_LINEAGE_SQL_TYPES = {
    "file_sha256": "VARCHAR",
    "line": "INTEGER",
    "raw_ref": "VARCHAR",
    "run_id": "VARCHAR",
}


def staged_rows_frame(
    kind: FileKind, rows: Sequence[dict[str, Any]], digest: str, raw_ref: str, run_id: str
) -> pd.DataFrame:
    """A parsed file's rows as one frame, column by column: the kind's columns typed (integers
    nullable, timestamps naive UTC as DuckDB holds them), then the lineage columns."""
    frame = pd.DataFrame(
        {
            column.name: pd.Series(
                [
                    naive_utc(row[column.name]) if column.type == "timestamp" else row[column.name]
                    for row in rows
                ],
                dtype=_PANDAS_TYPES[column.type],
            )
            for column in kind.columns
        }
    )
    frame["file_sha256"] = digest
    frame["line"] = pd.Series([row["line"] for row in rows], dtype="Int64")
    frame["raw_ref"] = [f"{raw_ref}#line={row['line']}" for row in rows]
    frame["run_id"] = run_id
    return frame


def insert_staged_rows(con, kind: FileKind, frame: pd.DataFrame) -> None:
    """A file's rows into its kind's table in one set-based INSERT (a per-row executemany cost
    ~10 ms a row); a row already there (same file and line) is left as it is."""
    table = TABLE_BY_KIND[kind.kind]
    sql_types = {
        **{column.name: _SQL_TYPES[column.type] for column in kind.columns},
        **_LINEAGE_SQL_TYPES,
    }
    con.register("incoming_file_rows", frame)
    try:
        con.execute(
            f"INSERT OR IGNORE INTO {table} ({', '.join(frame.columns)}) "
            f"SELECT {', '.join(f'CAST({c} AS {sql_types[c]})' for c in frame.columns)} "
            "FROM incoming_file_rows"
        )
    finally:
        con.unregister("incoming_file_rows")


_FILE_COLUMNS = (
    "name, sha256, kind, size, rows, status, raw_ref, drop_ref, duplicate_of, reason, run_id, "
    "staged_at, contract, contract_version"
)
_INSERT_FILE = (
    f"INSERT INTO staging.warehouse_files ({_FILE_COLUMNS}) VALUES ({', '.join('?' * 14)})"
)


def drift_stream(kind: str) -> str:
    """The stream name drift of a file kind is recorded under in ops.schema_drift."""
    return f"{SOURCE}/{kind}"


def stage_drop(
    wh,
    log: RawLog,
    drop_manifest: BatchManifest,
    index: int,
    drop: dict[str, Any],
    run_id: str,
    contract: WarehouseFilesContract | None = None,
) -> dict[str, Any]:
    """Stage one dropped file in a transaction of its own under `contract` (default: the one in
    force): its rows, or the whole file into quarantine; its schema drift into ops.schema_drift. A
    file quarantined under an older contract version is read again from raw and replaces that verdict."""
    contract = contract or load_warehouse_files_contract()
    now = utc_now_naive()
    drop_ref = drop_manifest.raw_ref(index)
    name, digest = drop["name"], drop["sha256"]
    outcome: dict[str, Any] = {"name": name, "sha256": digest, "kind": None, "rows": 0}
    with wh.transaction() as con:
        if drop["outcome"] == "duplicate":
            kind = FILE_KINDS.get(kind_of(name) or "")
            con.execute(
                _INSERT_FILE,
                [
                    name,
                    digest,
                    kind.kind if kind else None,
                    drop["size"],
                    0,
                    FILE_STATUS_DUPLICATE,
                    drop["raw_ref"],
                    drop_ref,
                    drop["duplicate_of"],
                    f"same bytes (sha256) as {drop['duplicate_of']}, landed as {drop['raw_ref']}",
                    run_id,
                    now,
                    None,  # never read: its bytes were read as the file it duplicates
                    None,
                ],
            )
            return {**outcome, "kind": kind.kind if kind else None, "status": FILE_STATUS_DUPLICATE}
        # A file read before (quarantined under an older contract version): its verdict is replaced.
        reread = con.execute(
            "DELETE FROM staging.warehouse_files WHERE name = ? AND sha256 = ? RETURNING contract_version",
            [name, digest],
        ).fetchall()
        con.execute(
            "DELETE FROM ops.file_quarantine WHERE file_name = ? AND sha256 = ?", [name, digest]
        )
        landed = _landed_manifest(log, drop["landed_batch_id"])
        data = log.read_bytes(landed)
        if sha256_of(data) != digest:
            result: ParsedFile | FileRejection = FileRejection(
                name,
                kind_of(name),
                digest,
                len(data),
                "raw_hash_mismatch",
                f"the raw copy {landed.raw_ref_prefix} no longer has sha256 {digest}: "
                "the raw log was changed after landing; restore it from backup",
            )
        else:
            result = read_warehouse_file(name, data, contract)
        raw_ref = landed.raw_ref_prefix
        if result.kind is not None:
            record_drift_events(
                con, drift_stream(result.kind), landed.batch_id, contract, result.drift, run_id
            )
        if isinstance(result, ParsedFile):
            kind = FILE_KINDS[result.kind]
            table = TABLE_BY_KIND[result.kind]
            if result.rows:
                insert_staged_rows(
                    con, kind, staged_rows_frame(kind, result.rows, digest, raw_ref, run_id)
                )
            staged = con.execute(
                f"SELECT count(*) FROM {table} WHERE file_sha256 = ?", [digest]
            ).fetchone()[0]
            status, rows, reason = FILE_STATUS_STAGED, len(result.rows), None
            balance = Balance(
                FILE_BALANCE,
                {"rows_in_file": len(result.rows)},
                {"rows_staged": int(staged), "rows_in_quarantined_file": 0},
            )
        else:
            status, rows, reason = FILE_STATUS_QUARANTINED, result.data_lines, result.reason
            con.execute(
                "INSERT OR REPLACE INTO ops.file_quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    name,
                    digest,
                    result.kind,
                    result.rule,
                    result.reason,
                    result.line,
                    result.column,
                    result.data_lines,
                    raw_ref,
                    run_id,
                    now,
                ],
            )
            balance = Balance(
                FILE_BALANCE,
                {"rows_in_file": result.data_lines},
                {"rows_staged": 0, "rows_in_quarantined_file": result.data_lines},
            )
        con.execute(
            _INSERT_FILE,
            [
                name,
                digest,
                result.kind,
                len(data),
                rows,
                status,
                raw_ref,
                drop_ref,
                None,
                reason,
                run_id,
                now,
                contract.name,
                contract.version,
            ],
        )
        asset_key = STAGING_BY_KIND[result.kind] if result.kind else STAGING_FILES
        record_balance(con, run_id, asset_key.to_user_string(), name, balance)
        return {
            **outcome,
            "kind": result.kind,
            "status": status,
            "rows": rows,
            "reason": reason,
            "rule": None if isinstance(result, ParsedFile) else result.rule,
            "balance": balance,
            "contract": contract.label,
            "reread_from_version": reread[0][0] if reread else None,
            "drift": [
                {"kind": event.kind, "column": event.field, "breaking": event.breaking}
                for event in result.drift
            ],
            "drift_details": [event.detail for event in result.drift],
        }


def run_balances(outcomes: list[dict[str, Any]]) -> list[Balance]:
    """Per run: new drops = landed + duplicates; landed = staged + quarantined; and, when a new
    contract version made quarantined files be read again, re-read = staged + quarantined."""
    rereads = [o for o in outcomes if o.get("reread_from_version") is not None]
    drops = [o for o in outcomes if o.get("reread_from_version") is None]

    def count(status: str, among: list[dict[str, Any]] = drops) -> int:
        return sum(1 for o in among if o["status"] == status)

    landed = count(FILE_STATUS_STAGED) + count(FILE_STATUS_QUARANTINED)
    reread_balance = Balance(
        RUN_REREAD_BALANCE,
        {"files_reread": len(rereads)},
        {
            "files_staged": count(FILE_STATUS_STAGED, rereads),
            "files_quarantined": count(FILE_STATUS_QUARANTINED, rereads),
        },
    )
    return ([reread_balance] if rereads else []) + [
        Balance(
            RUN_DROPS_BALANCE,
            {"files_dropped": len(drops)},
            {"files_landed": landed, "duplicate_drops": count(FILE_STATUS_DUPLICATE)},
        ),
        Balance(
            RUN_LANDED_BALANCE,
            {"files_landed": landed},
            {
                "files_staged": count(FILE_STATUS_STAGED),
                "files_quarantined": count(FILE_STATUS_QUARANTINED),
            },
        ),
    ]


@dg.multi_asset(
    name="staging_warehouse_files",
    specs=[
        dg.AssetSpec(
            STAGING_FILES,
            deps=[RAW_FILES],
            group_name=GROUP,
            owners=[OWNER],
            kinds={"csv", "duckdb"},
            tags={"layer": "staging", "source": "warehouse"},
            description=(
                "One row per file the WMS dropped (`staging.warehouse_files`): staged, quarantined "
                "whole (reason in `ops.file_quarantine`) or a duplicate drop of a file already "
                "landed. Balances: files dropped = landed + duplicate drops; files landed = staged "
                "+ quarantined."
            ),
        ),
        *[
            dg.AssetSpec(
                key,
                deps=[RAW_FILES],
                group_name=GROUP,
                owners=[OWNER],
                kinds={"csv", "duckdb"},
                tags={"layer": "staging", "source": "warehouse"},
                description=(
                    f"WMS {FILE_KINDS[kind].description} (`{TABLE_BY_KIND[kind]}`), typed: integers, "
                    "timestamps in UTC, each row with its file's sha256, line and raw reference. "
                    "Only whole files are staged: a file with one bad row is quarantined with the "
                    "line and column that broke it, and none of its rows appear here."
                ),
                metadata={
                    "dagster/column_schema": column_schema(kind),
                    "contract": f"contracts/{CONTRACT_FILENAME} ({FILE_KINDS_CONTRACT_LABEL})",
                    "key": ", ".join(FILE_KINDS[kind].key),
                    "file_prefix": FILE_KINDS[kind].prefix,
                    "table": TABLE_BY_KIND[kind],
                },
            )
            for kind, key in STAGING_BY_KIND.items()
        ],
    ],
    pool=POOL,
    can_subset=False,
)
def staging_warehouse_files(
    context: dg.AssetExecutionContext, raw_log: RawLogResource, warehouse: WarehouseResource
):
    """Stage every landed WMS file not staged yet, one transaction per file (see the asset
    descriptions), under the warehouse file contract in force; files quarantined under an older
    version of it are read again from raw."""
    log, wh = raw_log.log(), warehouse.warehouse()
    contract = load_warehouse_files_contract()
    # One open database for the step (opening the file costs more than staging a small file), still
    # one transaction per file.
    with wh.session():
        outcomes = [
            stage_drop(wh, log, manifest, index, drop, context.run_id, contract)
            for manifest, index, drop in pending_drops(wh, log, contract)
        ]
        balances = run_balances(outcomes)
        with wh.transaction() as con:
            for balance in balances:
                record_balance(con, context.run_id, STAGING_FILES.to_user_string(), "run", balance)
    for outcome in outcomes:
        if outcome.get("reread_from_version") is not None:
            context.log.info(
                f"read {outcome['name']} again under {outcome['contract']} (quarantined under "
                f"v{outcome['reread_from_version']}): {outcome['status']}"
            )
        if outcome["status"] == FILE_STATUS_QUARANTINED:
            context.log.warning(f"quarantined {outcome['name']} whole: {outcome['reason']}")
        elif outcome.get("drift_details"):
            context.log.warning(
                f"staged {outcome['name']} with schema drift (recorded in ops.schema_drift, the "
                f"owner is notified): {'; '.join(outcome['drift_details'])}"
            )
    rereads = [o for o in outcomes if o.get("reread_from_version") is not None]
    yield dg.MaterializeResult(
        asset_key=STAGING_FILES,
        metadata={
            "contract": contract.label,
            "files_dropped": len(outcomes) - len(rereads),
            "files_reread_under_new_contract": len(rereads),
            **{
                f"files_{status}": sum(1 for o in outcomes if o["status"] == status)
                for status in (FILE_STATUS_STAGED, FILE_STATUS_QUARANTINED, FILE_STATUS_DUPLICATE)
            },
            "quarantined": dg.MetadataValue.json(
                [
                    {"file": o["name"], "rule": o["rule"], "reason": o["reason"]}
                    for o in outcomes
                    if o["status"] == FILE_STATUS_QUARANTINED
                ]
            ),
            "schema_drift": dg.MetadataValue.json(
                [{"file": o["name"], **event} for o in outcomes for event in o.get("drift", [])]
            ),
            "balance": "; ".join(b.as_text() for b in balances),
            "balance_holds": all(b.holds for b in balances),
        },
    )
    for kind, key in STAGING_BY_KIND.items():
        mine = [o for o in outcomes if o["kind"] == kind]
        staged = [o for o in mine if o["status"] == FILE_STATUS_STAGED]
        quarantined = [o for o in mine if o["status"] == FILE_STATUS_QUARANTINED]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "contract": contract.label,
                "files_staged": len(staged),
                "files_quarantined": len(quarantined),
                "duplicate_drops": sum(1 for o in mine if o["status"] == FILE_STATUS_DUPLICATE),
                "rows_staged": sum(o["rows"] for o in staged),
                "files": ", ".join(o["name"] for o in staged) or "none",
                "quarantine_reasons": dg.MetadataValue.json(
                    {o["name"]: o["reason"] for o in quarantined}
                ),
                "balances_hold": all(o["balance"].holds for o in staged + quarantined),
                "table": TABLE_BY_KIND[kind],
            },
        )


# ---- blocking checks -----------------------------------------------------------------------------
_DUCKDB_TYPES = {"text": {"VARCHAR"}, "int": {"BIGINT", "INTEGER"}, "timestamp": {"TIMESTAMP"}}


def judge_schema(con, kind: str, run_id: str) -> tuple[bool, str]:
    """The kind's table has every column of the file kind with its type; this run's rows have no null required field."""
    table = TABLE_BY_KIND[kind]
    schema, name = table.split(".")
    found = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    )
    problems = []
    for column in FILE_KINDS[kind].columns:
        if column.name not in found:
            problems.append(f"{table} has no column {column.name}")
        elif found[column.name] not in _DUCKDB_TYPES[column.type]:
            problems.append(
                f"{table}.{column.name} is {found[column.name]}, expected {column.type}"
            )
    required = [c.name for c in FILE_KINDS[kind].columns if c.required and c.name in found]
    if required:  # one pass over this run's rows for every required column
        nulls = con.execute(
            f"SELECT {', '.join(f'count(*) FILTER (WHERE {name} IS NULL)' for name in required)} "
            f"FROM {table} WHERE run_id = ?",
            [run_id],
        ).fetchone()
        problems += [
            f"{count} row(s) staged in this run have no {name}"
            for name, count in zip(required, nulls, strict=True)
            if count
        ]
    if problems:
        return False, "; ".join(problems)
    return True, f"{table} matches the {kind} file columns ({', '.join(FILE_KINDS[kind].header)})"


def judge_kind_balance(con, kind: str, run_id: str) -> tuple[bool, str, int]:
    """Every file of this kind seen in this run is staged (rows = rows in file) or quarantined with a reason."""
    files = con.execute(
        "SELECT f.name, f.status, q.reason, b.holds, b.text FROM staging.warehouse_files f "
        "LEFT JOIN ops.file_quarantine q ON q.file_name = f.name AND q.sha256 = f.sha256 "
        "LEFT JOIN ops.count_balances b ON b.run_id = f.run_id AND b.asset_key = ? "
        "  AND b.scope = f.name AND b.equation = ? "
        "WHERE f.run_id = ? AND f.kind = ? AND f.status <> ?",
        [STAGING_BY_KIND[kind].to_user_string(), FILE_BALANCE, run_id, kind, FILE_STATUS_DUPLICATE],
    ).fetchall()
    problems = []
    for name, status, reason, holds, text in files:
        if holds is None:
            problems.append(f"{name}: no count balance recorded")
        elif not holds:
            problems.append(f"{name}: {text}")
        if status == FILE_STATUS_QUARANTINED and not reason:
            problems.append(f"{name}: quarantined without a reason in ops.file_quarantine")
    if problems:
        return False, "; ".join(problems), len(files)
    return (
        True,
        f"{len(files)} file(s) accounted for: rows staged, or the whole file quarantined",
        len(files),
    )


def judge_files_accounted(con, log: RawLog, run_id: str) -> tuple[bool, str]:
    """This run's run-level balances hold, and every file in the drop log has its staging row."""
    rows = con.execute(
        "SELECT holds, text FROM ops.count_balances WHERE run_id = ? AND asset_key = ? AND scope = 'run'",
        [run_id, STAGING_FILES.to_user_string()],
    ).fetchall()
    problems = [text for holds, text in rows if not holds]
    done = set(con.execute("SELECT name, sha256 FROM staging.warehouse_files").fetchall())
    missing = [
        record["name"]
        for manifest in drop_logs_to_read(con, log)
        for record in log.read_records(manifest)
        if (record["name"], record["sha256"]) not in done
    ]
    if missing:
        problems.append(
            f"dropped but never staged, quarantined or marked duplicate: {', '.join(missing)}"
        )
    if problems:
        return False, "; ".join(problems)
    return True, "; ".join(text for _, text in rows) or "no files in this run"


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_FILES_ACCOUNTED,
            asset=STAGING_FILES,
            blocking=True,
            description="Files dropped = landed + duplicate drops; landed = staged + quarantined; "
            "every file in the raw drop log has its row in staging.warehouse_files.",
        ),
        *[
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=True,
                description=description,
            )
            for key in STAGING_BY_KIND.values()
            for name, description in (
                (
                    CHECK_COUNT_BALANCE,
                    "No file is silently ignored: each file of this run has its rows staged "
                    "(rows in file = rows staged) or is quarantined whole with a reason.",
                ),
                (
                    CHECK_SCHEMA,
                    "The staging table has the file kind's columns and types, and no row of this "
                    "run lacks a required field.",
                ),
            )
        ],
    ],
    pool=POOL,
)
def staging_warehouse_gate(
    context: dg.AssetCheckExecutionContext, raw_log: RawLogResource, warehouse: WarehouseResource
):
    """Judge what this run staged from the WMS inbox."""
    run_id = context.op_execution_context.run_id
    with warehouse.warehouse().connect() as con:
        passed, reason = judge_files_accounted(con, raw_log.log(), run_id)
        yield dg.AssetCheckResult(
            check_name=CHECK_FILES_ACCOUNTED,
            asset_key=STAGING_FILES,
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=reason,
        )
        for kind, key in STAGING_BY_KIND.items():
            passed, reason, files = judge_kind_balance(con, kind, run_id)
            yield dg.AssetCheckResult(
                check_name=CHECK_COUNT_BALANCE,
                asset_key=key,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=reason,
                metadata={"files_judged": files},
            )
            passed, reason = judge_schema(con, kind, run_id)
            yield dg.AssetCheckResult(
                check_name=CHECK_SCHEMA,
                asset_key=key,
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=reason,
            )
