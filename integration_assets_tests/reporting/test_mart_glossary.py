"""The glossary drives the marts' column descriptions: every column of both marts is described by
its term in the Dagster UI (`dagster/column_schema`), and every column the glossary names exists."""

import pytest

from integration_assets.contracts.glossary import load_glossary
from integration_assets_tests.reporting.conftest import metadata_of
from integration_assets_tests.reporting.test_marts_on_both_backends import ASSETS, run

MARTS = tuple(ASSETS)  # reporting.orders_per_day, reporting.order_lifecycle


@pytest.mark.parametrize("backend", ["duckdb"])
def test_every_column_of_the_marts_is_described_by_the_glossary(tiny_reporting, backend):
    pipeline = tiny_reporting
    pipeline.advance(hours=6)
    result = run(pipeline)
    glossary = load_glossary()
    for table in MARTS:
        schema = metadata_of(result, ASSETS[table])["dagster/column_schema"]
        assert schema.columns, table
        undescribed = [column.name for column in schema.columns if not column.description]
        assert not undescribed, f"{table}: no glossary term for {undescribed}"
        for column in schema.columns:
            assert column.description == glossary.describe(table, column.name)
    # Every column the glossary names exists in the marts (no definition of a column that is gone).
    built = {
        f"{table}.{column.name}"
        for table in MARTS
        for column in metadata_of(result, ASSETS[table])["dagster/column_schema"].columns
    }
    named = {column for term in glossary.terms for column in term.columns}
    assert named <= built, named - built
