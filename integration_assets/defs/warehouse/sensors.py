"""The WMS inbox sensor: new files in the inbox start a `warehouse_file_sync` run."""

import hashlib
import json
from pathlib import Path

import dagster as dg

from integration_assets.defs.execution import PRELOADED_MODULES, forkserver_execution
from integration_assets.defs.warehouse.assets import list_inbox
from integration_assets.defs.warehouse.names import GROUP, JOB_NAME, SENSOR_NAME
from integration_assets.storage.resources import WarehouseInboxResource

warehouse_file_sync = dg.define_asset_job(
    name=JOB_NAME,
    selection=dg.AssetSelection.groups(GROUP),
    description="Land every new WMS inbox file in raw (by sha256), then stage each file whole or quarantine it whole.",
    config=forkserver_execution(PRELOADED_MODULES),
    tags={"integration_assets/trigger": "sensor"},
)


def inbox_listing(folder: Path) -> dict[str, list[int]]:
    """name -> [size, mtime_ns] of every visible file in the inbox (hidden ones are being written)."""
    listing = {}
    for path in list_inbox(folder):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # removed between the listing and the stat
        listing[path.name] = [stat.st_size, stat.st_mtime_ns]
    return listing


def new_files(listing: dict[str, list[int]], cursor: str | None) -> dict[str, list[int]]:
    requested = json.loads(cursor) if cursor else {}
    return {name: stat for name, stat in listing.items() if requested.get(name) != stat}


def run_key_for(files: dict[str, list[int]]) -> str:
    """Same new files (names and sizes) -> same run key, so a repeated tick never starts a second run."""
    text = json.dumps(sorted((name, stat[0]) for name, stat in files.items()))
    return "warehouse-files-" + hashlib.sha256(text.encode()).hexdigest()[:24]


@dg.sensor(
    name=SENSOR_NAME,
    job=warehouse_file_sync,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Lists the WMS inbox every 30 s. Files not requested before (by name, size and mtime) start one "
        "warehouse_file_sync run; the cursor holds what was already requested. The run itself decides "
        "by sha256 what is new, so a file seen twice is never applied twice."
    ),
)
def warehouse_inbox_sensor(
    context: dg.SensorEvaluationContext, warehouse_inbox: WarehouseInboxResource
):
    folder = warehouse_inbox.folder()
    if not folder.is_dir():
        return dg.SkipReason(f"the inbox {folder} does not exist yet")
    listing = inbox_listing(folder)
    fresh = new_files(listing, context.cursor)
    if not fresh:
        return dg.SkipReason(f"no new files in {folder} ({len(listing)} already requested)")
    context.update_cursor(json.dumps(listing, sort_keys=True))
    names = sorted(fresh)
    return dg.RunRequest(
        run_key=run_key_for(fresh),
        tags={"warehouse/new_files": str(len(names)), "warehouse/first_file": names[0][:200]},
    )
