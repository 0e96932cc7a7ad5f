"""What the end-to-end tests share to drive a real webserver: start it, and talk to its GraphQL API the
way an operator's script does, with Dagster's own client (`dagster_graphql.DagsterGraphQLClient`)."""

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from integration_assets_tests.e2e.ui_stack import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# A run started from the UI runs each step in its own process by default; in-process keeps a test short.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

REEXECUTE = """
mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""


def write_dagster_home(home: Path) -> Path:
    """A Dagster home whose runs start as soon as they are launched (no daemon to dequeue them)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    return home


@contextmanager
def running_webserver(env: dict) -> Iterator[int]:
    """`dagster-webserver` on a free port with `env`, up and answering; stopped (by its pid) on exit."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, server, 180, "the webserver")
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def graphql_client(port: int) -> DagsterGraphQLClient:
    return DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60)


def execute(client: DagsterGraphQLClient, document: str, variables: dict | None = None) -> dict:
    """Send a GraphQL document through the client's own transport; its `data`.

    The client has public methods to launch a run and read its status, none to list assets, read
    check executions or re-execute a run. `_execute` is what its public methods send their documents
    through (a refused query or a server error raised as DagsterGraphQLClientError), so ours go the
    same way; this is the one place that reaches into it."""
    return client._execute(document, variables)


def wait_for_run(
    client: DagsterGraphQLClient, run_id: str, seconds: float = 300
) -> DagsterRunStatus:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in FINISHED:
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {seconds:.0f}s")


def reexecute(client: DagsterGraphQLClient, parent_run_id: str, strategy: str) -> str:
    """What the UI's "Re-execute" sends (strategy FROM_FAILURE or ALL_STEPS); the new run's id."""
    launched = execute(
        client, REEXECUTE, {"params": {"parentRunId": parent_run_id, "strategy": strategy}}
    )["launchRunReexecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]
