"""The operator's way: launch the hourly sync from the webserver's GraphQL API (what the UI's
"Materialize" sends), then "Re-execute" it, and count the documents at the sandbox ERP, CRM and WMS."""

import os

import pytest
import requests
from dagster import DagsterRunStatus

from integration_assets.local_stack import SCENARIOS_DIR, start_sandbox
from integration_assets_tests.e2e.graphql_ops import (
    IN_PROCESS,
    graphql_client,
    reexecute,
    running_webserver,
    wait_for_run,
    write_dagster_home,
)

pytestmark = pytest.mark.e2e


def _documents(systems: dict) -> dict:
    erp = requests.get(f"{systems['erp']['url']}/_sandbox/erp/stats", timeout=10).json()
    crm = requests.get(f"{systems['crm']['url']}/_sandbox/crm/stats", timeout=10).json()
    wms = requests.get(f"{systems['wms']['url']}/_sandbox/wms/stats", timeout=10).json()
    return {"erp": erp["documents"], "crm": crm["documents"], "wms": wms["reservations"]}


def test_launching_then_re_executing_from_the_ui_creates_no_second_document(tmp_path):
    home = write_dagster_home(tmp_path / "home")
    data = tmp_path / "data"
    env = {**os.environ, "INTEGRATION_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    os.environ["INTEGRATION_ASSETS_DATA_DIR"] = str(data)  # where start_sandbox puts the WMS inbox
    try:
        sandbox = start_sandbox(SCENARIOS_DIR / "tiny.yaml")
    finally:
        del os.environ["INTEGRATION_ASSETS_DATA_DIR"]
    with sandbox, running_webserver({**env, **sandbox.environment()}) as port:
        sandbox.advance_clock("12h")
        client = graphql_client(port)
        first = client.submit_job_execution("storefront_hourly_sync", run_config=IN_PROCESS)
        assert wait_for_run(client, first) == DagsterRunStatus.SUCCESS
        after_first = _documents(sandbox.systems)
        assert after_first["erp"]["sales_order"] >= 3 and after_first["crm"]["Account"] >= 2
        assert after_first["wms"] >= 2

        again = reexecute(client, first, "ALL_STEPS")
        assert wait_for_run(client, again) == DagsterRunStatus.SUCCESS
        assert _documents(sandbox.systems) == after_first
