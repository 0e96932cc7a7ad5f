"""The product stream end to end over HTTP: the default scenario's catalog changes become history rows."""

import dataclasses
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from integration_assets.defs.products import products_assets, products_checks
from integration_assets.defs.products.names import GATING_CHECKS
from integration_assets.sandbox import load_scenario, start_storefront
from integration_assets.sandbox.scenario import RateLimitConfig
from integration_assets_tests.pipeline.conftest import SCENARIOS, Pipeline, check_outcomes

START = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # default.yaml's clock.start (06:00 -05:00)
CATALOG_CREATED = datetime(
    2026, 11, 13, 11, 0
)  # 7 days before: when the sandbox catalog exists from


def at(hours: int) -> datetime:
    return (START + timedelta(hours=hours)).replace(tzinfo=None)


class ProductPipeline(Pipeline):
    def run(self, selection=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*products_assets, *products_checks],
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
        )


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    """default.yaml polled every 6 scenario hours for a day, then the last window re-read twice."""
    scenario = load_scenario(SCENARIOS / "default.yaml")
    scenario = dataclasses.replace(
        scenario, faults=(), rate_limit=RateLimitConfig(100_000, 1000.0, 0.1)
    )
    with start_storefront(scenario) as sandbox:
        pipeline = ProductPipeline(tmp_path_factory.mktemp("products"), sandbox, scenario)
        results = []
        for _ in range(4):
            pipeline.advance(hours=6)
            results.append(pipeline.run())
        history_before = pipeline.sql("SELECT * FROM core.product_history ORDER BY sku, valid_from")
        staged_before = pipeline.scalar("SELECT count(*) FROM staging.storefront_products")
        results.append(pipeline.run())  # the same window again (lookback re-reads the boundary)
        results.append(pipeline.run())
        yield pipeline, results, history_before, staged_before


def history(pipeline, sku: str) -> list[tuple]:
    return pipeline.sql(
        "SELECT price_minor, available, category, bundle_components, valid_from, valid_to "
        "FROM core.product_history WHERE sku = ? ORDER BY valid_from",
        [sku],
    )


def test_every_run_succeeds_and_every_gate_passes(polled):
    _, results, _, _ = polled
    for result in results:
        assert result.success
        outcomes = check_outcomes(result)
        assert all(outcomes[name] for name in GATING_CHECKS), outcomes
        assert outcomes["one_current_row_per_sku_and_no_overlaps"]


def test_mid_day_price_change_is_two_rows(polled):
    pipeline, _, _, _ = polled
    assert history(pipeline, "CASE-SLIM") == [
        (1990, True, "", None, CATALOG_CREATED, at(8)),
        (1790, True, "", None, at(8), None),
    ]


def test_unavailable_then_available_is_three_rows(polled):
    pipeline, _, _, _ = polled
    rows = history(pipeline, "EARBUDS-W")
    assert [(r[1], r[4], r[5]) for r in rows] == [
        (True, CATALOG_CREATED, at(9)),
        (False, at(9), at(15)),
        (True, at(15), None),
    ]
    assert {r[0] for r in rows} == {2400}


def test_category_and_bundle_changes_are_history_too(polled):
    pipeline, _, _, _ = polled
    assert [(r[2], r[4], r[5]) for r in history(pipeline, "CABLE-USB-C")] == [
        ("", CATALOG_CREATED, at(10)),
        ("Cables & Adapters", at(10), None),
    ]
    bundle = history(pipeline, "IPOD2009BLACK")
    assert [(r[3], r[4], r[5]) for r in bundle] == [
        (None, CATALOG_CREATED, at(11)),
        ('[{"quantity":1,"sku":"CABLE-USB-C"},{"quantity":1,"sku":"CASE-SLIM"}]', at(11), None),
    ]
    # Unchanged SKUs (and IPOD2008* whose product never changed) keep one row.
    assert history(pipeline, "GIFTWRAP") == [(399, True, "", None, CATALOG_CREATED, None)]


def test_current_view_has_one_row_per_sku(polled):
    pipeline, _, _, _ = polled
    current = dict(pipeline.sql("SELECT sku, price_minor FROM core.products_current"))
    assert set(current) == {item.sku for item in pipeline.scenario.catalog}
    assert current["CASE-SLIM"] == 1790


def test_re_running_the_same_window_doubles_nothing(polled):
    pipeline, results, history_before, staged_before = polled
    assert pipeline.sql("SELECT * FROM core.product_history ORDER BY sku, valid_from") == (
        history_before
    )
    assert pipeline.scalar("SELECT count(*) FROM staging.storefront_products") == staged_before
    balances = pipeline.sql(
        "SELECT holds FROM ops.count_balances WHERE asset_key LIKE '%products%'"
    )
    assert balances and all(holds for (holds,) in balances)
    # The re-runs read the boundary products again; staging counted them as duplicates.
    read, staged, quarantined, duplicates = pipeline.sql(
        "SELECT sum(records_read), sum(staged), sum(quarantined), sum(duplicates) "
        "FROM staging.batches WHERE stream = 'storefront/products'"
    )[0]
    assert read == staged + quarantined + duplicates and duplicates > 0 and quarantined == 0
