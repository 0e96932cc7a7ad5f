"""Runs a stopped `make dev` left marked in progress hold their warehouse-pool slots for ever; release them."""

from __future__ import annotations

import time

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus

IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def release_orphaned_runs(instance: dg.DagsterInstance, quiet_seconds: float = 300.0) -> list[str]:
    """Cancel runs marked in progress whose event log has been silent for `quiet_seconds`, and free
    their concurrency slots. A live run writes events at every step; an orphan (its process was
    killed with `make dev`) never will, and without this every later run waits for its slot forever.
    """
    released = []
    now = time.time()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        logs = instance.all_logs(record.dagster_run.run_id)
        last = logs[-1].timestamp if logs else record.create_timestamp.timestamp()
        if now - last < quiet_seconds:
            continue
        instance.report_run_canceled(
            record.dagster_run,
            message=f"canceled by integration-assets: no event for {now - last:.0f}s, its process is gone",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        released.append(record.dagster_run.run_id)
    return released
