"""reporting/orders_by_hour: an hourly-partitioned mart, each run replacing a window of hours.

Per UTC hour of creation and currency: orders created, how many of them are cancelled, their gross
sales and what was refunded on them (integer minor units), as core/orders_current says now. The
figures follow orders_per_day's (a day's 24 hours add up to its created-day figures), so a later
cancellation or refund shows in the hour the order was created once that hour is built again.

One run covers a range of hours (`BackfillPolicy.single_run()`): a one-day backfill is one run and
one DELETE + INSERT of the day's rows in one DuckDB transaction; PostgreSQL (when configured) gets the
same window replaced, deleting nothing outside it. Re-running any range gives the same table.

In its own group, `reporting_hourly`: the unpartitioned hourly job (`storefront_hourly_sync`) selects
the `reporting` group and cannot carry a partitioned asset.
"""

import warnings
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from integration_assets.defs.orders.names import ORDERS_CURRENT
from integration_assets.storage.balances import record_balance
from integration_assets.storage.reporting_postgres import PartitionWindow, mart_from_duckdb
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance

ORDERS_BY_HOUR = dg.AssetKey(["reporting", "orders_by_hour"])
ORDERS_BY_HOUR_TABLE = "reporting.orders_by_hour"
ORDERS_BY_HOUR_KEY = ("hour", "currency")
GROUP = "reporting_hourly"
OWNER = "finance-ops@example.com"  # the registry's finance (contracts/ownership.yaml)
JOB_NAME = "orders_by_hour_job"
SCHEDULE_NAME = "orders_by_hour_schedule"
# Hours before the first one are in no partition: the sandbox scenarios start on 2026-11-20 (the real
# Shopify fixture orders, created in 2008 and 2015, are in orders_per_day only).
FIRST_HOUR = "2026-11-01-00:00"
PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
# Each scheduled run rebuilds the last day of hours, so cancellations and refunds of the last 24
# hours' orders reach their hour; older hours change only when backfilled.
REFRESH_HOURS = 24

HOURLY_PARTITIONS = dg.HourlyPartitionsDefinition(
    start_date=FIRST_HOUR, timezone="UTC", end_offset=0
)

CREATE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS reporting.orders_by_hour (
    hour TIMESTAMP NOT NULL,
    currency VARCHAR NOT NULL,
    orders_created BIGINT NOT NULL,
    orders_cancelled BIGINT NOT NULL,
    gross_sales_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    PRIMARY KEY (hour, currency)
)
"""

# As orders_per_day: gross sales leave cancelled orders out; refunds are counted on every order.
INSERT_WINDOW_SQL = """
INSERT INTO reporting.orders_by_hour
SELECT
    date_trunc('hour', created_at) AS hour,
    currency,
    count(*) AS orders_created,
    count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS orders_cancelled,
    CAST(coalesce(sum(total_price_minor) FILTER (WHERE cancelled_at IS NULL), 0) AS BIGINT) AS gross_sales_minor,
    CAST(coalesce(sum(refunded_minor), 0) AS BIGINT) AS refunded_minor
