"""What the end-to-end UI tests share: the demo run into a temporary data dir and Dagster home, and
the UI started the way `make dev` starts it (`integration-assets dev`), stopped by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = ROOT / "integration_assets" / "sandbox" / "scenarios"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def run_demo(base: Path, scenario: Path) -> tuple[dict, str]:
    """`integration-assets demo --scenario` into `base`/data and the Dagster home `base`/home.
    Returns the environment that points at them (for the CLI, the webserver, `dev`) and the summary."""
    env = {
        **os.environ,
        "INTEGRATION_ASSETS_DATA_DIR": str(base / "data"),
        "DAGSTER_HOME": str(base / "home"),
    }
    (base / "home").mkdir(parents=True)
    # An instance of its own, with the project's telemetry setting (dagster.yaml: off).
    (base / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    demo = subprocess.run(
        [str(BIN / "integration-assets"), "demo", "--scenario", str(scenario)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    return env, demo.stdout


def wait_until_up(
    port: int, process: subprocess.Popen, seconds: float, what: str, log: Path | None = None
) -> None:
    """Until the Dagster webserver on `port` answers `/server_info`; fails naming `what` (and the
    tail of its `log`) when `process` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        output = f": {log.read_text()[-3000:]}" if log is not None else ""
        if process.poll() is not None:
            raise AssertionError(f"{what} exited{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up in {seconds:.0f}s{output}")
        time.sleep(0.5)


def _stop_group(process: subprocess.Popen, grace: float = 15) -> None:
    """Ctrl-C for the whole group (the sandbox, `dagster dev` and its webserver, daemon and code
    server), as in a terminal; then SIGKILL for whatever is left: `dagster dev` started in the
    background does not always act on SIGINT or SIGTERM."""
    group = process.pid  # start_new_session: the group's id is the leader's pid
    try:
        os.killpg(group, signal.SIGINT)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def running_dev(env: dict, scenario: Path, log: Path) -> Iterator[int]:
    """`integration-assets dev --scenario` (the sandbox plus `dagster dev`, as `make dev` runs it) on
    free ports with `env`, its output in `log`; yields the UI's port once it answers."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                str(BIN / "integration-assets"),
                "dev",
                "--scenario",
                str(scenario),
                "--port",
                str(port),
                "--sandbox-port",
                "0",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(port, process, 240, "`integration-assets dev`", log)
        yield port
    finally:
        _stop_group(process)
