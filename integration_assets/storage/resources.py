"""Dagster resources for the raw log and the warehouse; paths are resolved at run time, not import time."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from integration_assets.storage.raw_log import RawLog
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
