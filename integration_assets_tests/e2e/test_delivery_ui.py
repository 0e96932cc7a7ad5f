"""The operator's way: launch the hourly sync from the webserver's GraphQL API (what the UI's
"Materialize" sends), then "Re-execute" it, and count the documents at the sandbox ERP, CRM and WMS."""

import os
import sys
import time
from pathlib import Path

import pytest
import requests

from integration_assets.local_stack import SCENARIOS_DIR, start_sandbox
from integration_assets_tests.e2e.test_cli_and_ui import _graphql, running_webserver

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e

# A run started from the UI runs each step in its own process by default; in-process keeps the test short.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
REEXECUTE = """
mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def _gql(port: int, query: str, variables: dict) -> dict:
    response = requests.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _wait_for(port: int, run_id: str, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = _gql(port, STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {seconds:.0f}s")


def _documents(systems: dict) -> dict:
    erp = requests.get(f"{systems['erp']['url']}/_sandbox/erp/stats", timeout=10).json()
    crm = requests.get(f"{systems['crm']['url']}/_sandbox/crm/stats", timeout=10).json()
    wms = requests.get(f"{systems['wms']['url']}/_sandbox/wms/stats", timeout=10).json()
    return {"erp": erp["documents"], "crm": crm["documents"], "wms": wms["reservations"]}


def test_launching_then_re_executing_from_the_ui_creates_no_second_document(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    data = tmp_path / "data"
    env = {**os.environ, "INTEGRATION_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    os.environ["INTEGRATION_ASSETS_DATA_DIR"] = str(data)  # where start_sandbox puts the WMS inbox
    try:
        sandbox = start_sandbox(SCENARIOS_DIR / "tiny.yaml")
    finally:
        del os.environ["INTEGRATION_ASSETS_DATA_DIR"]
    with sandbox, running_webserver({**env, **sandbox.environment()}) as port:
        sandbox.advance_clock("12h")
        location = _graphql(
            port, "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
        )["workspaceOrError"]["locationEntries"][0]["name"]
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "storefront_hourly_sync",
            },
            "runConfigData": IN_PROCESS,
        }
        launched = _gql(port, LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        first = launched["run"]["runId"]
        assert _wait_for(port, first) == "SUCCESS"
        after_first = _documents(sandbox.systems)
        assert after_first["erp"]["sales_order"] >= 3 and after_first["crm"]["Account"] >= 2
        assert after_first["wms"] >= 2

        again = _gql(port, REEXECUTE, {"params": {"parentRunId": first, "strategy": "ALL_STEPS"}})
        again = again["launchRunReexecution"]
        assert again["__typename"] == "LaunchRunSuccess", again
        assert _wait_for(port, again["run"]["runId"]) == "SUCCESS"
        assert _documents(sandbox.systems) == after_first
