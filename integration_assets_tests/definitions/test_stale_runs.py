"""A run left marked in progress by a killed process releases its warehouse-pool slot."""

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from integration_assets.stale_runs import release_orphaned_runs
from integration_assets.storage.warehouse import WAREHOUSE_POOL


def test_orphaned_runs_are_canceled_and_free_their_slots(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        orphan = instance.add_run(
            DagsterRun(job_name="storefront_hourly_sync", status=DagsterRunStatus.STARTED)
        )
        assert storage.claim_concurrency_slot(
            WAREHOUSE_POOL, orphan.run_id, "core__order_events"
        ).is_claimed

        assert (
            release_orphaned_runs(instance, quiet_seconds=3600) == []
        )  # not silent long enough: left alone
        assert instance.get_run_by_id(orphan.run_id).status == DagsterRunStatus.STARTED

        assert release_orphaned_runs(instance, quiet_seconds=0) == [orphan.run_id]
        assert instance.get_run_by_id(orphan.run_id).status == DagsterRunStatus.CANCELED
        assert storage.get_concurrency_info(WAREHOUSE_POOL).active_slot_count == 0
        other = instance.add_run(
            DagsterRun(job_name="storefront_hourly_sync", status=DagsterRunStatus.STARTED)
        )
        assert storage.claim_concurrency_slot(
            WAREHOUSE_POOL, other.run_id, "core__order_events"
        ).is_claimed
