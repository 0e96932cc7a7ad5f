"""The sandbox as its own process (as in `make demo`), with a start-up wait sized for big scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from integration_assets.local_stack import SandboxProcess

READY_SECONDS_PER_1000_ORDERS = 5.0
READY_MINIMUM_SECONDS = 60.0


def start_sandbox_process(scenario: Path, data_dir: Path, orders: int) -> SandboxProcess:
    """`python -m integration_assets.sandbox` for `scenario`; waits (bounded) for its ready file."""
    ready_file = data_dir / "sandbox-ready.json"
    ready_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "integration_assets.sandbox",
        "--scenario",
        str(scenario),
        "--port",
        "0",
        "--ready-file",
        str(ready_file),
        "--warehouse-inbox",
        str(data_dir / "inbox" / "warehouse"),
        "--alerts-log",
        str(data_dir / "alerts_received.jsonl"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    timeout = max(READY_MINIMUM_SECONDS, orders / 1000 * READY_SECONDS_PER_1000_ORDERS)
    deadline = time.monotonic() + timeout
    while True:
        try:
            systems = json.loads(ready_file.read_text())
            break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        if process.poll() is not None:
            raise RuntimeError(
                f"the sandbox exited with code {process.returncode} before it was ready"
            )
        if time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"the sandbox was not ready after {timeout:.0f}s")
        time.sleep(0.1)
    return SandboxProcess(process, systems)
