"""Layer 1: the definitions load, and their structure is a reviewed snapshot."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from integration_assets.definitions import defs
from integration_assets.defs.orders.names import GATING_CHECKS, STAGING_ORDERS

ROOT = Path(__file__).resolve().parents[2]


def structure() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "owners": list(node.owners),
            "kinds": sorted(node.kinds),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "has_description": bool(node.description),
            "freshness_policy": node.freshness_policy is not None,
        }
    checks = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}:{'blocking' if spec.blocking else 'non-blocking'}"
        for check_key in graph.asset_check_keys
        for spec in [graph.get_check_spec(check_key)]
    )
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(job.name for job in defs.jobs or []),
        "schedules": sorted(
            (s.name, s.cron_schedule, s.default_status.value) for s in defs.schedules or []
        ),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "resources": sorted(defs.resources or {}),
    }


def test_definitions_structure_snapshot(snapshot):
    assert structure() == snapshot


def test_every_asset_has_an_owner_a_group_and_an_operator_description():
    for key, node in structure()["assets"].items():
        assert node["owners"], key
        assert node["group"] != "default", key
        assert node["has_description"], key


def test_gating_checks_block_promotion_from_staging():
    checks = structure()["checks"]
    for name in GATING_CHECKS:
        assert f"{STAGING_ORDERS.to_user_string()}:{name}:blocking" in checks


def test_schedule_requests_one_hourly_sync_run_per_tick():
    schedule = defs.resolve_schedule_def("storefront_hourly_sync_schedule")
    tick = schedule.evaluate_tick(
        dg.build_schedule_context(
            scheduled_execution_time=datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
        )
    )
    assert len(tick.run_requests) == 1
    assert schedule.job_name == "storefront_hourly_sync"
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("5 * * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("storefront_hourly_sync")
    # The warehouse stream is triggered by its inbox sensor, the hourly-partitioned mart is built
    # per window by its own job, and retention runs daily on its own: not by the hourly sync.
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        key
        for key, node in structure()["assets"].items()
        if node["group"] not in ("warehouse", "reporting_hourly", "maintenance")
    }


def test_dagster_cli_validates_the_workspace():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_warehouse_inbox_sensor_runs_the_file_sync_job_with_blocking_checks():
    sensor = defs.resolve_sensor_def("warehouse_inbox_sensor")
    assert sensor.job_name == "warehouse_file_sync"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    checks = structure()["checks"]
    for kind in ("shipments", "receipts", "stock_counts", "return_receipts"):
        assert f"staging/warehouse/{kind}:count_balance:blocking" in checks
        assert f"staging/warehouse/{kind}:schema_matches_file_kind:blocking" in checks
    assert "staging/warehouse/files:files_accounted_for:blocking" in checks
    for key, node in structure()["assets"].items():
        if node["group"] == "warehouse":
            assert node["owners"] == ["warehouse-ops@example.com"], key
