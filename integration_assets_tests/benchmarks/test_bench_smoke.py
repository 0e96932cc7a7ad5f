"""The benchmark harness at a tiny size: it runs, writes its results file, and its counts add up.

No time is asserted: this checks the harness, not the pipeline's speed.
"""

import json
import os
from datetime import datetime, timedelta

import duckdb

from benchmarks.peak_scenario import changes_per_hour, incremental_hour
from benchmarks.run import run_benchmark
from benchmarks.targets import FULL_DAY_STAGES

EXPECTED_STAGES = {
    *FULL_DAY_STAGES,
    "settle_after_full_day",
    "incremental_full_history",
    "incremental_empty_history",
}
EXPECTED_TARGETS = {
    "full_day_wall_seconds",
    "full_day_peak_rss_gib",
    "incremental_asset_work_seconds",
    "incremental_full_over_empty_history",
    "extraction_efficiency",
}


def test_incremental_hour_picks_the_hour_closest_to_the_target():
    start = datetime(2026, 12, 14)
    hour = timedelta(hours=1)
    orders = [
        [start + 24 * hour + timedelta(minutes=10)],  # changes in hour 24
        [start + 24 * hour + timedelta(minutes=20), start + 25 * hour + timedelta(minutes=5)],
        [start + 25 * hour + timedelta(minutes=30)],
        [start + 25 * hour + timedelta(minutes=40)],
        [start + 26 * hour],  # exactly on the hour: belongs to hour 25, the interval is (H, H+1]
    ]
    assert changes_per_hour(orders, start) == {24: 2, 25: 4}
    assert incremental_hour(orders, start, target_changed=4) == (25, 4)
    assert incremental_hour(orders, start, target_changed=2) == (24, 2)


def test_harness_at_a_tiny_size_writes_every_stage_and_target(tmp_path):
    results, path = run_benchmark(
        orders=50, incremental=10, results_dir=tmp_path / "results", work_dir=tmp_path / "work"
    )

    written = json.loads(path.read_text())
    assert path.parent == tmp_path / "results"
    assert written == json.loads(json.dumps(results))
    assert set(written["stages"]) >= EXPECTED_STAGES
    assert {target["name"] for target in written["targets"]} == EXPECTED_TARGETS
    assert all(isinstance(target["met"], bool) for target in written["targets"])

    extraction = written["stages"]["extraction_orders"]
    assert extraction["records"] == extraction["orders_served_by_sandbox"] == 50
    assert extraction["bytes"] > 0
    incremental = written["stages"]["incremental_full_history"]
    assert incremental["orders_changed_in_sandbox"] > 0
    assert incremental["orders_extracted"] >= incremental["orders_changed_in_sandbox"]
    assert written["stages"]["incremental_empty_history"]["orders_extracted"] > 0
    assert written["sandbox_alone"]["records"] == 50
    for name in EXPECTED_STAGES:
        assert written["stages"][name]["success"], written["stages"][name]["failed_steps"]
        assert written["stages"][name]["peak_rss_bytes"] > 0
    # Every step of the incremental run with its time: they add up to the stage's step total.
    every_step = incremental["step_seconds"]
    assert len(every_step) == incremental["steps"]
    assert abs(sum(every_step.values()) - incremental["steps_seconds"]) < 0.01 * len(every_step)
    assert incremental["slowest_steps"][0]["step"] == next(iter(every_step))


def test_a_run_audits_only_its_own_exchanges_and_leaves_the_environment_as_it_was(tmp_path):
    """Two runs must not share an audit trail: ops/audit_log ingests every file of its audit dir,
    so another run's files would inflate the delivery stage's rows (seen before this was fixed)."""
    stray = tmp_path / "shared-audit"
    stray.mkdir()
    (stray / "another-run.1.jsonl").write_text('{"not": "this run"}\n')
    environment_before = dict(os.environ)
    os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = str(stray)
    try:
        run_benchmark(
            orders=20, incremental=5, results_dir=tmp_path / "results", work_dir=tmp_path / "work"
        )
        assert os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] == str(stray)
    finally:
        os.environ.clear()
        os.environ.update(environment_before)

    assert sorted(path.name for path in stray.iterdir()) == ["another-run.1.jsonl"]
    full_history = tmp_path / "work" / "full_history"
    own_files = {path.name for path in (full_history / "audit").glob("*.jsonl")}
    with duckdb.connect(str(full_history / "warehouse.duckdb"), read_only=True) as con:
        ingested = {
            row[0]
            for row in con.execute("SELECT DISTINCT audit_file FROM ops.audit_log").fetchall()
        }
    assert ingested and ingested <= own_files
