"""reporting/orders_by_hour: a one-day backfill is one run over 24 hourly partitions; its hours add up
to the day; a second backfill, or one hour rebuilt alone, doubles nothing (DuckDB and PostgreSQL)."""

from datetime import UTC, datetime

import dagster as dg

from integration_assets.definitions import defs
from integration_assets.defs.reporting.hourly import (
    GROUP,
    JOB_NAME,
    ORDERS_BY_HOUR,
    SCHEDULE_NAME,
    orders_by_hour,
)
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets_tests.reporting.conftest import metadata_of, postgres_rows

DAY = "2026-11-20"  # the tiny scenario's four orders are created 14:00-16:00 UTC that day
RANGE_TAGS = {
    "dagster/asset_partition_range_start": f"{DAY}-00:00",
    "dagster/asset_partition_range_end": f"{DAY}-23:00",
}
TABLE_SQL = "SELECT * FROM reporting.orders_by_hour ORDER BY hour, currency"
DAY_FIGURES = (
    "SELECT sum(orders_created), sum(orders_cancelled), sum(gross_sales_minor), sum(refunded_minor)"
    f" FROM reporting.orders_by_hour WHERE CAST(hour AS DATE) = DATE '{DAY}'"
)


def backfill(pipeline, tags=RANGE_TAGS) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [orders_by_hour],
        resources=pipeline.resources,
        instance=pipeline.instance,
        tags=tags,
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def test_a_one_day_backfill_is_one_run_whose_hours_add_up_to_the_day(
    tiny_reporting, backend, reporting_db
):
    pipeline = tiny_reporting
    pipeline.advance(hours=12)  # every story told: a cancellation and a refund among the orders
    assert pipeline.run().success
    runs_before = len(pipeline.instance.get_runs())

    first = backfill(pipeline)
    assert len(pipeline.instance.get_runs()) == runs_before + 1
    events = first.get_asset_materialization_events()
    assert len(events) == 24
    assert {e.partition for e in events} == {f"{DAY}-{hour:02d}:00" for hour in range(24)}
    assert len(pipeline.instance.get_materialized_partitions(ORDERS_BY_HOUR)) == 24

    created_that_day = pipeline.scalar(
        f"SELECT count(*) FROM core.orders_current WHERE CAST(created_at AS DATE) = DATE '{DAY}'"
    )
    assert created_that_day == 4
    hourly = pipeline.sql(DAY_FIGURES)[0]
    daily = pipeline.sql(
        "SELECT orders, cancelled_orders, gross_sales_minor, refunded_minor"
        f" FROM reporting.orders_per_day WHERE day = DATE '{DAY}'"
    )[0]
    assert hourly == daily and hourly[0] == created_that_day
    assert hourly[1] >= 1 and hourly[3] > 0  # the cancelled and the refunded stories are in there
    metadata = metadata_of(first, "reporting/orders_by_hour")
    assert metadata["hours"] == 24 and metadata["orders_in_mart"] == created_that_day
    assert metadata["balance"].endswith("holds")
    duckdb_table = pipeline.sql(TABLE_SQL)

    second = backfill(pipeline)
    assert pipeline.sql(TABLE_SQL) == duckdb_table
    again = metadata_of(second, "reporting/orders_by_hour")
    assert again["rows_deleted"] == again["rows_written"] == len(duckdb_table)

    one_hour = backfill(pipeline, tags={"dagster/partition": f"{DAY}-15:00"})
    assert pipeline.sql(TABLE_SQL) == duckdb_table  # the other hours of the day untouched
    assert metadata_of(one_hour, "reporting/orders_by_hour")["hours"] == 1

    if backend == "duckdb":
        assert again["published_to"] == "duckdb only"
        return
    assert postgres_rows(reporting_db, TABLE_SQL) == duckdb_table
    assert metadata_of(first, "reporting/orders_by_hour")["postgres_rows_inserted"] == len(
        duckdb_table
    )
    for result in (again, metadata_of(one_hour, "reporting/orders_by_hour")):
        assert (
            result["postgres_rows_inserted"],
            result["postgres_rows_updated"],
            result["postgres_rows_deleted"],
        ) == (0, 0, 0)
    assert (
        postgres_rows(
            reporting_db,
            "SELECT hour, currency FROM reporting.orders_by_hour GROUP BY 1, 2 HAVING count(*) > 1",
        )
        == []
    )


def test_the_hourly_mart_stays_out_of_the_unpartitioned_hourly_job():
    hourly_sync = defs.resolve_job_def("storefront_hourly_sync")
    assert ORDERS_BY_HOUR not in hourly_sync.asset_layer.executable_asset_keys
    assert defs.resolve_assets_def(ORDERS_BY_HOUR).group_names_by_key[ORDERS_BY_HOUR] == GROUP


def test_the_schedule_asks_for_one_run_over_the_last_day_of_hours_and_that_run_works(tmp_path):
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 21, 0, 15, tzinfo=UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert {key: request.tags[key] for key in RANGE_TAGS} == RANGE_TAGS
    assert request.partition_key is None

    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    with warehouse.transaction() as con:
        con.execute(
            "CREATE TABLE core.orders_current AS SELECT * FROM (VALUES"
            " (1, 'USD', TIMESTAMP '2026-11-20 14:10', NULL, 1000, 0),"
            " (2, 'USD', TIMESTAMP '2026-11-20 14:50', TIMESTAMP '2026-11-20 15:00', 500, 0),"
            " (3, 'EUR', TIMESTAMP '2026-11-20 23:59', NULL, 700, 200),"
            " (4, 'EUR', TIMESTAMP '2026-11-21 00:00', NULL, 900, 0))"
            " AS t(order_id, currency, created_at, cancelled_at, total_price_minor, refunded_minor)"
        )
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        tags=request.tags,
        resources={
            "warehouse": WarehouseResource(path=str(warehouse.path)),
            "reporting_database": ReportingDatabaseResource(read_environment=False),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert len(result.get_asset_materialization_events()) == 24
    with warehouse.connect(read_only=True) as con:
        assert con.execute(TABLE_SQL).fetchall() == [
            (datetime(2026, 11, 20, 14), "USD", 2, 1, 1000, 0),
            (datetime(2026, 11, 20, 23), "EUR", 1, 0, 700, 200),
        ]  # order 4 belongs to the next day's first hour