FROM core.orders_current
WHERE created_at >= ? AND created_at < ?
GROUP BY ALL
ORDER BY hour, currency
"""


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def replace_hours(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict[str, int]:
    """Replace the rows of hours [start, end) (naive UTC) from core.orders_current, inside the
    caller's transaction. Returns the counts: rows deleted and written, orders in the window and in
    the rows written (equal, or an order was lost on the way)."""
    con.execute(CREATE_TABLE_SQL)
    deleted = con.execute(
        "DELETE FROM reporting.orders_by_hour WHERE hour >= ? AND hour < ?", [start, end]
    ).fetchone()[0]
    written = con.execute(INSERT_WINDOW_SQL, [start, end]).fetchone()[0]
    in_core, hours_with_orders, in_mart = con.execute(
        "SELECT (SELECT count(*) FROM core.orders_current WHERE created_at >= $1 AND created_at < $2),"
        " count(DISTINCT hour), coalesce(sum(orders_created), 0)"
        " FROM reporting.orders_by_hour WHERE hour >= $1 AND hour < $2",
        [start, end],
    ).fetchone()
    return {
        "rows_deleted": int(deleted),
        "rows_written": int(written),
        "hours_with_orders": int(hours_with_orders),
        "orders_created_in_window": int(in_core),
        "orders_in_mart": int(in_mart),
    }


def replace_window(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    reporting_database: ReportingDatabaseResource,
) -> dg.MaterializeResult:
    """The body of orders_by_hour: the run's hours replaced in DuckDB, then (after the commit) in
    PostgreSQL when configured; the counts and the balance as metadata."""
    window = context.partition_time_window
    start, end = naive_utc(window.start), naive_utc(window.end)
    with warehouse.warehouse().transaction() as con:
        counts = replace_hours(con, start, end)
        balance = Balance(
            "hourly_mart_orders_equal_orders_created_in_window",
            {"orders_in_mart": counts["orders_in_mart"]},
            {"orders_created_in_window": counts["orders_created_in_window"]},
        )
        record_balance(con, context.run_id, ORDERS_BY_HOUR.to_user_string(), "window", balance)
        mart = mart_from_duckdb(
            con, ORDERS_BY_HOUR_TABLE, ORDERS_BY_HOUR_KEY, "hour >= ? AND hour < ?", [start, end]
        )
    published = reporting_database.publish(mart, PartitionWindow("hour", start, end))
    return dg.MaterializeResult(
        metadata={
            "window": f"[{start.isoformat()}, {end.isoformat()}) UTC",
            "hours": int((end - start) / timedelta(hours=1)),
            **counts,
            "dagster/row_count": counts["rows_written"],
            "balance": balance.as_text(),
            **published,
        }
    )


# `backfill_policy` is beta in Dagster 1.13: said once here, not on every import of the definitions.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning
    )

    @dg.asset(
        key=ORDERS_BY_HOUR,
        deps=[ORDERS_CURRENT],
        partitions_def=HOURLY_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        owners=[OWNER],
        kinds={"duckdb", "postgres"},
        tags={"layer": "reporting"},
        pool=WAREHOUSE_POOL,
    )
    def orders_by_hour(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        reporting_database: ReportingDatabaseResource,
    ) -> dg.MaterializeResult:
        """Per UTC hour of creation and currency: orders created, how many of them are
        cancelled, gross sales (cancelled orders left out) and refunds, in integer minor units.
        A run replaces exactly the hours of its partitions (a one-day backfill is one run), in
        DuckDB and, when REPORTING_DATABASE_URL is set, in PostgreSQL (`published_to` says
        where). Rebuild an hour to pick up later cancellations and refunds of its orders."""
        return replace_window(context, warehouse, reporting_database)


orders_by_hour_job = dg.define_asset_job(
    name=JOB_NAME,
    selection=dg.AssetSelection.assets(ORDERS_BY_HOUR),
    partitions_def=HOURLY_PARTITIONS,
    description="Rebuild reporting/orders_by_hour for a range of hours, in one run.",
)


def refresh_range(scheduled_at: datetime, hours: int = REFRESH_HOURS) -> tuple[str, str] | None:
    """The first and last partition keys a tick at `scheduled_at` rebuilds: the `hours` hours up to
    the one that closed last, none before FIRST_HOUR; None before the first hour has closed (pure)."""
    last = scheduled_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=1
    )
    first_hour = datetime.strptime(FIRST_HOUR, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    if last < first_hour:
        return None
    first = max(last - timedelta(hours=hours - 1), first_hour)
    return first.strftime(PARTITION_KEY_FORMAT), last.strftime(PARTITION_KEY_FORMAT)


@dg.schedule(
    name=SCHEDULE_NAME,
    job=orders_by_hour_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Hourly at :15: rebuilds the last 24 closed hours of reporting/orders_by_hour in one run, so "
        "the hour just closed appears and the day's cancellations and refunds reach their hour. "
        "Stopped by default: backfill the hours you need first, then start it."
    ),
)
def orders_by_hour_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    hours = refresh_range(context.scheduled_execution_time)
    if hours is None:
        return dg.SkipReason(f"no hour has closed since the first partition, {FIRST_HOUR}")
    first, last = hours
    return dg.RunRequest(
        run_key=f"{first}...{last}",
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
            "integration_assets/trigger": "schedule",
        },
    )
