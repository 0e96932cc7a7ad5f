"""An operator's flow through the webserver's GraphQL API with Dagster's GraphQL client: list the
assets, launch the hourly sync, read its check results; then the ERP refuses our writes, a run fails
in its ERP delivery step, the permission comes back, and "Re-execute from failure" finishes the job
without doubling anything.

The fault is a revoked write permission (403), not an outage: an ERP that is down fails the run at
the ERP customers' extract, before any delivery, and a delivery that meets an outage does not fail
its step at all (its writes wait in the outbox for the next run; `target_reachable` fails). A 403 on
a write fails the delivery step at once (TargetAuthError), which is what re-execution is for.

The sandbox systems serve the delivery scenario from this test's process, so the test flips the
ERP's fault itself; the webserver and the runs it launches reach them over HTTP like any client.
"""

import os
from collections import Counter
from datetime import timedelta

import pytest
from dagster import DagsterRunStatus

from integration_assets.defs.delivery.names import CHECK_TARGET_REACHABLE
from integration_assets.defs.orders.names import GATING_CHECKS
from integration_assets.demo import JOB_NAME
from integration_assets.local_stack import systems_environment
from integration_assets.sandbox.server import start_sandbox_systems
from integration_assets.storage.warehouse import Warehouse
from integration_assets_tests.delivery.conftest import delivery_scenario
from integration_assets_tests.e2e.graphql_ops import (
    IN_PROCESS,
    execute,
    graphql_client,
    reexecute,
    running_webserver,
    wait_for_run,
    write_dagster_home,
)

pytestmark = pytest.mark.e2e

SALES_ORDERS = "delivery/erp/sales_orders"
ERP_SALES_ORDERS_STEP = "delivery__erp__sales_orders"
# What each ERP document was made from: one document per source reference, whatever its external id.
SOURCE_REFERENCE = {
    "customer": "external_id",
    "sales_order": "order_number",
    "invoice": "sales_order_eid",
    "credit_note": "external_id",
    "payment_applied": "reference",
}

ASSETS = "{ assetNodes { assetKey { path } groupName jobNames } }"
CHECK_EXECUTIONS = """
query($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 20) {
    runId status evaluation { success } } }"""
RUN = """
query($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status parentRunId stepStats { stepKey status }
    executionPlan { steps { key } } } } }"""
STEP_FAILURES = """
query($id: ID!) { logsForRun(runId: $id) { __typename
  ... on EventConnection { events { __typename
    ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } } } } } }"""


def _check_execution(client, asset_key: str, check: str, run_id: str) -> tuple[str, bool | None]:
    """The status of `check` on `asset_key` in run `run_id`, and whether its evaluation passed."""
    executions = execute(
        client, CHECK_EXECUTIONS, {"key": {"path": asset_key.split("/")}, "check": check}
    )["assetCheckExecutions"]
    (execution,) = [e for e in executions if e["runId"] == run_id]
    evaluation = execution["evaluation"]
    return execution["status"], None if evaluation is None else evaluation["success"]


def _run(client, run_id: str) -> dict:
    run = execute(client, RUN, {"id": run_id})["runOrError"]
    assert run["__typename"] == "Run", run
    return run


def _steps(run: dict) -> dict[str, str]:
    return {step["stepKey"]: step["status"] for step in run["stepStats"]}


def _erp_documents_by_source(erp) -> dict[str, Counter]:
    def source(document: dict, field: str) -> str:
        return document[field] if field == "external_id" else document["record"][field]

    return {
        kind: Counter(source(document, field) for document in erp.documents(kind))
        for kind, field in SOURCE_REFERENCE.items()
    }


def _crm_documents_by_external_id(crm) -> dict[str, Counter]:
    return {
        sobject: Counter(record["External_Id__c"] for record in crm.records(sobject))
        for sobject in ("Account", "Contact")
    }


