"""Rebuild staging, core and reporting from the raw log alone, into a fresh warehouse file.

The project's own asset definitions and checks run in process (`dagster.materialize`), so a replay
exercises exactly the code the hourly sync runs, blocking gates included. What is left out, and why:

- `raw/*`: the extract and landing assets call the sources (storefront, payment provider, CRM, ERP)
  or sweep the WMS inbox: a replay reads raw, it never fetches or lands it (the raw log is opened
  read-only, so an attempt fails loudly instead of writing);
- `delivery/*`: they enqueue into ops.outbox and drain to the targets; the delivery-intended state
  is computed by calling the planners instead (`intended.py`), which writes nothing anywhere;
- `ops/*`: books of what the outbox and the clients did, which is not raw;
- partitioned assets (`reporting/orders_by_hour`): built window by window, each when it ran, not in
  one unpartitioned run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from integration_assets.replay.read_only_raw import ReadOnlyRawLogResource
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets.storage.warehouse import Warehouse

# Asset key prefixes a replay never materializes (see the module docstring for why).
NOT_REPLAYED_PREFIXES = ("raw", "delivery", "ops")


class ReplayTargetExists(FileExistsError):
    """A replay goes into a fresh file: it never overwrites (nor mixes with) an existing warehouse."""


@dataclass
class ReplayOutcome:
    warehouse: Warehouse
    replayed_assets: list[str]
    seconds: float
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.failed_steps


def is_replayed(key: dg.AssetKey) -> bool:
    return key.path[0] not in NOT_REPLAYED_PREFIXES


def replayed_definitions(defs: dg.Definitions) -> tuple[list, list]:
    """The asset definitions and checks a replay runs: those whose every key is replayed.

    Only these are handed to Dagster, so the resources the left-out assets need (the source and
    target clients, the inbox) are not even required: a replay cannot reach a system.
    """
    assets = [
        a
        for a in defs.assets
        if all(is_replayed(key) for key in a.keys) and a.partitions_def is None
    ]
    checks = [c for c in defs.asset_checks if all(is_replayed(s.asset_key) for s in c.check_specs)]
    return assets, checks


def replay(
    raw_dir: Path, into: Path, defs: dg.Definitions | None = None, log_level: str = "WARNING"
) -> ReplayOutcome:
    """Materialize every replayed asset and its checks from `raw_dir` (read-only) into the new file `into`.

    `into` must not exist yet. A failed blocking gate is not a replay failure (the live pipeline
    would have stopped there too; the digest then shows the same state), a failed step is.
    The console shows Dagster's events from `log_level` up (quarantines and blocked batches warn).
    """
    if defs is None:
        from integration_assets.definitions import defs
    into = Path(into)
    if into.exists():
        raise ReplayTargetExists(f"{into} exists: a replay goes into a fresh warehouse file")
    if not Path(raw_dir).is_dir():
        raise FileNotFoundError(f"no raw log at {raw_dir}: nothing to replay")
    assets, checks = replayed_definitions(defs)
    keys = sorted((key for a in assets for key in a.keys), key=lambda key: key.to_user_string())
    started = time.monotonic()
    result = dg.materialize(
        [*assets, *checks],
        resources={
            "raw_log": ReadOnlyRawLogResource(root=str(raw_dir)),
            "warehouse": WarehouseResource(path=str(into)),
            # never publishes: a replay rebuilds into a scratch file, not into the reporting database
            "reporting_database": ReportingDatabaseResource(read_environment=False),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    seconds = time.monotonic() - started
    failed_steps = [
        f"{event.step_key}: {event.message}" for event in result.all_events if event.is_step_failure
    ]
    failed_checks = [
        f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    return ReplayOutcome(
        Warehouse(into),
        [key.to_user_string() for key in keys],
        seconds,
        failed_steps,
        failed_checks,
    )
