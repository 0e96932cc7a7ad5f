"""Layer 3: the assets materialized in process against a real sandbox over HTTP and a temporary DuckDB."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from integration_assets.defs.orders.checks import staging_orders_gate
from integration_assets.defs.orders.core import (
    every_source_order_known,
    order_events,
    order_events_balance,
    orders_current,
    orders_current_matches_heads,
)
from integration_assets.defs.orders.extract import raw_storefront_orders
from integration_assets.defs.orders.staging import staging_storefront_orders
from integration_assets.defs.reporting.marts import (
    order_lifecycle,
    orders_per_day,
    orders_per_day_reconciles,
)
from integration_assets.sandbox import load_scenario, start_storefront
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import (
    RawLogResource,
    ReportingDatabaseResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.storefront import StorefrontClient

SCENARIOS = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "scenarios"
ALL_ASSETS = [
    raw_storefront_orders,
    staging_storefront_orders,
    staging_orders_gate,
    order_events,
    order_events_balance,
    orders_current,
    orders_current_matches_heads,
    every_source_order_known,
    orders_per_day,
    order_lifecycle,
    orders_per_day_reconciles,
]


class Pipeline:
    """The order stream wired to one sandbox, one raw log and one warehouse in a temporary folder."""

    def __init__(self, tmp_path: Path, sandbox, scenario):
        self.sandbox = sandbox
        self.scenario = scenario
        self.raw_log = RawLog(tmp_path / "raw")
        self.warehouse = Warehouse(tmp_path / "warehouse.duckdb")
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            "storefront": self.client(),
            "raw_log": RawLogResource(root=str(tmp_path / "raw")),
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
            "reporting_database": ReportingDatabaseResource(read_environment=False),
        }

    def client(self, **overrides) -> StorefrontClient:
        settings = {
            "shop_url": self.sandbox.url,
            "access_token": self.scenario.shop.access_token,
            "api_version": self.scenario.shop.api_version,
            "backoff_base_seconds": 0.01,
            "backoff_max_seconds": 0.2,
        }
        return StorefrontClient(**{**settings, **overrides})

    def run(self, selection=None, run_config=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            ALL_ASSETS,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
            selection=selection,
            run_config=run_config,
        )

    def advance(self, **delta) -> None:
        self.sandbox.clock.advance(timedelta(**delta))

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.warehouse.connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()

    def scalar(self, query: str, params=None):
        return self.sql(query, params)[0][0]


@contextmanager
def pipeline_for(tmp_path: Path, scenario_name: str) -> Iterator[Pipeline]:
    scenario = load_scenario(SCENARIOS / f"{scenario_name}.yaml")
    with start_storefront(scenario) as sandbox:
        yield Pipeline(tmp_path, sandbox, scenario)


@pytest.fixture
def tiny(tmp_path) -> Iterator[Pipeline]:
    with pipeline_for(tmp_path, "tiny") as pipeline:
        yield pipeline


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def check_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data.passed
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def check_description(result: dg.ExecuteInProcessResult, name: str) -> str:
    for event in result.all_events:
        if (
            event.event_type_value == "ASSET_CHECK_EVALUATION"
            and event.asset_check_evaluation_data.check_name == name
        ):
            return event.asset_check_evaluation_data.description or ""
    raise KeyError(name)


@pytest.fixture(scope="session")
def business_day(tmp_path_factory):
    """The default scenario over two daily polls, every stream: storefront, payments, warehouse files,
    inventory. By the second poll the first payout has been made and the first daily count taken.
    Returns the warehouse to query and every run's result."""
    from integration_assets.definitions import defs
    from integration_assets.sandbox.server import start_sandbox_systems
    from integration_assets.storage.resources import WarehouseInboxResource
    from integration_assets.systems.alert_sink import AlertSinkResource
    from integration_assets_tests.sandbox_clients import client_resources

    tmp = tmp_path_factory.mktemp("business_day")
    scenario = load_scenario(SCENARIOS / "default.yaml")
    everything = [*defs.assets, *defs.asset_checks]
    results = []
    with start_sandbox_systems(scenario, warehouse_inbox=tmp / "inbox") as systems:
        resources = {
            **client_resources(systems, scenario),
            "alert_sink": AlertSinkResource(log_path=str(tmp / "alerts.log")),
            "raw_log": RawLogResource(root=str(tmp / "raw")),
            "warehouse": WarehouseResource(path=str(tmp / "warehouse.duckdb")),
            "warehouse_inbox": WarehouseInboxResource(path=str(tmp / "inbox")),
        }
        instance = dg.DagsterInstance.ephemeral()
        for _ in range(2):
            systems.clock.advance(timedelta(hours=24))
            for groups in (
                ("warehouse",),
                ("orders", "payments", "finance", "inventory", "reporting", "customers"),
                ("delivery", "ops"),
            ):
                results.append(
                    dg.materialize(
                        everything,
                        resources=resources,
                        instance=instance,
                        raise_on_error=False,
                        selection=dg.AssetSelection.groups(*groups),
                    )
                )
    return Warehouse(tmp / "warehouse.duckdb"), results
