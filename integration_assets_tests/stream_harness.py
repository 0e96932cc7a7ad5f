"""A stream's assets wired to a running sandbox, a raw log and a warehouse under a test's tmp_path,
and a switchable change to what the sandbox serves: shared by the drift and payments tests."""

import copy
from datetime import timedelta
from pathlib import Path

import dagster as dg

from integration_assets.defs.payments import payments_checks
from integration_assets.defs.payments.core import financial_ledger
from integration_assets.defs.payments.extract import raw_payments_assets, raw_payout_transactions
from integration_assets.defs.payments.staging import staging_payments_objects
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import Warehouse
from integration_assets_tests.sandbox_clients import client_resources

PAYMENTS_ASSETS = [
    *raw_payments_assets,
    raw_payout_transactions,
    staging_payments_objects,
    financial_ledger,
    *payments_checks,
]


class PayloadChange:
    """A change to what the sandbox serves, switched on from a chosen poll on."""

    def __init__(self, change: dict) -> None:
        self.change = change
        self.active = False

    def apply(self, body: dict) -> dict:
        if not self.active:
            return body
        body = copy.deepcopy(body)
        for old, new in self.change.get("rename", {}).items():
            if old in body:
                body[new] = body.pop(old)
        for name in self.change.get("remove", []):
            body.pop(name, None)
        body.update(self.change.get("set", {}))
        for name, to_type in self.change.get("retype", {}).items():
            if name in body:
                body[name] = to_type(body[name])
        return body


class Stream:
    """One stream's assets wired to a running sandbox, a raw log and a warehouse under tmp_path."""

    def __init__(self, tmp_path: Path, systems, scenario, assets) -> None:
        self.systems = systems
        self.assets = assets
        self.warehouse = Warehouse(tmp_path / "warehouse.duckdb")
        self.raw_log = RawLog(tmp_path / "raw")
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {
            **client_resources(systems, scenario),
            "raw_log": RawLogResource(root=str(tmp_path / "raw")),
            "warehouse": WarehouseResource(path=str(tmp_path / "warehouse.duckdb")),
        }

    def run(self) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            self.assets, resources=self.resources, instance=self.instance, raise_on_error=False
        )

    def advance(self, **delta) -> None:
        self.systems.clock.advance(timedelta(**delta))

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.warehouse.connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()

    def scalar(self, query: str, params=None):
        return self.sql(query, params)[0][0]
