"""ops/retention: apply the retention and compaction policy, and say what it kept and compressed."""

import dagster as dg

from integration_assets.defs.delivery.names import OWNER
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.retention import RetentionPolicy, apply_policy, folder_bytes
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.systems.audit import audit_dir

RETENTION = dg.AssetKey(["ops", "retention"])
DEFAULTS = RetentionPolicy()


class RetentionConfig(dg.Config):
    compress_raw_after_hours: float = DEFAULTS.compress_raw_after_hours
    archive_audit_after_hours: float = DEFAULTS.archive_audit_after_hours
    audit_rows_keep_days: float = DEFAULTS.audit_rows_keep_days


@dg.asset(
    key=RETENTION,
    group_name="maintenance",
    owners=[OWNER],
    kinds={"duckdb", "jsonl"},
    tags={"layer": "ops"},
    pool=WAREHOUSE_POOL,
)
def ops_retention(
    context: dg.AssetExecutionContext,
    config: RetentionConfig,
    raw_log: RawLogResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    """Raw batch files older than `compress_raw_after_hours` gzip-compressed in place (never deleted:
    replay starts from raw; the manifests' sha256 still prove the bytes); audit files loaded whole
    into ops.audit_log and older than `archive_audit_after_hours` moved to `audit/archive/`
    compressed; ops.audit_log rows older than `audit_rows_keep_days` pruned (the archive keeps them).
    """
    policy = RetentionPolicy(
        compress_raw_after_hours=config.compress_raw_after_hours,
        archive_audit_after_hours=config.archive_audit_after_hours,
        audit_rows_keep_days=config.audit_rows_keep_days,
    )
    log = raw_log.log()
    report = apply_policy(log, warehouse.warehouse(), audit_dir(), policy)
    if report.problems:
        raise dg.Failure(
            f"{len(report.problems)} raw files were left uncompressed: {'; '.join(report.problems[:3])}",
            metadata=report.as_metadata(),
        )
    context.log.info(
        f"compressed {report.raw_files_compressed} raw files, archived {report.audit_files_archived} audit files"
    )
    return dg.MaterializeResult(
        metadata={
            **report.as_metadata(),
            "raw_bytes_now": folder_bytes(log.root),
            "audit_bytes_now": folder_bytes(audit_dir()),
        }
    )
