"""The reporting marts over the real order pipeline (sandbox storefront over HTTP): the same figures
in DuckDB and, when configured, in PostgreSQL; a re-run on PostgreSQL doubles nothing."""

import dagster as dg

from integration_assets.defs.reporting.exceptions import open_exceptions
from integration_assets.storage.resources import ReportingDatabaseResource
from integration_assets_tests.pipeline.conftest import ALL_ASSETS, pipeline_for
from integration_assets_tests.reporting.conftest import metadata_of, postgres_rows

# Each mart with its key, as published.
MARTS = {
    "reporting.orders_per_day": "day, currency",
    "reporting.order_lifecycle": "order_id",
}
ASSETS = {
    "reporting.orders_per_day": "reporting/orders_per_day",
    "reporting.order_lifecycle": "reporting/order_lifecycle",
}


def run(pipeline) -> dg.ExecuteInProcessResult:
    result = pipeline.run()
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def assert_figures_hold(pipeline) -> None:
    assert pipeline.scalar("SELECT sum(orders) FROM reporting.orders_per_day") == pipeline.scalar(
        "SELECT count(*) FROM core.orders_current"
    )
    assert pipeline.scalar("SELECT count(*) FROM reporting.order_lifecycle") == pipeline.scalar(
        "SELECT count(DISTINCT order_id) FROM core.order_events"
    )


def assert_postgres_equals_duckdb(pipeline, database) -> None:
    for table, key in MARTS.items():
        duckdb_rows = pipeline.sql(f"SELECT * FROM {table} ORDER BY {key}")
        assert duckdb_rows, table
        assert postgres_rows(database, f"SELECT * FROM {table} ORDER BY {key}") == duckdb_rows
        assert (
            postgres_rows(database, f"SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1")
            == []
        )


def test_the_marts_agree_on_both_backends_and_a_rerun_doubles_nothing(
    tiny_reporting, backend, reporting_db
):
    pipeline = tiny_reporting
    pipeline.advance(hours=6)  # every order created, paid; the refund and close still to come
    first = run(pipeline)
    assert_figures_hold(pipeline)
    if backend == "duckdb":
        for asset in ASSETS.values():
            metadata = metadata_of(first, asset)
            assert metadata["published_to"] == "duckdb only"
            assert not any(name.startswith("postgres_") for name in metadata)
        return

    location = f"postgres://{reporting_db.host}/{reporting_db.name}"
    for asset in ASSETS.values():
        metadata = metadata_of(first, asset)
        assert metadata["published_to"] == location
        assert metadata["postgres_rows_inserted"] == metadata["dagster/row_count"] > 0
    assert_postgres_equals_duckdb(pipeline, reporting_db)

    pipeline.advance(hours=6)  # the refund (+8h) and the close (+10h) arrive
    second = run(pipeline)
    assert_figures_hold(pipeline)
    assert metadata_of(second, "reporting/order_lifecycle")["postgres_rows_updated"] >= 1
    assert_postgres_equals_duckdb(pipeline, reporting_db)
    counts_before = {
        table: postgres_rows(reporting_db, f"SELECT count(*) FROM {table}") for table in MARTS
    }

    third = run(pipeline)  # nothing new at the storefront: the same marts
    for asset in ASSETS.values():
        metadata = metadata_of(third, asset)
        assert (
            metadata["postgres_rows_inserted"],
            metadata["postgres_rows_updated"],
            metadata["postgres_rows_deleted"],
        ) == (0, 0, 0)
        assert metadata["postgres_rows_unchanged"] == metadata["postgres_rows_copied"]
    assert {
        table: postgres_rows(reporting_db, f"SELECT count(*) FROM {table}") for table in MARTS
    } == counts_before
    assert_postgres_equals_duckdb(pipeline, reporting_db)


def test_open_exceptions_are_published_once_each(tmp_path, postgres_database):
    """The malformed scenario quarantines orders: each open exception is one row in PostgreSQL. The
    second poll quarantines one more record (a new batch): one row inserted, nothing else touched;
    rebuilding the report alone then changes nothing."""
    with pipeline_for(tmp_path, "malformed") as pipeline:
        pipeline.resources["reporting_database"] = ReportingDatabaseResource(
            url=postgres_database.url
        )
        pipeline.advance(hours=12)
        runs = [[*ALL_ASSETS, open_exceptions], [*ALL_ASSETS, open_exceptions], [open_exceptions]]
        results = [
            dg.materialize(
                assets,
                resources=pipeline.resources,
                instance=pipeline.instance,
                raise_on_error=False,
            )
            for assets in runs
        ]
    first, second, alone = (metadata_of(r, "reporting/open_exceptions") for r in results)
    assert first["open_quarantine"] > 0
    assert (
        first["postgres_rows_inserted"]
        == first["postgres_rows_in_table"]
        == first["open_exceptions"]
    )
    new = second["open_exceptions"] - first["open_exceptions"]
    assert new >= 1
    assert (
        second["postgres_rows_inserted"],
        second["postgres_rows_updated"],
        second["postgres_rows_deleted"],
    ) == (new, 0, 0)
    assert (
        alone["postgres_rows_inserted"],
        alone["postgres_rows_updated"],
        alone["postgres_rows_deleted"],
    ) == (0, 0, 0)
    rows = dict(
        postgres_rows(
            postgres_database, "SELECT kind, count(*) FROM reporting.open_exceptions GROUP BY kind"
        )
    )
    assert sum(rows.values()) == alone["open_exceptions"] == second["open_exceptions"]
    assert rows["quarantine"] == alone["open_quarantine"]
