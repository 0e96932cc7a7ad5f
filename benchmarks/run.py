"""`make bench`: the peak day through the whole pipeline, stage by stage, then the hourly increments.

python -m benchmarks.run --orders 200000 [--incremental 2000] [--results-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.measure import measured, process_peak_rss_bytes
from benchmarks.overhead import orchestration_seconds
from benchmarks.peak_scenario import (
    peak_day_scenario,
    timing_in_child,
    write_scenario,
)
from benchmarks.report import render_table, write_results
from benchmarks.sandbox_alone import orders_served, serve_all_orders
from benchmarks.sandbox_process import start_sandbox_process
from benchmarks.targets import evaluate_targets

RESULTS_DIR = Path(__file__).parent / "results"
HOURLY_JOB = "storefront_hourly_sync"
WAREHOUSE_JOB = "warehouse_file_sync"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Which schemas' tables a stage writes (its `records` are their rows after it), by asset-key prefix.
STAGE_PREFIXES = {
    "staging_and_gates": (("staging",), ("staging",)),
    "core": (("core",), ("core",)),
    "marts": (("reporting",), ("reporting",)),
    "delivery": (("delivery", "ops"), ("ops", "delivery")),
}


def default_incremental(orders: int) -> int:
    """2,000 changed orders at the full size; 1% of the orders at smaller sizes (at least 1)."""
    return max(1, min(2000, orders // 100))


def machine() -> dict[str, Any]:
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dagster": version("dagster"),
        "duckdb": version("duckdb"),
        # Other work on the machine skews every figure: the 1-minute load when the run started.
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


class Bench:
    """One data dir, one sandbox, the real definitions materialized in process, stage by stage."""

    def __init__(self, data_dir: Path, sandbox):
        import dagster as dg

        from integration_assets.definitions import defs
        from integration_assets.storage.resources import (
            RawLogResource,
            ReportingDatabaseResource,
            WarehouseInboxResource,
            WarehouseResource,
        )
        from integration_assets.systems.alert_sink import AlertSinkResource

        self.dg = dg
        self.data_dir = data_dir
        self.sandbox = sandbox
        os.environ.update(sandbox.environment())
        os.environ.pop("ALERT_WEBHOOK_URL", None)  # alerts to the log file only
        # Everything the clients write beside the warehouse (the HTTP audit trail above all, which
        # ops/audit_log ingests whole) stays in this run's data dir: never another run's files.
        os.environ["INTEGRATION_ASSETS_DATA_DIR"] = str(data_dir)
        os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = str(data_dir / "audit")
        self.everything = [*defs.assets, *defs.asset_checks]
        self.hourly_keys = sorted(
            defs.resolve_job_def(HOURLY_JOB).asset_layer.asset_graph.executable_asset_keys
        )
        self.warehouse_keys = sorted(
            defs.resolve_job_def(WAREHOUSE_JOB).asset_layer.asset_graph.executable_asset_keys
        )
        self.resources = {
            **defs.resources,
            "alert_sink": AlertSinkResource(log_path=str(data_dir / "alerts.log")),
            "raw_log": RawLogResource(root=str(data_dir / "raw")),
            "warehouse": WarehouseResource(path=str(data_dir / "warehouse.duckdb")),
            "warehouse_inbox": WarehouseInboxResource(path=str(data_dir / "inbox" / "warehouse")),
            "reporting_database": ReportingDatabaseResource(read_environment=False),
        }
        self.instance = dg.DagsterInstance.ephemeral()

    def keys_with_prefix(self, *prefixes: str) -> list:
        return [key for key in self.hourly_keys if key.path[0] in prefixes]

    def raw_totals(self) -> tuple[int, int]:
        """Records and bytes in every committed raw batch (all sources and streams)."""
        records = size = 0
        import orjson

        for manifest in (self.data_dir / "raw").glob("*/*/*.manifest.json"):
            raw = orjson.loads(manifest.read_bytes())
            records += raw["records"]
            size += raw["bytes"]
        return records, size

    def raw_orders_records(self) -> int:
        import orjson

        return sum(
            orjson.loads(path.read_bytes())["records"]
            for path in (self.data_dir / "raw" / "storefront" / "orders").glob("*.manifest.json")
        )

    def table_rows(self, schemas: tuple[str, ...]) -> int:
        import duckdb

        path = self.data_dir / "warehouse.duckdb"
        if not path.exists():
            return 0
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE' and table_schema in (select unnest(?))",
                [list(schemas)],
            ).fetchall()
            return sum(
                con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
                for schema, table in tables
            )

    def materialize(self, keys: list) -> tuple[Any, dict[str, Any]]:
        with measured() as span:
            result = self.dg.materialize(
                self.everything,
                resources=self.resources,
                instance=self.instance,
                raise_on_error=False,
                selection=self.dg.AssetSelection.assets(*keys),
                run_config=QUIET_LOGS,
            )
        return result, {
            "assets": len(keys),
            "wall_seconds": round(span.wall_seconds, 3),
            "peak_rss_bytes": span.peak_rss_bytes,
            "success": bool(result.success),
            "failed_steps": sorted(
                event.step_key
                for event in result.all_events
                if event.event_type_value == "STEP_FAILURE"
            ),
            **step_times(self.instance.all_logs(result.run_id)),
        }

    def stage(self, keys: list, schemas: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Materialize `keys`; records are raw records landed (no schemas) or rows in `schemas`."""
        records_before, bytes_before = self.raw_totals()
        _, figures = self.materialize(keys)
        records_after, bytes_after = self.raw_totals()
        wall = figures["wall_seconds"]
        if schemas is None:
            figures["records"] = records_after - records_before
            figures["bytes"] = bytes_after - bytes_before
            figures["mb_per_second"] = round(figures["bytes"] / wall / 1e6, 2) if wall else None
        else:
            figures["records"] = self.table_rows(schemas)
            figures["mb_per_second"] = None
        figures["rows_per_second"] = round(figures["records"] / wall, 1) if wall else None
        return figures

    def hourly_sync(self) -> dict[str, Any]:
        """The warehouse file sync (not timed), then the hourly job's whole graph as one run (timed)."""
        self.materialize(self.warehouse_keys)
        orders_before = self.raw_orders_records()
        figures = self.stage(self.hourly_keys)
        figures["orders_extracted"] = self.raw_orders_records() - orders_before
        return figures


