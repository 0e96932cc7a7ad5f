"""Layer 5: what a user touches. The real CLI runs the demo; the real webserver shows lineage, checks, runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from integration_assets.defs.orders.names import GATING_CHECKS
from integration_assets_tests.e2e.graphql_ops import running_webserver
from integration_assets_tests.e2e.ui_stack import SCENARIOS, graphql, run_demo

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """`integration-assets demo` on the malformed scenario, into a temporary data dir and Dagster home."""
    return run_demo(tmp_path_factory.mktemp("demo"), SCENARIOS / "malformed.yaml")


def test_demo_prints_a_readable_summary(demo_home):
    _, output = demo_home
    for expected in (
        "Rows per stage:",
        "staging storefront/orders: read",
        "Check evaluations across",
        "Quarantined records",
        "Count balances:",
        "all hold",
        "orders/s",
        "Where to look next",
    ):
        assert expected in output, expected
    assert "bad_money" in output


def test_report_json_has_counts_checks_and_balances_that_hold(demo_home):
    env, _ = demo_home
    result = subprocess.run(
        [str(BIN / "integration-assets"), "report", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["all_balances_hold"] is True
    assert report["balances"] and all(b["holds"] for b in report["balances"])
    equations = {b["equation"] for b in report["balances"]}
    assert {
        "records_landed",
        "read_equals_staged_quarantined_duplicates",
        "versions_equal_applied_duplicates_stale",
        "mart_orders_equal_current_orders",
    } <= equations
    checks = {c["check"]: c for c in report["checks"]}
    assert set(GATING_CHECKS) <= set(checks)
    assert all(checks[name]["passed"] for name in GATING_CHECKS)
    totals = report["staging_totals"]["storefront/orders"]
    assert totals["records_read"] == totals["staged"] + totals["quarantined"] + totals["duplicates"]
    assert report["counts"]["raw/storefront/orders"] == totals["records_read"]
    assert totals["quarantined"] > 0 and report["quarantine"]


def test_webserver_shows_lineage_checks_and_the_demo_runs(demo_home):
    env, _ = demo_home
    with running_webserver(env) as port:
        nodes = graphql(
            port,
            "{ assetNodes { assetKey { path } groupName dependencyKeys { path } "
            "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
        )["assetNodes"]
        graph = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        lineage = [
            "raw/storefront/orders",
            "staging/storefront/orders",
            "core/order_events",
            "core/orders_current",
            "reporting/orders_per_day",
        ]
        for upstream, downstream in zip(lineage, lineage[1:], strict=False):
            assert upstream in ["/".join(d["path"]) for d in graph[downstream]["dependencyKeys"]]
        staging_checks = {
            c["name"]: c["blocking"]
            for c in graph["staging/storefront/orders"]["assetChecksOrError"]["checks"]
        }
        assert all(staging_checks[name] for name in GATING_CHECKS)
        runs = graphql(port, "{ runsOrError { ... on Runs { results { status jobName } } } }")[
            "runsOrError"
        ]["results"]
        assert runs and "storefront_hourly_sync" in {r["jobName"] for r in runs}
        assert {r["status"] for r in runs} == {"SUCCESS"}


def test_sandbox_serve_refuses_a_missing_scenario_with_a_clear_message(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = subprocess.run(
        [str(BIN / "integration-assets"), "sandbox", "serve", "--scenario", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{missing}: the scenario file does not exist" in result.stderr


def test_report_before_any_run_says_what_to_do(tmp_path):
    env = {
        **os.environ,
        "INTEGRATION_ASSETS_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [str(BIN / "integration-assets"), "report"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no warehouse at" in result.stderr and "make demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_with_a_missing_scenario_says_so_without_a_traceback(tmp_path):
    missing = tmp_path / "nope.yaml"
    env = {
        **os.environ,
        "INTEGRATION_ASSETS_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path),
    }
    earlier = tmp_path / "data" / "warehouse.duckdb"
    earlier.parent.mkdir()
    earlier.write_bytes(b"an earlier run's warehouse")
    result = subprocess.run(
        [str(BIN / "integration-assets"), "demo", "--scenario", str(missing)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{missing}: the scenario file does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert (
        earlier.read_bytes() == b"an earlier run's warehouse"
    )  # nothing reset before the scenario was read


def test_gate_recheck_of_an_unknown_batch_says_nothing_was_cleared(demo_home):
    env, _ = demo_home
    result = subprocess.run(
        [str(BIN / "integration-assets"), "gate", "recheck", "storefront/orders", "no-such-batch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no gate verdicts for batch no-such-batch in stream storefront/orders" in result.stderr
