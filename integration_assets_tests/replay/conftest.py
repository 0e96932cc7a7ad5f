"""A live business built incrementally over several polls, every stream, to replay from its raw log.

The delivery scenario (`tiny` plus a business customer, a refused email and a big refund) with the
`warehouse` scenario's file drops added, so the replay covers the WMS inbox too. The live side is the
delivery harness (`integration_assets_tests/delivery/conftest.py`) with the sandbox WMS writing into
the stack's inbox.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

from integration_assets.local_stack import SCENARIOS_DIR as SCENARIOS
from integration_assets.sandbox.scenario import load_scenario
from integration_assets.sandbox.server import start_sandbox_systems
from integration_assets_tests.delivery.conftest import Stack, _stack_on, delivery_scenario

SOURCE_GROUPS = ("warehouse", "products", "orders", "payments", "finance", "customers")
DERIVED_GROUPS = ("inventory", "returns", "reporting")


def replay_scenario(folder: Path) -> Path:
    """The delivery scenario plus WMS file drops (shipments, receipts, counts, returns, bad and resent files)."""
    raw = yaml.safe_load(delivery_scenario(folder).read_text())
    warehouse = yaml.safe_load((SCENARIOS / "warehouse.yaml").read_text())["warehouse"]
    warehouse["return_receipts"].pop("explicit", None)  # it names a story of the warehouse scenario
    # The WMS re-sends an export under another name: recognised by its sha256, applied once.
    warehouse["duplicate_files"] = [{"at": "+9h", "of": "shipments_20261120T19.csv"}]
    warehouse["initial_stock"].append({"sku": "CASE-SLIM", "location": "WH-EAST", "quantity": 10})
    raw["warehouse"] = warehouse
    raw["name"] = "replay"
    path = folder / "replay.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class LiveBusiness:
    stack: Stack
    raw_dir: Path
    warehouse_path: Path
    audit_dir: Path

    def poll(self, hours: float) -> None:
        """Move the shop clock, read every source, build core and marts, deliver: one hourly sync."""
        self.stack.systems.clock.advance(timedelta(hours=hours))
        for groups in (SOURCE_GROUPS, DERIVED_GROUPS):
            result = self.stack.run(*groups)
            assert all(not event.is_step_failure for event in result.all_events), [
                event.message for event in result.all_events if event.is_failure
            ]
        self.stack.deliver()


@contextmanager
def open_live_business(tmp_path: Path, scenario_path: Path | None = None) -> Iterator[LiveBusiness]:
    scenario_path = scenario_path or replay_scenario(tmp_path)
    scenario = load_scenario(scenario_path)
    previous_audit_dir = os.environ.get("INTEGRATION_ASSETS_AUDIT_DIR")
    os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = str(tmp_path / "audit")
    try:
        with start_sandbox_systems(scenario, warehouse_inbox=tmp_path / "inbox") as systems:
            for stack in _stack_on(systems, scenario, tmp_path, hours=2):
                yield LiveBusiness(
                    stack, tmp_path / "raw", tmp_path / "warehouse.duckdb", tmp_path / "audit"
                )
    finally:
        if previous_audit_dir is None:
            os.environ.pop("INTEGRATION_ASSETS_AUDIT_DIR", None)
        else:
            os.environ["INTEGRATION_ASSETS_AUDIT_DIR"] = previous_audit_dir