def step_times(entries, limit: int = 5) -> dict[str, Any]:
    """How many steps ran, their summed time, the slowest `limit` of them and every step's time
    (slowest first: where an incremental run's time goes), from the run's event log (STEP_START to
    STEP_SUCCESS|FAILURE). Wall minus the sum is the time between steps."""
    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif (
            event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started
        ):
            durations[event.step_key] = entry.timestamp - started[event.step_key]
    ranked = sorted(durations.items(), key=lambda item: -item[1])
    return {
        "steps": len(durations),
        "steps_seconds": round(sum(durations.values()), 3),
        "slowest_steps": [
            {"step": step, "seconds": round(seconds, 3)} for step, seconds in ranked[:limit]
        ],
        "step_seconds": {step: round(seconds, 3) for step, seconds in ranked},
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def run_benchmark(
    orders: int,
    incremental: int | None = None,
    results_dir: Path = RESULTS_DIR,
    work_dir: Path | None = None,
) -> tuple[dict[str, Any], Path]:
    incremental = default_incremental(orders) if incremental is None else incremental
    environment_before = dict(os.environ)  # the stages point the environment at the sandbox
    owns_work_dir = work_dir is None
    work = (
        Path(tempfile.mkdtemp(prefix="integration-assets-bench-")) if work_dir is None else work_dir
    )
    started = time.perf_counter()
    try:
        full_dir, empty_dir = work / "full_history", work / "empty_history"
        full_dir.mkdir(parents=True, exist_ok=True)
        scenario_path = write_scenario(peak_day_scenario(orders), work / "scenarios")
        full_hour, planned_changed, events_per_order = timing_in_child(scenario_path, incremental)
        results: dict[str, Any] = {
            "date": datetime.now(UTC).date().isoformat(),
            "size": {
                "orders": orders,
                "incremental_target_changed_orders": incremental,
                "incremental_changed_orders": planned_changed,
                "full_history_clock_hours": full_hour,
                "events_per_order": events_per_order,
            },
            "machine": machine(),
            "notes": [
                "Storefront and ERP rate limits lifted: the figures measure the software, not the limits.",
                "Sandbox in its own process; the pipeline in process (dagster.materialize), DuckDB only.",
                "orchestration_overhead has no asset checks: it understates the real graph's step cost.",
            ],
            "stages": {},
        }
        stages = results["stages"]
        with start_sandbox_process(scenario_path, full_dir, orders) as sandbox:
            bench = Bench(full_dir, sandbox)
            full_clock = sandbox.advance_clock(f"{full_hour}h")
            access = (
                sandbox.storefront_url,
                bench.sandbox.systems["storefront"]["api_version"],
                bench.sandbox.systems["storefront"]["access_token"],
            )
            served = orders_served(*access)  # also warms the sandbox's order book at this clock
            results["sandbox_alone"] = serve_all_orders(*access)
            stages["warehouse_files"] = bench.stage(bench.warehouse_keys)
            stages["extraction_orders"] = bench.stage(
                [
                    key
                    for key in bench.hourly_keys
                    if key.to_user_string() == "raw/storefront/orders"
                ]
            )
            stages["extraction_orders"]["orders_served_by_sandbox"] = served
            stages["extraction_other"] = bench.stage(
                [
                    key
                    for key in bench.keys_with_prefix("raw")
                    if key.to_user_string() != "raw/storefront/orders"
                ]
            )
            for name, (prefixes, schemas) in STAGE_PREFIXES.items():
                stages[name] = bench.stage(bench.keys_with_prefix(*prefixes), schemas)
            # The day's later deliveries changed the outbox after the earlier planners had planned
            # (invoices went out after the sales orders were planned...): the first hourly run
            # after the day maps those orders once more. Measured on its own, at the same clock;
            # the incremental run below is the steady hour after it.
            stages["settle_after_full_day"] = bench.hourly_sync()
            sandbox.advance_clock("1h")
            changed = orders_served(
                *access, updated_at_min=_iso(datetime.fromisoformat(full_clock))
            )
            stages["incremental_full_history"] = bench.hourly_sync()
            stages["incremental_full_history"]["orders_changed_in_sandbox"] = changed
            results["sandbox_peak_rss_bytes"] = process_peak_rss_bytes(sandbox.process.pid)
        from integration_assets.definitions import defs

        results["orchestration_overhead"] = orchestration_seconds(defs.resolve_job_def(HOURLY_JOB))
        # The empty history: a fresh data dir and a sandbox whose only orders are `changed` orders
        # created in one hour (same mix), polled once at the end of that hour.
        empty_dir.mkdir(parents=True, exist_ok=True)
        hour_path = write_scenario(
            peak_day_scenario(max(1, changed), hours=1, name="peak_hour_only"), work / "scenarios"
        )
        with start_sandbox_process(hour_path, empty_dir, changed) as sandbox:
            bench = Bench(empty_dir, sandbox)
            sandbox.advance_clock("1h")
            stages["incremental_empty_history"] = bench.hourly_sync()
        results["targets"] = evaluate_targets(results)
        results["harness_wall_seconds"] = round(time.perf_counter() - started, 1)
        path = write_results(results, results_dir)
        return results, path
    finally:
        os.environ.clear()
        os.environ.update(environment_before)
        if owns_work_dir:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--orders", type=int, default=int(os.environ.get("BENCH_ORDERS", 200_000)))
    parser.add_argument(
        "--incremental", type=int, default=None, help="changed orders (default: 1%%, at most 2000)"
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    results, path = run_benchmark(args.orders, args.incremental, args.results_dir)
    print(render_table(results))
    print(f"\nResults: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
