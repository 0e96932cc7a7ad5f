"""Layer 5: a signed webhook becomes a Dagster run with nothing in between but the production setup.

The receiver (`integration-assets webhooks serve`) and the daemon (`dagster-daemon run`, instance
deploy/production/dagster.yaml on a fresh PostgreSQL database) run as subprocesses over a temporary
data dir. A signed Shopify orders/create delivery lands in raw, `webhook_batches_sensor` requests a
run keyed by its batch id, the daemon launches it, and the order reaches staging and core. A forged
delivery is refused and changes nothing: no raw batch, no run, even after the sensor ticked again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from integration_assets.defs.orders.names import GATING_CHECKS, STAGING_ORDERS, STREAM
from integration_assets.defs.webhooks.names import ASSETS_OF_STREAM, SENSOR_NAME, TAG_BATCH
from integration_assets.storage.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PRODUCTION_HOME = ROOT / "deploy" / "production"
ORDER_FIXTURE = (
    ROOT
    / "integration_assets/sandbox/fixtures/shopify/monei_shopify_api_node/order/res/create.json"
)
SHOPIFY_SECRET = "shpss_e2e_secret_not_for_logs_5d1e"
RUN_TIMEOUT_S = 240
TICK_TIMEOUT_S = 120
SENSOR_NAME_TAG = "dagster/sensor_name"
RUN_KEY_TAG = "dagster/run_key"

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _signed_headers(body: bytes, webhook_id: str, secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "example.myshopify.com",
    }


def _wait_for(what: str, timeout_s: float, probe: Callable[[], Any], interval_s: float = 1.0):
    """`probe()`'s first truthy answer, polled until `timeout_s` (then the test fails, naming `what`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@contextmanager
