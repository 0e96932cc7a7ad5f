"""A small business wired end to end: every sandbox system over HTTP, a temp raw log and warehouse.

The scenario is `tiny` plus what delivery needs to show: a business customer with an account manager,
a customer whose email the ERP refuses (our mapping lets it through; the ERP's validation does not),
and a big refund whose credit note needs approval.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from integration_assets.chaos.scenario import delivery_scenario_raw, write_scenario
from integration_assets.definitions import defs
from integration_assets.sandbox.scenario import load_scenario
from integration_assets.sandbox.server import RunningSystems, start_sandbox_systems
from integration_assets.storage.outbox import counts_by_status
from integration_assets.storage.resources import (
    RawLogResource,
    WarehouseInboxResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import Warehouse
from integration_assets.systems.alert_sink import AlertSinkResource
from integration_assets_tests.sandbox_clients import client_resources


def delivery_scenario(folder: Path) -> Path:
    return write_scenario(delivery_scenario_raw(), folder)


@dataclass
class Stack:
    systems: RunningSystems
    resources: dict
    warehouse: Warehouse
    instance: dg.DagsterInstance

    def run(self, *groups: str, **resource_overrides) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*defs.assets, *defs.asset_checks],
            resources={**self.resources, **resource_overrides},
            instance=self.instance,
            raise_on_error=False,
            selection=dg.AssetSelection.groups(*groups),
        )

    def deliver(self, **resource_overrides) -> dg.ExecuteInProcessResult:
        return self.run("delivery", "ops", **resource_overrides)

    def outbox(self, target: str | None = None, entity: str | None = None) -> dict[str, int]:
        with self.warehouse.connect() as con:
            return counts_by_status(con, target, entity)

    def erp_documents(self) -> dict[str, int]:
        return {
            kind: len(self.systems.erp.app.documents(kind))
            for kind in ("customer", "sales_order", "invoice", "credit_note", "payment_applied")
        }

    def crm_documents(self) -> dict[str, int]:
        return {
            sobject: len(self.systems.crm.records(sobject)) for sobject in ("Account", "Contact")
        }


@contextmanager
def open_stack(tmp_path: Path, scenario_path: Path, hours: float = 12) -> Iterator[Stack]:
    """Every system of `scenario_path` served, the orders, payments and customers already in core."""
    scenario = load_scenario(scenario_path)
    # This stack's audit files only: ops/audit_log loads every file in the folder.
    previous_audit_dir = os.environ.get("INTEGRATION_ASSETS_AUDIT_DIR")
    os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = str(tmp_path / "audit")
    try:
        with start_sandbox_systems(scenario) as systems:
            yield from _stack_on(systems, scenario, tmp_path, hours)
    finally:
        if previous_audit_dir is None:
            os.environ.pop("INTEGRATION_ASSETS_AUDIT_DIR", None)
        else:
            os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = previous_audit_dir


def _stack_on(systems, scenario, tmp_path: Path, hours: float) -> Iterator[Stack]:
    resources = {
        **client_resources(systems, scenario),
        "raw_log": RawLogResource(root=str(tmp_path / "raw")),
        "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        "warehouse_inbox": WarehouseInboxResource(path=str(tmp_path / "inbox")),
        "alert_sink": AlertSinkResource(log_path=str(tmp_path / "alerts.log")),
    }
    stack = Stack(
        systems, resources, Warehouse(tmp_path / "warehouse.duckdb"), dg.DagsterInstance.ephemeral()
    )
    systems.clock.advance(timedelta(hours=hours))
    result = stack.run("orders", "payments", "finance", "customers")
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    yield stack


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with open_stack(tmp_path, delivery_scenario(tmp_path)) as stack:
        yield stack
