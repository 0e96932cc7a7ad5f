"""The sandbox as its own process (as in `make demo`), with a start-up wait sized for big scenarios."""

from __future__ import annotations

from pathlib import Path

from integration_assets.local_stack import SandboxProcess, start_sandbox

READY_SECONDS_PER_1000_ORDERS = 5.0
READY_MINIMUM_SECONDS = 60.0


def start_sandbox_process(scenario: Path, data_dir: Path, orders: int) -> SandboxProcess:
    """`python -m integration_assets.sandbox` for `scenario`, its inbox and alert log under
    `data_dir`; waits (bounded, longer for more orders) until it is ready."""
    timeout = max(READY_MINIMUM_SECONDS, orders / 1000 * READY_SECONDS_PER_1000_ORDERS)
    return start_sandbox(scenario, data_dir=data_dir, ready_timeout_seconds=timeout)
