"""Start and stop the sandbox systems as a child process, the way `make demo` and `make dev` use them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from integration_assets.storage.resources import default_data_dir

SCENARIOS_DIR = Path(__file__).parent / "sandbox" / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "default.yaml"
READY_TIMEOUT_SECONDS = 60.0


def systems_environment(systems: dict) -> dict[str, str]:
    """The variables the Dagster resources read, pointing at the sandbox systems of a ready file."""
    storefront = systems["storefront"]
    environment = {
        "STOREFRONT_URL": storefront["url"],
        "STOREFRONT_ACCESS_TOKEN": storefront["access_token"],
        "STOREFRONT_API_VERSION": storefront["api_version"],
    }
    payments = systems.get("payments")
    if payments:
        environment["PAYMENTS_URL"] = payments["url"]
        environment["PAYMENTS_SECRET_KEY"] = payments["secret_key"]
    warehouse = systems.get("warehouse")
    if warehouse:
        environment["WAREHOUSE_INBOX"] = warehouse["inbox"]
    erp = systems.get("erp")
    if erp:
        environment.update(
            ERP_URL=erp["url"],
            ERP_CLIENT_ID=erp["client_id"],
            ERP_CLIENT_SECRET=erp["client_secret"],
        )
    crm = systems.get("crm")
    if crm:
        environment.update(
            CRM_URL=crm["url"],
            CRM_CLIENT_ID=crm["client_id"],
            CRM_CLIENT_SECRET=crm["client_secret"],
            CRM_DEFAULT_OWNER_ID=crm["default_owner_id"],
        )
    wms = systems.get("wms")
    if wms:
        environment.update(WMS_URL=wms["url"], WMS_API_KEY=wms["api_key"])
    alerts = systems.get("alerts")
    if alerts:
        environment["ALERT_WEBHOOK_URL"] = alerts["hook_url"]
    return environment


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    systems: dict

    @property
    def storefront_url(self) -> str:
        return self.systems["storefront"]["url"]

    def environment(self) -> dict[str, str]:
        """The variables the Dagster resources read, pointing at this sandbox."""
        return systems_environment(self.systems)

    def advance_clock(self, step: str) -> str:
        response = requests.post(
            f"{self.storefront_url}/_sandbox/clock", json={"advance": step}, timeout=10
        )
        response.raise_for_status()
        return response.json()["now"]

    def stop(self) -> None:
        """Stop exactly the process we started (never by name), first politely, then firmly."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _ready(ready_file: Path) -> bool:
    try:
        json.loads(ready_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return True


def start_sandbox(
    scenario: Path = DEFAULT_SCENARIO,
    port: int = 0,
    clock_speed: float | None = None,
    data_dir: Path | None = None,
    ready_timeout_seconds: float = READY_TIMEOUT_SECONDS,
) -> SandboxProcess:
    """Run `python -m integration_assets.sandbox` and wait (bounded) until it says where it listens.

    `data_dir` (default: the project's data dir) holds the WMS inbox and the alert receiver's log; a
    big scenario needs a longer `ready_timeout_seconds` (the sandbox builds its order book first)."""
    data_dir = default_data_dir() if data_dir is None else data_dir
    ready_file = Path(tempfile.mkdtemp(prefix="integration-assets-sandbox-")) / "ready.json"
    command = [
        sys.executable,
        "-m",
        "integration_assets.sandbox",
        "--scenario",
        str(scenario),
        "--port",
        str(port),
        "--ready-file",
        str(ready_file),
        "--warehouse-inbox",
        str(data_dir / "inbox" / "warehouse"),
        "--alerts-log",
        str(data_dir / "alerts_received.jsonl"),
    ]
    if clock_speed is not None:
        command += ["--clock-speed", str(clock_speed)]
    process = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_timeout_seconds
    while not _ready(ready_file):
        if process.poll() is not None:
            raise RuntimeError(
                f"the sandbox exited with code {process.returncode} before it was ready: {' '.join(command)}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sandbox was not ready after {ready_timeout_seconds:.0f}s")
        time.sleep(0.05)
    return SandboxProcess(process, json.loads(ready_file.read_text()))
