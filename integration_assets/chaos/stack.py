"""One chaos case's world: the sandbox systems served over HTTP, a data dir, a Dagster instance on disk.

The pipeline runs exactly as the hourly schedule runs it (the same definitions, the same resources read
from the environment), in process, with shorter retry backoffs so that a storm of faults costs seconds.
`python -m integration_assets.chaos.stack` runs one hourly sync the same way in a process of its own
(the case that kills a run with `kill -9`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from integration_assets.chaos.scenario import write_scenario
from integration_assets.local_stack import systems_environment
from integration_assets.sandbox.server import RunningSystems, start_sandbox_systems
from integration_assets.storage.warehouse import Warehouse

# Every client retries as in production, only with backoffs a hundred times shorter.
FAST_RETRIES = {"backoff_base_seconds": 0.005, "backoff_max_seconds": 0.2, "max_retries": 6}
CHAOS_TAGS = {"integration_assets/trigger": "chaos"}
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Variables a case sets for its own world and puts back afterwards.
ENVIRONMENT_KEYS = (
    "INTEGRATION_ASSETS_DATA_DIR",
    "INTEGRATION_ASSETS_AUDIT_DIR",
    "DAGSTER_HOME",
    "ALERT_WEBHOOK_URL",
    "REPORTING_DATABASE_URL",
)


@dataclass(frozen=True)
class RunRecord:
    """One run of a case: what it was, whether it succeeded, which steps failed."""

    label: str
    run_id: str
    success: bool
    failed_steps: tuple[str, ...] = ()


def chaos_resources(client_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definitions' resources, the clients with `FAST_RETRIES` and `client_settings`."""
    from integration_assets.definitions import RESOURCES, client_resources

    return {**RESOURCES, **client_resources(**{**FAST_RETRIES, **(client_settings or {})})}


def run_selection(
    instance: dg.DagsterInstance,
    job_name: str,
    label: str,
    client_settings: dict[str, Any] | None = None,
    run_config: dict[str, Any] | None = None,
) -> RunRecord:
    """Materialize what the job `job_name` selects, in process, on `instance`."""
    from integration_assets.definitions import defs

    job = defs.resolve_job_def(job_name)
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*job.asset_layer.executable_asset_keys),
        resources=chaos_resources(client_settings),
        instance=instance,
        raise_on_error=False,
        tags={**CHAOS_TAGS, "chaos/label": label},
        run_config={**QUIET, **(run_config or {})},
    )
    failed_steps = tuple(
        sorted({e.step_key for e in result.all_events if e.is_step_failure and e.step_key})
    )
    return RunRecord(label, result.run_id, result.success, failed_steps)


@dataclass
class ChaosStack:
    """A case's sandbox, data dir and instance; `with ChaosStack(folder, raw) as stack: ...`."""

    folder: Path
    raw_scenario: dict[str, Any]
    client_settings: dict[str, Any] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    systems: RunningSystems | None = None
    instance: dg.DagsterInstance | None = None
    _saved: dict[str, str | None] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def dagster_home(self) -> Path:
        return self.folder / "dagster"

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.data_dir / "warehouse.duckdb")

    def __enter__(self) -> ChaosStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        scenario = write_scenario(self.raw_scenario, self.folder)
        self.systems = start_sandbox_systems(
            scenario, warehouse_inbox=self.data_dir / "inbox" / "warehouse"
        )
        try:
            self._saved = {key: os.environ.get(key) for key in ENVIRONMENT_KEYS}
            for key in ("ALERT_WEBHOOK_URL", "REPORTING_DATABASE_URL"):
                os.environ.pop(key, None)
            self._saved.update({key: os.environ.get(key) for key in self.environment()})
            os.environ.update(self.environment())
            self.instance = dg.DagsterInstance.get()
        except BaseException:
            self.__exit__()  # the sandbox stopped and the environment put back
            raise
        return self

    def environment(self) -> dict[str, str]:
        """What a run of this world reads: where the systems are, the data dir, the Dagster home."""
        assert self.systems is not None
        return {
            **systems_environment(self.systems.systems()),
            "INTEGRATION_ASSETS_DATA_DIR": str(self.data_dir),
            "INTEGRATION_ASSETS_AUDIT_DIR": str(self.data_dir / "audit"),
            "DAGSTER_HOME": str(self.dagster_home),
        }

    def __exit__(self, *exc_info: object) -> None:
        if self.instance is not None:
            self.instance.dispose()
        if self.systems is not None:
            self.systems.stop()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def tally(self) -> tuple[int, int, int]:
        """(runs, failed runs, records staging has read from raw: every stream, duplicates included)."""
        with self.warehouse.connect(read_only=True) as con:
            found = con.execute("SELECT coalesce(sum(records_read), 0) FROM staging.batches")
            records = int(found.fetchone()[0])
        return len(self.runs), sum(not run.success for run in self.runs), records

    def advance(self, hours: float = 1) -> None:
        assert self.systems is not None
        self.systems.clock.advance(timedelta(hours=hours))
        if self.systems.storefront.warehouse is not None:
            self.systems.storefront.warehouse.sync()

    def hourly(self, label: str) -> RunRecord:
        """The warehouse file sync, then the hourly sync, as the sensor and the schedule run them."""
        assert self.instance is not None
        files = run_selection(
            self.instance, "warehouse_file_sync", f"{label} files", self.client_settings
        )
        self.runs.append(files)
        run = run_selection(self.instance, "storefront_hourly_sync", label, self.client_settings)
        self.runs.append(run)
        return run

    def hours(self, count: int, label: str = "hour") -> list[RunRecord]:
        """`count` hours: advance the clock an hour, run; the runs' records."""
        records = []
        for hour in range(1, count + 1):
            self.advance(1)
            records.append(self.hourly(f"{label} {hour}"))
        return records


def main() -> None:
    """One hourly sync in this process, on the environment's data dir and Dagster home."""
    with dg.DagsterInstance.get() as instance:
        run = run_selection(instance, "storefront_hourly_sync", "subprocess")
    print(f"run {run.run_id} success={run.success}")


if __name__ == "__main__":
    main()