def _started(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[Path]:
    """`args` as a subprocess in its own session, output to `<logs>/<name>.log`; on exit its whole
    process group (the daemon's code server, run workers and step processes too) is killed."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log_path
        finally:
            with suppress(ProcessLookupError):  # the whole group has exited already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _print_logs(logs: Path) -> None:
    for log_path in sorted(logs.glob("*.log")):
        text = log_path.read_text(errors="replace")
        print(f"\n===== {log_path.name} (last 8000 characters) =====\n{text[-8000:]}")


def _runs_for_batch(instance: dg.DagsterInstance, batch_id: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={TAG_BATCH: batch_id})))


def _succeeded_run(instance: dg.DagsterInstance, batch_id: str) -> dg.DagsterRun | None:
    runs = _runs_for_batch(instance, batch_id)
    failed = [run for run in runs if run.status == dg.DagsterRunStatus.FAILURE]
    if failed:
        errors = [
            event.message
            for event in instance.all_logs(failed[0].run_id)
            if event.is_dagster_event and event.dagster_event.is_step_failure
        ]
        raise AssertionError(f"run {failed[0].run_id} for batch {batch_id} failed: {errors}")
    return next((run for run in runs if run.status == dg.DagsterRunStatus.SUCCESS), None)


def _sensor_state(instance: dg.DagsterInstance):
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return next((s for s in states if s.instigator_name == SENSOR_NAME), None)


def _completed_tick_after(instance: dg.DagsterInstance, moment: float):
    state = _sensor_state(instance)
    if state is None:
        return None
    ticks = instance.get_ticks(
        state.instigator_origin_id,
        state.selector_id,
        after=moment,
        statuses=[TickStatus.SKIPPED, TickStatus.SUCCESS],
    )
    return ticks[0] if ticks else None


def _raw_files(data_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(data_dir)) for p in (data_dir / "raw").rglob("*") if p.is_file()
    )


@pytest.fixture
def production_env(postgres_database, tmp_path, monkeypatch) -> dict[str, str]:
    """The daemon's environment (also set here, so this process reads the same instance)."""
    settings = {
        **postgres_database.dagster_env(),
        "DAGSTER_HOME": str(PRODUCTION_HOME),
        "DAGSTER_STORAGE_DIR": str(tmp_path / "dagster_storage"),
        "INTEGRATION_ASSETS_DATA_DIR": str(tmp_path / "data"),
        "INTEGRATION_ASSETS_AUDIT_DIR": str(tmp_path / "audit"),
        "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
        "GX_ANALYTICS_ENABLED": "false",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "logs").mkdir()
    return {**os.environ, **settings}


def test_a_signed_webhook_becomes_a_run_and_a_forged_one_changes_nothing(production_env, tmp_path):
    data_dir = Path(production_env["INTEGRATION_ASSETS_DATA_DIR"])
    logs = tmp_path / "logs"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Created before the daemon starts, so one process creates the instance's tables.
    instance = dg.DagsterInstance.from_config(str(PRODUCTION_HOME))
    order = json.loads(ORDER_FIXTURE.read_text())["order"]  # a webhook body is the bare order
    body = json.dumps(order).encode()
    started_at = time.time()
    try:
        with (
            _started(
                "receiver",
                [str(BIN / "integration-assets"), "webhooks", "serve", "--port", str(port)],
                production_env,
                logs,
            ),
            _started(
                "daemon",
                [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                production_env,
                logs,
            ),
        ):
            _wait_for("the receiver to answer", 60, lambda: _answers(f"{url}/_webhooks/stats"))

            landed = requests.post(
                f"{url}/webhooks/shopify",
                data=body,
                headers=_signed_headers(body, "e2e-1"),
                timeout=10,
            )
            assert landed.status_code == 200 and landed.json()["status"] == "landed", landed.text
            batch_id = landed.json()["raw_ref"].rpartition("#")[0].rpartition("/")[2]

            run = _wait_for(
                f"a successful run for webhook batch {batch_id}",
                RUN_TIMEOUT_S,
                lambda: _succeeded_run(instance, batch_id),
                interval_s=2,
            )
            print(f"run {run.run_id} succeeded {time.time() - started_at:.0f} s after the start")
            assert run.tags[RUN_KEY_TAG] == f"{STAGING_ORDERS.to_user_string()}:{batch_id}"
            assert run.tags[SENSOR_NAME_TAG] == SENSOR_NAME
            assert len(_runs_for_batch(instance, batch_id)) == 1
            materialized = {
                event.dagster_event.asset_key
                for event in instance.all_logs(
                    run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
                )
            }
            assert materialized == set(ASSETS_OF_STREAM[STREAM])
            checks = {
                event.dagster_event.event_specific_data.check_name: (
                    event.dagster_event.event_specific_data.passed
                )
                for event in instance.all_logs(
                    run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                )
            }
            assert all(checks.get(name) for name in GATING_CHECKS), checks

            # A forged delivery: the same headers over a body changed after signing.
            raw_before = _raw_files(data_dir)
            sensor_runs_before = len(
                instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: SENSOR_NAME}))
            )
            forged_body = json.dumps({**order, "total_price": "0.01"}).encode()
            posted_at = time.time()
            forged = requests.post(
                f"{url}/webhooks/shopify",
                data=forged_body,
                headers=_signed_headers(body, "e2e-forged"),
                timeout=10,
            )
            assert forged.status_code == 401, forged.text
            tick = _wait_for(
                "a sensor tick after the forged delivery",
                TICK_TIMEOUT_S,
                lambda: _completed_tick_after(instance, posted_at),
                interval_s=2,
            )
            print(f"sensor ticked {tick.timestamp - posted_at:.0f} s after the forged delivery")
            assert _raw_files(data_dir) == raw_before
            assert (
                len(instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: SENSOR_NAME})))
                == sensor_runs_before
            )
            stats = requests.get(f"{url}/_webhooks/stats", timeout=10).json()
            assert stats["landed"] == 1 and stats["shopify_rejected_401"] == 1

        # Every process is stopped: the warehouse can be read without waiting for a writer.
        with Warehouse(data_dir / "warehouse.duckdb").connect(read_only=True) as con:
            staged = con.execute(
                "SELECT batch_id, total_price_minor FROM staging.storefront_orders WHERE order_id = ?",
                [order["id"]],
            ).fetchall()
            current = con.execute(
                "SELECT order_id FROM core.orders_current WHERE order_id = ?", [order["id"]]
            ).fetchall()
        assert [row[0] for row in staged] == [batch_id]
        assert current == [(order["id"],)]
    except BaseException:
        _print_logs(logs)
        raise
    finally:
        instance.dispose()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
