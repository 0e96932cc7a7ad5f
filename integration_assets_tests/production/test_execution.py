"""The batch jobs fork their steps from a server that imported the project once (defs/execution.py)."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from integration_assets.definitions import defs
from integration_assets.defs.execution import PRELOADED_MODULES, PRELOADED_WITH_GATES
from integration_assets.defs.orders.schedules import hourly_sync_job
from integration_assets.defs.warehouse.sensors import warehouse_file_sync

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).parent / "dagster"


def _start_method(job_name: str) -> dict:
    config = defs.get_job_def(job_name).run_config  # the job's default, as the launchpad shows it
    return config["execution"]["config"]["multiprocess"]["start_method"]


def test_the_batch_jobs_default_to_a_preloaded_forkserver():
    assert _start_method(hourly_sync_job.name) == {
        "forkserver": {"preload_modules": PRELOADED_WITH_GATES}
    }
    assert _start_method(warehouse_file_sync.name) == {
        "forkserver": {"preload_modules": PRELOADED_MODULES}
    }


def test_a_job_runs_its_steps_forked_from_the_preloaded_server(tmp_path):
    """The real executor, from the CLI, with the job's default config: every step succeeds."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "INTEGRATION_ASSETS_DATA_DIR": str(tmp_path / "data"),
    }
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [str(DAGSTER), "job", "execute", "-m", "integration_assets.definitions"]
        + ["-j", warehouse_file_sync.name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Executing steps using multiprocess executor" in output
    # Read the outcome from the run's event log, not from the console, where the step processes'
    # lines can interleave.
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    succeeded = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
    failed = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert len(succeeded) >= 3 and not failed
