"""`make demo`: the sandbox systems, every asset materialized through the Dagster instance, a summary."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from integration_assets.environment import apply_dagster_environment
from integration_assets.local_stack import DEFAULT_SCENARIO, start_sandbox
from integration_assets.report import build_report, render_text
from integration_assets.sandbox.scenario import load_scenario
from integration_assets.stale_runs import release_orphaned_runs
from integration_assets.storage.resources import default_data_dir

JOB_NAME = "storefront_hourly_sync"
WAREHOUSE_JOB = "warehouse_file_sync"
WAREHOUSE_SENSOR = "warehouse_inbox_sensor"
# The daemon would tick these in `make dev`; the demo ticks them after every poll.
ALERT_SENSORS = ("alert_on_run_failure", "alert_on_failed_checks", "alert_on_dead_letters")
# The full event log is in the Dagster UI; the terminal shows warnings (quarantine, blocked batches) and errors.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def reset_pipeline_state(data_dir: Path) -> None:
    """Start the demo's data from nothing (raw log, WMS inbox, warehouse); Dagster's run history stays."""
    shutil.rmtree(data_dir / "raw", ignore_errors=True)
    shutil.rmtree(data_dir / "inbox", ignore_errors=True)
    shutil.rmtree(data_dir / "audit", ignore_errors=True)
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal", "alerts.log", "alerts_received.jsonl"):
        (data_dir / name).unlink(missing_ok=True)


def _describe(steps: tuple[str, ...]) -> str:
    """'1h x12, then 6h x6' for the summary's first line."""
    groups: list[list] = []
    for step in steps:
        if groups and groups[-1][0] == step:
            groups[-1][1] += 1
        else:
            groups.append([step, 1])
    return ", then ".join(f"{step} x{count}" for step, count in groups) + " before the polls"


def _run(job, instance, tags: dict, label: str) -> dict:
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags=tags, run_config=QUIET_LOGS
    )
    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = sorted({f"{e.check_name} ({e.severity.value})" for e in evaluations if not e.passed})
    status = "succeeded" if result.success else "FAILED"
    detail = f", failed checks: {', '.join(failed)}" if failed else ""
    print(f"  {label}: {status} (run {result.run_id[:8]}){detail}")
    return {
        "run_id": result.run_id,
        "job": job.name,
        "success": result.success,
        "checks_passed": sum(1 for e in evaluations if e.passed),
        "checks_failed": failed,
    }


def tick_alert_sensors(defs, instance, cursors: dict[str, str | None]) -> dict[str, str | None]:
    """One tick of each alert sensor, as the daemon would run them between polls."""
    import dagster as dg

    updated = {}
    for name in ALERT_SENSORS:
        sensor = defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(
            instance=instance, cursor=cursors.get(name), resources=defs.resources
        )
        updated[name] = sensor.evaluate_tick(context).cursor
    return updated


def alerts_summary(data_dir: Path) -> str:
    from integration_assets.systems.alert_sink import read_alert_log

    lines = read_alert_log(data_dir / "alerts.log")
    alerts = [line for line in lines if line.get("event", "alert") == "alert" and line.get("title")]
    text = [
        f"Alerts: {len(alerts)} posted (data/alerts.log, and the sandbox's Slack-compatible receiver)"
    ]
    text += [f"  [{line.get('severity')}] {line.get('title')}" for line in alerts[:8]]
    if len(alerts) > 8:
        text.append(f"  ... and {len(alerts) - 8} more")
    return "\n".join(text)


def run_demo(scenario: Path = DEFAULT_SCENARIO, keep_data: bool = False) -> dict:
    started = time.monotonic()
    apply_dagster_environment()
    data_dir = default_data_dir()
    steps = load_scenario(
        scenario
    ).demo.clock_steps()  # a bad scenario fails before any data is reset
    if not keep_data:
        reset_pipeline_state(data_dir)

    import dagster as dg

    from integration_assets.definitions import defs

    job = defs.resolve_job_def(JOB_NAME)
    warehouse_job = defs.resolve_job_def(WAREHOUSE_JOB)
    sensor = defs.resolve_sensor_def(WAREHOUSE_SENSOR)
    runs = []
    print(
        f"Scenario {scenario.name}: {len(steps)} polls, the sandbox clock advancing {_describe(steps)}; "
        f"each poll lets {WAREHOUSE_SENSOR} start {WAREHOUSE_JOB} for new WMS files, then runs {JOB_NAME}."
    )
    with start_sandbox(scenario) as sandbox, dg.DagsterInstance.get() as instance:
        for run_id in release_orphaned_runs(instance):
            print(
                f"Released run {run_id[:8]}: marked in progress, silent, its process gone (a stopped `make dev`?)"
            )
        os.environ.update(sandbox.environment())
        systems = ", ".join(
            f"{name} {info.get('url') or info.get('inbox') or info.get('hook_url')}"
            for name, info in sandbox.systems.items()
        )
        print(f"Sandbox systems: {systems}")
        alert_cursors = tick_alert_sensors(defs, instance, {})
        cursor = None
        for poll, step in enumerate(steps, start=1):
            now = sandbox.advance_clock(step)
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=defs.resources
            )
            tick = sensor.evaluate_tick(context)
            cursor = tick.cursor
            for request in tick.run_requests:
                tags = {
                    **request.tags,
                    "dagster/sensor_name": WAREHOUSE_SENSOR,
                    "integration_assets/trigger": "demo",
                }
                runs.append(
                    _run(
                        warehouse_job,
                        instance,
                        tags,
                        f"poll {poll}/{len(steps)} at {now}: {WAREHOUSE_JOB} ({request.tags.get('warehouse/new_files')} new files)",
                    )
                )
            runs.append(
                _run(
                    job,
                    instance,
                    {"integration_assets/trigger": "demo"},
                    f"poll {poll}/{len(steps)} at {now}: {JOB_NAME}",
                )
            )
            alert_cursors = tick_alert_sensors(defs, instance, alert_cursors)
    from integration_assets.storage.raw_log import RawLog
    from integration_assets.storage.warehouse import Warehouse

    report = build_report(RawLog(data_dir / "raw"), Warehouse(data_dir / "warehouse.duckdb"))
    wall = time.monotonic() - started
    passed = sum(run["checks_passed"] for run in runs)
    failed = sum(len(run["checks_failed"]) for run in runs)
    print(f"\nCheck evaluations across the {len(runs)} runs: {passed} passed, {failed} failed.")
    print(render_text(report))
    print(alerts_summary(data_dir))
    extraction = report["extraction"]
    print(
        f"\nExtraction: {extraction['records']} order versions in {extraction['seconds']}s "
        f"({extraction['orders_per_second']} orders/s over HTTP, retries included). Demo wall time: {wall:.1f}s."
    )
    print(
        "\nWhere to look next:\n"
        "  make dev                          the Dagster UI on http://127.0.0.1:3000 (these runs are in its run list)\n"
        "  .venv/bin/integration-assets report --json   counts, check results and every count-balance equation\n"
        "  .venv/bin/integration-assets owners          what each owner has to act on: open exceptions, failed checks\n"
        f"  the warehouse                     {data_dir / 'warehouse.duckdb'} (staging.*, core.*, reporting.*, ops.*)\n"
        f"  the raw log                       {data_dir / 'raw'} (immutable batch files with manifests)"
    )
    return {"runs": runs, "report": report, "wall_seconds": wall}