def test_an_operator_lists_launches_reads_checks_and_re_executes_a_failed_run_from_failure(
    tmp_path,
):
    home = write_dagster_home(tmp_path / "home")
    data = tmp_path / "data"
    scenario = delivery_scenario(tmp_path)
    with start_sandbox_systems(scenario, warehouse_inbox=data / "inbox" / "warehouse") as systems:
        env = {
            **os.environ,
            "INTEGRATION_ASSETS_DATA_DIR": str(data),
            "INTEGRATION_ASSETS_AUDIT_DIR": str(data / "audit"),  # this test's exchanges only
            "DAGSTER_HOME": str(home),
            **systems_environment(systems.systems()),
        }
        erp = systems.erp.app
        with running_webserver(env) as port:
            client = graphql_client(port)

            # (1) The asset graph, layer by layer, and which assets the hourly job runs.
            nodes = {
                "/".join(node["assetKey"]["path"]): node
                for node in execute(client, ASSETS)["assetNodes"]
            }
            for key in (
                "raw/storefront/orders",
                "staging/storefront/orders",
                "core/order_events",
                "core/orders_current",
                "core/customers",
                "delivery/erp/customers",
                SALES_ORDERS,
                "delivery/crm/accounts",
                "delivery/wms/reservations",
                "ops/outbox",
            ):
                assert JOB_NAME in nodes[key]["jobNames"], key
            assert nodes[SALES_ORDERS]["groupName"] == "delivery"
            assert nodes["ops/outbox"]["groupName"] == "ops"
            assert {"raw", "staging", "core", "delivery", "ops", "reporting"} <= {
                key.split("/")[0] for key in nodes
            }

            # (2) The hourly sync, launched with the client, four hours into the scenario.
            systems.clock.advance(timedelta(hours=4))
            first = client.submit_job_execution(JOB_NAME, run_config=IN_PROCESS)
            assert wait_for_run(client, first) == DagsterRunStatus.SUCCESS

            # (3) Its check results: the orders' gates passed, and the ERP took the sales orders.
            for check in GATING_CHECKS:
                assert _check_execution(client, "staging/storefront/orders", check, first) == (
                    "SUCCEEDED",
                    True,
                ), check
            assert _check_execution(client, SALES_ORDERS, CHECK_TARGET_REACHABLE, first) == (
                "SUCCEEDED",
                True,
            )
            after_first = {kind: len(erp.documents(kind)) for kind in SOURCE_REFERENCE}
            assert after_first["sales_order"] == 5 and after_first["customer"] == 3

            # (4) Eight hours on (orders edited, fulfilled, refunded), the ERP refuses our writes.
            systems.clock.advance(timedelta(hours=8))
            erp.set_writes_forbidden(True)
            failed = client.submit_job_execution(JOB_NAME, run_config=IN_PROCESS)
            assert wait_for_run(client, failed) == DagsterRunStatus.FAILURE
            failed_run = _run(client, failed)
            failed_steps = _steps(failed_run)
            assert {k for k, s in failed_steps.items() if s == "FAILURE"} == {ERP_SALES_ORDERS_STEP}
            failures = [
                event
                for event in execute(client, STEP_FAILURES, {"id": failed})["logsForRun"]["events"]
                if event["__typename"] == "ExecutionStepFailureEvent"
            ]
            assert failures and {f["stepKey"] for f in failures} == {ERP_SALES_ORDERS_STEP}
            error = failures[0]["error"]
            # What the operator reads: the ERP's refusal, named (the step error's cause).
            assert any(
                "answered 403" in cause["message"] and "refuses this client" in cause["message"]
                for cause in error["causes"]
            ), error
            # Its check was never evaluated: the step failed before it could judge the ERP.
            assert _check_execution(client, SALES_ORDERS, CHECK_TARGET_REACHABLE, failed) == (
                "EXECUTION_FAILED",
                None,
            )
            # The refusal wrote nothing at the ERP; the run's other targets took their writes.
            assert {kind: len(erp.documents(kind)) for kind in SOURCE_REFERENCE} == after_first
            assert failed_steps["delivery__wms__reservations"] == "SUCCESS"
            assert failed_steps["delivery__crm__accounts"] == "SUCCESS"
            wms_requests_after_failure = systems.wms.stats()["api_requests"]
            crm_writes_after_failure = systems.crm.stats()["writes"]
            with Warehouse(data / "warehouse.duckdb").connect(read_only=True) as con:
                waiting = con.execute(
                    "SELECT idempotency_key FROM ops.outbox WHERE target = 'erp' "
                    "AND entity = 'sales_order' AND status = 'pending' AND attempts = 0"
                ).fetchall()
            assert waiting  # the sales order the refusal held back, never attempted

            # (5) The permission is back: re-execute the failed run from its failure.
            erp.set_writes_forbidden(False)
            rerun = reexecute(client, failed, "FROM_FAILURE")
            assert wait_for_run(client, rerun) == DagsterRunStatus.SUCCESS
            rerun_run = _run(client, rerun)
            assert rerun_run["parentRunId"] == failed
            rerun_steps = _steps(rerun_run)
            assert set(rerun_steps.values()) == {"SUCCESS"}
            # Only what had not succeeded runs again: the failed step and the ones it held back.
            succeeded_before = {k for k, s in failed_steps.items() if s == "SUCCESS"}
            assert not set(rerun_steps) & succeeded_before
            assert {k for k in succeeded_before if k.startswith("raw__")} >= {
                "raw__storefront__orders",
                "raw__erp__customers",
            }
            assert {
                ERP_SALES_ORDERS_STEP,
                "delivery__erp__invoices",
                "delivery__erp__payments_applied",
                "delivery__erp__credit_notes",
            } <= set(rerun_steps)
            planned = {step["key"] for step in failed_run["executionPlan"]["steps"]}
            assert set(rerun_steps) == planned - succeeded_before
            assert _check_execution(client, SALES_ORDERS, CHECK_TARGET_REACHABLE, rerun) == (
                "SUCCEEDED",
                True,
            )

        # Nothing doubled: one document per source reference at the ERP, the CRM and the WMS;
        # every ERP document was created once, and every write the ERP took was one sent outbox
        # message, sent once.
        by_source = _erp_documents_by_source(erp)
        for kind, counts in by_source.items():
            assert all(n == 1 for n in counts.values()), (kind, counts)
        documents = {kind: sum(counts.values()) for kind, counts in by_source.items()}
        # The refund's credit note, held back by the failure, was delivered by the re-run.
        assert documents["credit_note"] > after_first["credit_note"]
        writes = systems.erp.stats()["writes"]
        assert writes["creates"] == sum(documents.values())
        assert writes["noops"] == writes["replays"] == 0
        for sobject, counts in _crm_documents_by_external_id(systems.crm).items():
            assert counts and all(n == 1 for n in counts.values()), (sobject, counts)
        reservations = Counter(r["order_id"] for r in systems.wms.reservations())
        assert reservations and all(n == 1 for n in reservations.values()), reservations
        # The re-run sent nothing again to the targets whose steps had succeeded (not even a no-op).
        assert systems.crm.stats()["writes"] == crm_writes_after_failure
        assert systems.wms.stats()["api_requests"] == wms_requests_after_failure
        with Warehouse(data / "warehouse.duckdb").connect(read_only=True) as con:
            sent = con.execute(
                "SELECT target, attempts, last_run_id, idempotency_key FROM ops.outbox "
                "WHERE status = 'sent'"
            ).fetchall()
        assert sent and all(attempts == 1 for _, attempts, _, _ in sent)
        erp_sent = [row for row in sent if row[0] == "erp"]
        assert len(erp_sent) == writes["creates"] + writes["updates"]
        assert {key for (key,) in waiting} <= {key for _, _, run, key in erp_sent if run == rerun}
