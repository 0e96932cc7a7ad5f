"""The explain tests' business: every sandbox system over HTTP, the warehouse inbox included, and
every group materialized in the order the inbox sensor and the hourly sync run them."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from integration_assets.sandbox.clock import parse_duration
from integration_assets.sandbox.scenario import load_scenario
from integration_assets.sandbox.server import start_sandbox_systems
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.alert_sink import AlertSinkResource
from integration_assets_tests.delivery.conftest import Stack
from integration_assets_tests.sandbox_clients import client_resources

WHOLE_STORY = Path(__file__).with_name("whole_story.yaml")
# The inbox sensor's job first (the files the WMS dropped), then what the hourly sync job selects.
POLL_GROUPS = (
    ("warehouse",),
    (
        "orders",
        "payments",
        "finance",
        "inventory",
        "products",
        "returns",
        "customers",
        "delivery",
        "ops",
        "reporting",
    ),
)


@contextmanager
def open_whole_story(tmp_path: Path) -> Iterator[Stack]:
    """The whole_story scenario served and synced once per step of its `demo.steps`, the clock moved
    on by the step before each sync (as `make demo` does)."""
    scenario = load_scenario(WHOLE_STORY)
    previous_audit_dir = os.environ.get("INTEGRATION_ASSETS_AUDIT_DIR")
    os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = str(tmp_path / "audit")
    try:
        with start_sandbox_systems(scenario, warehouse_inbox=tmp_path / "inbox") as systems:
            resources = {
                **client_resources(systems, scenario),
                "raw_log": RawLogResource(root=str(tmp_path / "raw")),
                "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
                "warehouse_inbox": WarehouseInboxResource(path=str(tmp_path / "inbox")),
                "alert_sink": AlertSinkResource(log_path=str(tmp_path / "alerts.log")),
            }
            stack = Stack(
                systems,
                resources,
                Warehouse(tmp_path / "warehouse.duckdb"),
                dg.DagsterInstance.ephemeral(),
            )
            for step in scenario.demo.clock_steps():
                systems.clock.advance(parse_duration(step))
                for groups in POLL_GROUPS:
                    result = stack.run(*groups)
                    failures = [e.message for e in result.all_events if e.is_failure]
                    assert not failures, (groups, failures)
            yield stack
    finally:
        if previous_audit_dir is None:
            os.environ.pop("INTEGRATION_ASSETS_AUDIT_DIR", None)
        else:
            os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = previous_audit_dir
