"""The order pipeline on the tiny scenario, its marts built in DuckDB and, for `postgres`, published."""

from collections.abc import Iterator

import pytest

from integration_assets.storage.resources import ReportingDatabaseResource
from integration_assets_tests.pipeline.conftest import Pipeline, pipeline_for

BACKENDS = ["duckdb", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def reporting_db(backend, request):
    """The test's own PostgreSQL database for `postgres`; None for `duckdb` (marts in DuckDB only)."""
    return request.getfixturevalue("postgres_database") if backend == "postgres" else None


@pytest.fixture
def tiny_reporting(tmp_path, reporting_db) -> Iterator[Pipeline]:
    with pipeline_for(tmp_path, "tiny") as pipeline:
        pipeline.resources["reporting_database"] = (
            ReportingDatabaseResource(url=reporting_db.url)
            if reporting_db is not None
            else ReportingDatabaseResource(read_environment=False)
        )
        yield pipeline


def postgres_rows(database, query: str) -> list[tuple]:
    with database.connect() as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def metadata_of(result, asset: str) -> dict:
    """The metadata of `asset`'s (last) materialization in a run, as plain values."""
    found = [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key.to_user_string() == asset
    ]
    assert found, f"{asset} was not materialized"
    return {name: value.value for name, value in found[-1].items()}
