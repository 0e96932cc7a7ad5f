"""Dagster resources for the raw log and the warehouse; paths are resolved at run time, not import time."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.reporting_postgres import (
    Mart,
    PartitionWindow,
    ReportingTarget,
    publish_mart,
    reporting_target,
)
from integration_assets.storage.warehouse import Warehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """`INTEGRATION_ASSETS_DATA_DIR`, else the project's `data/` folder."""
    configured = os.environ.get("INTEGRATION_ASSETS_DATA_DIR")
    return Path(configured) if configured else PROJECT_ROOT / "data"


class RawLogResource(dg.ConfigurableResource):
    """The immutable raw log (batch files + manifests). Empty `root` means `<data dir>/raw`."""

    root: str = ""

    def log(self) -> RawLog:
        return RawLog(Path(self.root) if self.root else default_data_dir() / "raw")


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file. Empty `path` means `<data dir>/warehouse.duckdb`."""

    path: str = ""

    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.path) if self.path else default_data_dir() / "warehouse.duckdb")


class WarehouseInboxResource(dg.ConfigurableResource):
    """The folder the WMS drops CSV files into. Empty `path`: `WAREHOUSE_INBOX`, else `<data dir>/inbox/warehouse`."""

    path: str = ""

    def folder(self) -> Path:
        if self.path:
            return Path(self.path)
        configured = os.environ.get("WAREHOUSE_INBOX")
        return Path(configured) if configured else default_data_dir() / "inbox" / "warehouse"


REPORTING_DATABASE_URL = "REPORTING_DATABASE_URL"


class ReportingDatabaseResource(dg.ConfigurableResource):
    """PostgreSQL for the reporting marts, published after the DuckDB warehouse commits.

    Empty `url`: `REPORTING_DATABASE_URL`, read at run time (postgresql:// or
    postgresql+psycopg2://); empty or unset there too: the marts stay in DuckDB only.
    `read_environment=False` ignores the variable: replays and tests build marts that must never
    reach the real reporting database. Give the password through the variable, not `url`, so the
    UI's resource view never shows it.
    """

    url: str = ""
    read_environment: bool = True

    def target(self) -> ReportingTarget | None:
        if self.url:
            return reporting_target(self.url)
        if not self.read_environment:
            return None
        return reporting_target(os.environ.get(REPORTING_DATABASE_URL, ""))

    def publish(
        self, mart: Mart | None, window: PartitionWindow | None = None
    ) -> dict[str, int | str]:
        """Publish `mart` when configured; the metadata that says where, and what each row became.
        A caller may pass None (not read) when `target()` is None: there is nowhere to publish."""
        target = self.target()
        if target is None:
            return {"published_to": "duckdb only"}
        if mart is None:
            raise ValueError("a reporting database is configured: the mart's rows are needed")
        counts = publish_mart(target, mart, window)
        return {"published_to": target.location, **counts.as_metadata()}
