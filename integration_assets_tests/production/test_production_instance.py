"""deploy/production/dagster.yaml on the real PostgreSQL server: storage, queue, pools and run retries."""

import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import RunFailureReason
from dagster._core.execution.retries import auto_reexecution_should_retry_run

from integration_assets.definitions import defs
from integration_assets.systems.pools import ALL_POOLS, STOREFRONT_API_POOL, WAREHOUSE_POOL

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "deploy" / "production"
DAGSTER = Path(sys.executable).parent / "dagster"


@pytest.fixture
def production_env(postgres_database, tmp_path, monkeypatch) -> dict[str, str]:
    """The variables the production config reads, pointing at a fresh database of the real server."""
    env = {**postgres_database.dagster_env(), "DAGSTER_STORAGE_DIR": str(tmp_path / "storage")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def production_instance(production_env):
    with dg.DagsterInstance.from_config(str(PRODUCTION)) as instance:
        yield instance


def test_runs_events_and_schedules_are_stored_in_postgresql(production_instance, postgres_database):
    instance = production_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    with postgres_database.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename IN ('runs', 'event_logs')")
        assert cursor.fetchone() == (2,)
    connection.close()


def test_runs_are_queued_eight_at_a_time_and_retried_twice_from_failure(production_instance):
    instance = production_instance
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure


def test_every_pool_admits_one_step_unless_raised(production_instance):
    instance = production_instance
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    storage = instance.event_log_storage
    for pool in ALL_POOLS:
        storage.initialize_concurrency_limit_to_default(pool)
        assert storage.get_concurrency_info(pool).slot_count == 1, pool
    storage.set_concurrency_slots(STOREFRONT_API_POOL, 3)  # what the CLI below does
    assert storage.get_concurrency_info(STOREFRONT_API_POOL).slot_count == 3


def test_the_documented_cli_sets_one_pools_limit_on_the_production_instance(production_env):
    env = {**production_env, "DAGSTER_HOME": str(PRODUCTION), "PATH": str(DAGSTER.parent)}
    result = subprocess.run(
        [str(DAGSTER), "instance", "concurrency", "set", WAREHOUSE_POOL, "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = subprocess.run(
        [str(DAGSTER), "instance", "concurrency", "get", "--all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f'"{WAREHOUSE_POOL}": 0 / 1 slots occupied' in listed.stdout
    with dg.DagsterInstance.from_config(str(PRODUCTION)) as instance:
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1


def _failed_run(instance: dg.DagsterInstance, job_name: str) -> dg.DagsterRun:
    job = defs.resolve_job_def(job_name)
    run = dg.DagsterRun(
        job_name=job_name,
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.FAILURE,
        tags=dict(job.run_tags),
    )
    return instance.add_run(run)


def test_a_failed_hourly_or_file_sync_run_is_retried_and_an_operator_job_is_not(
    production_instance,
):
    """What the daemon decides for a run that failed in a step, given the jobs' real tags."""
    instance = production_instance
    hourly = defs.resolve_job_def("storefront_hourly_sync")
    assert hourly.run_tags["dagster/max_retries"] == "2"
    assert hourly.run_tags["dagster/retry_strategy"] == "FROM_FAILURE"
    for job_name, retried in (
        ("storefront_hourly_sync", True),
        ("warehouse_file_sync", True),
        ("replay_dead_letters", False),
        ("review_approvals", False),
    ):
        run = _failed_run(instance, job_name)
        decision = auto_reexecution_should_retry_run(instance, run, RunFailureReason.STEP_FAILURE)
        assert decision is retried, job_name
