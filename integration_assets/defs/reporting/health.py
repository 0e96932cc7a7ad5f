"""reporting/integration_health: the success metrics per stream and per target, each promise judged.

The asset measures (integration_assets/health/measures.py), judges against contracts/health.yaml
(health/judge.py) and keeps the table reporting.integration_health (one row per metric and scope,
replaced whole; in PostgreSQL too when REPORTING_DATABASE_URL is set). Each metric has its own check
on the asset: it fails when any stream or target misses the target, and its description and metadata
name each broken promise and its owner (a stream's contract owner; a target's system owner in the
ownership registry), so the UI shows whose promise is broken and `integration-assets owners` lists
it under that owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import dagster as dg
import duckdb

from integration_assets.contracts.health import HealthTargets, load_health_targets
from integration_assets.contracts.ownership import (
    OwnershipRegistry,
    UnknownOwnershipEntry,
    load_ownership,
)
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.delivery.names import AUDIT_LOG
from integration_assets.defs.reporting.exceptions import UPSTREAM as EXCEPTION_SOURCES
from integration_assets.health.judge import (
    UNJUDGED,
    Promise,
    broken_by_metric,
    check_description,
    judge,
    promise_order,
)
from integration_assets.health.measures import measure_all, stream_system
from integration_assets.health.metrics import (
    CHECK_OWNER_TEXTS_METADATA,
    CHECK_OWNERS_METADATA,
    METRICS,
    SOURCE,
    format_value,
)
from integration_assets.owners import stream_owners
from integration_assets.storage.reporting_postgres import DOUBLE, TEXT, TIMESTAMP, Mart
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL, table_exists
from integration_assets.streams.timestamps import utc_now_naive

INTEGRATION_HEALTH = dg.AssetKey(["reporting", "integration_health"])
HEALTH_TABLE = "reporting.integration_health"
OWNER = "integrations@example.com"  # the registry's integrations (contracts/ownership.yaml)
HEALTH_COLUMNS = (
    ("metric", TEXT),
    ("scope", TEXT),
    ("value", DOUBLE),
    ("target", TEXT),
    ("status", TEXT),
    ("owner", TEXT),
    ("detail", TEXT),
    ("measured_at", TIMESTAMP),
)
CREATE_TABLE_SQL = f"""
CREATE OR REPLACE TABLE {HEALTH_TABLE} (
    metric VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    value DOUBLE,
    target VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    owner VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    measured_at TIMESTAMP NOT NULL,
    PRIMARY KEY (metric, scope)
)
"""


def scope_owner(scope: str, streams: Mapping[str, str], registry: OwnershipRegistry) -> str:
    """The email of who answers for a scope: a stream's contract owner; for a stream in no contract
    (payments/payout_transactions) and for a target, the owner of its system in the registry; ""
    when the registry cannot place it (shown as "nobody")."""
    kind, _, name = scope.partition(":")
    if kind == SOURCE and name in streams:
        return streams[name]
    try:
        return registry.system_owner(stream_system(name) if kind == SOURCE else name).email
    except UnknownOwnershipEntry:
        return ""


def measure_health(
    con: duckdb.DuckDBPyConnection,
    streams: Mapping[str, str],
    registry: OwnershipRegistry,
    targets: HealthTargets,
    now: datetime,
) -> list[Promise]:
    """Every promise, measured on `con` as of `now` (naive UTC), judged, and owned."""
    measures = measure_all(con, streams, now, targets.window_hours)
    owners = {m.scope: scope_owner(m.scope, streams, registry) for m in measures}
    return judge(measures, targets, owners)


def write_health_table(
    con: duckdb.DuckDBPyConnection, promises: list[Promise], now: datetime
) -> Mart:
    """Replace reporting.integration_health with the promises (inside the caller's transaction)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS reporting")
    con.execute(CREATE_TABLE_SQL)
    rows = [
        (p.metric, p.scope, p.value, p.target, p.status, p.owner, p.detail, now) for p in promises
    ]
    if rows:
        con.executemany(f"INSERT INTO {HEALTH_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return Mart(HEALTH_TABLE, HEALTH_COLUMNS, ("metric", "scope"), rows)


def health_check_results(promises: list[Promise]) -> list[dg.AssetCheckResult]:
    """One result per metric: passed unless a stream or target misses its target; the metadata names
    the broken promises' owners (`owners`, comma-separated emails) for the owners view."""
    results = []
    for metric, broken in broken_by_metric(promises).items():
        judged = sum(1 for p in promises if p.metric == metric and p.status != UNJUDGED)
        owners = sorted({p.owner or "nobody" for p in broken})
        by_owner = {
            owner: check_description(
                metric, [p for p in broken if (p.owner or "nobody") == owner], judged
            )
            for owner in owners
        }
        results.append(
            dg.AssetCheckResult(
                asset_key=INTEGRATION_HEALTH,
                check_name=metric,
                passed=not broken,
                severity=dg.AssetCheckSeverity.ERROR,
                description=check_description(metric, broken, judged),
                metadata={
                    "judged": int(judged),
                    "broken": int(len(broken)),
                    CHECK_OWNERS_METADATA: ", ".join(owners),
                    CHECK_OWNER_TEXTS_METADATA: dg.MetadataValue.json(by_owner),
                    "broken_promises": dg.MetadataValue.md(
                        "\n".join(f"- {p.text()} (owner {p.owner or 'nobody'})" for p in broken)
                        or "none"
                    ),
                },
            )
        )
    return results


def promises_markdown(promises: list[Promise]) -> str:
    lines = ["| scope | metric | value | target | status | owner |", "|---|---|---|---|---|---|"]
    for p in promises:
        lines.append(
            f"| {p.scope} | {p.metric} | {format_value(METRICS[p.metric], p.value)} | {p.target} "
            f"| {'**BROKEN**' if p.broken else p.status} | {p.owner or 'nobody'} |"
        )
    return "\n".join(lines)


@dg.asset(
    key=INTEGRATION_HEALTH,
    deps=[AUDIT_LOG, *EXCEPTION_SOURCES],
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb", "postgres"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
    check_specs=[
        dg.AssetCheckSpec(
            name=metric.name,
            asset=INTEGRATION_HEALTH,
            automation_condition=CHECK_WITH_ITS_ASSET,
            description=f"The {metric.name} promise ({metric.bound} target in contracts/health.yaml) "
            "is kept by every stream and target it applies to; a miss names the owner.",
        )
        for metric in METRICS.values()
    ],
)
def integration_health(
    warehouse: WarehouseResource, reporting_database: ReportingDatabaseResource
) -> dg.MaterializeResult:
    """The integration's success metrics per source stream and per target: freshness, end-to-end
    latency, error and quarantine rates, dead letters open and their age, manual interventions,
    reconciliation match rate and records per run, each judged against its target in
    contracts/health.yaml and owned by the stream's or target's owner. One check per metric fails
    when a promise is broken, naming the owner. Table: reporting.integration_health."""
    targets = load_health_targets()
    registry = load_ownership()
    now = utc_now_naive()
    with warehouse.warehouse().transaction() as con:
        promises = measure_health(con, stream_owners(), registry, targets, now)
        mart = write_health_table(con, promises, now)
    published = reporting_database.publish(mart)  # after the DuckDB commit
    broken = [p for p in promises if p.broken]
    judged = [p for p in promises if p.status != UNJUDGED]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(len(promises)),
            "health_version": int(targets.version),
            "window_hours": int(targets.window_hours),
            "promises_judged": int(len(judged)),
            "promises_broken": int(len(broken)),
            "promises": dg.MetadataValue.md(promises_markdown(promises)),
            **published,
        },
        check_results=health_check_results(promises),
    )


def read_health_table(con: duckdb.DuckDBPyConnection) -> tuple[list[Promise], datetime | None]:
    """The promises as reporting/integration_health last measured them, and when; none yet: ([], None)."""
    if not table_exists(con, HEALTH_TABLE):
        return [], None
    rows = con.execute(
        f"SELECT metric, scope, value, target, status, owner, detail, measured_at FROM {HEALTH_TABLE}"
    ).fetchall()
    promises = [
        Promise(metric, scope, value, target_text, status, owner, detail)
        for metric, scope, value, target_text, status, owner, detail, _ in rows
        if metric in METRICS
    ]
    return sorted(promises, key=promise_order), max((row[7] for row in rows), default=None)
