"""Layer 3: webhook batches staged, gated and promoted by the same assets as the polls, run in process
exactly as the sensor asks (the definitions' asset job, subset to the sensor's selection)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg
import pytest

from integration_assets.defs.orders.names import GATING_CHECKS as ORDER_GATES
from integration_assets.defs.orders.names import STREAM as ORDERS_STREAM
from integration_assets.defs.payments.names import STREAMS
from integration_assets.defs.products.names import STREAM as PRODUCTS_STREAM
from integration_assets.defs.webhooks.names import ASSETS_OF_STREAM
from integration_assets.storage.order_payloads import current_orders
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.warehouse import Warehouse

from .conftest import (
    deliver_shopify,
    deliver_stripe,
    fixture_order,
    fixture_product,
    polled_batch,
    stripe_event,
    webhook_app,
)

ORDER_ID = 450789469


@cache
def asset_job() -> dg.JobDefinition:
    from integration_assets.definitions import defs

    return defs.resolve_implicit_global_asset_job_def()


class Data:
    """A data dir (raw log + warehouse) that the definitions' resources resolve to."""

    def __init__(self, root: Path):
        self.root = root
        self.log = RawLog(root / "raw")

    def deliver_shopify(self, payload: dict, topic: str, webhook_id: str) -> BatchManifest:
        app = webhook_app(self.root / "raw")
        try:
            answer = deliver_shopify(app, payload, topic, webhook_id)
        finally:
            app.store.close()
        assert answer["status"] == "landed"
        return self._batch_of(answer["raw_ref"])

    def deliver_stripe(self, event: dict) -> BatchManifest:
        app = webhook_app(self.root / "raw")
        try:
            answer = deliver_stripe(app, event)
        finally:
            app.store.close()
        assert answer["status"] == "landed"
        return self._batch_of(answer["raw_ref"])

    def _batch_of(self, raw_ref: str) -> BatchManifest:
        location = raw_ref.rpartition("#")[0]
        _, source, stream_and_batch = location.split("/", 2)
        stream, _, batch_id = stream_and_batch.rpartition("/")
        [manifest] = [m for m in self.log.batches(source, stream) if m.batch_id == batch_id]
        return manifest

    def run(self, stream: str) -> dg.ExecuteInProcessResult:
        """What the sensor requests for a batch of `stream`, in process."""
        job = asset_job().get_subset(asset_selection=set(ASSETS_OF_STREAM[stream]))
        return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    def sql(self, query: str, params=None) -> list[tuple]:
        with Warehouse(self.root / "warehouse.duckdb").connect(read_only=True) as con:
            return con.execute(query, params or []).fetchall()

    def batch_books(self, stream: str, batch_id: str) -> tuple[int, int, int, int]:
        [row] = self.sql(
            "SELECT records_read, staged, quarantined, duplicates FROM staging.batches "
            "WHERE stream = ? AND batch_id = ?",
            [stream, batch_id],
        )
        return row

    def gates_passed(self, stream: str, batch_id: str) -> dict[str, bool]:
        return dict(
            self.sql(
                "SELECT check_name, passed FROM ops.batch_gates WHERE stream = ? AND batch_id = ?",
                [stream, batch_id],
            )
        )


@pytest.fixture
def data(tmp_path, monkeypatch) -> Data:
    monkeypatch.setenv("INTEGRATION_ASSETS_DATA_DIR", str(tmp_path / "data"))
    return Data(tmp_path / "data")


def test_an_order_webhook_is_staged_gated_and_promoted_like_a_poll(data):
    batch = data.deliver_shopify(fixture_order(), "orders/create", "wh-1")
    result = data.run(ORDERS_STREAM)
    assert result.success
    assert data.batch_books(ORDERS_STREAM, batch.batch_id) == (1, 1, 0, 0)
    gates = data.gates_passed(ORDERS_STREAM, batch.batch_id)
    assert set(gates) >= set(ORDER_GATES) and all(gates[name] for name in ORDER_GATES), gates
    [(raw_ref,)] = data.sql(
        "SELECT raw_ref FROM staging.storefront_orders WHERE order_id = ?", [ORDER_ID]
    )
    assert raw_ref == batch.raw_ref(0) and raw_ref.startswith("raw/webhooks/shopify/orders/create/")
    assert data.sql("SELECT order_id FROM core.orders_current") == [(ORDER_ID,)]
    assert data.sql(
        "SELECT batch_id FROM core.promoted_batches WHERE stream = ?", [ORDERS_STREAM]
    ) == [(batch.batch_id,)]
    # Downstream readers get the webhook's body back from raw by its reference.
    with Warehouse(data.root / "warehouse.duckdb").connect(read_only=True) as con:
        [current] = current_orders(con, data.log)
    assert current.payload == fixture_order()


def test_a_webhook_like_a_polled_version_is_a_duplicate_and_a_newer_one_a_new_version(data):
    polled_batch(data.log, ORDERS_STREAM, [fixture_order()])
    assert data.run(ORDERS_STREAM).success
    same = data.deliver_shopify(fixture_order(), "orders/updated", "wh-same")
    newer = data.deliver_shopify(
        fixture_order(updated_at="2008-01-10T12:00:00-05:00", financial_status="paid"),
        "orders/paid",
        "wh-paid",
    )
    assert data.run(ORDERS_STREAM).success
    assert data.batch_books(ORDERS_STREAM, same.batch_id) == (1, 0, 0, 1)  # counted, dropped
    assert data.batch_books(ORDERS_STREAM, newer.batch_id) == (1, 1, 0, 0)
    assert data.sql("SELECT count(*) FROM staging.storefront_orders") == [(2,)]
    assert data.sql("SELECT financial_status FROM core.orders_current") == [("paid",)]
    # Every book balances: staging's (read = staged + quarantined + duplicates) and core's.
    assert data.sql(
        "SELECT asset_key, bool_and(holds) FROM ops.count_balances WHERE scope IN (?, ?) "
        "GROUP BY 1 ORDER BY 1",
        [same.batch_id, newer.batch_id],
    ) == [("core/order_events", True), ("staging/storefront/orders", True)]


def test_a_webhook_older_than_the_polled_version_is_staged_then_stale_in_core(data):
    # The poll already has the paid version; Shopify's retry of orders/create arrives after it.
    polled_batch(
        data.log,
        ORDERS_STREAM,
        [fixture_order(updated_at="2008-01-10T12:00:00-05:00", financial_status="paid")],
    )
    assert data.run(ORDERS_STREAM).success
    older = data.deliver_shopify(
        fixture_order(financial_status="pending"), "orders/create", "wh-late-retry"
    )
    assert data.run(ORDERS_STREAM).success
    assert data.batch_books(ORDERS_STREAM, older.batch_id) == (1, 1, 0, 0)
    assert data.sql("SELECT batch_id FROM core.stale_versions") == [(older.batch_id,)]
    assert data.sql("SELECT financial_status FROM core.orders_current") == [("paid",)]


def test_a_topic_no_stream_stages_is_left_in_raw_and_staged_nowhere(data):
    deleted = data.deliver_shopify({"id": ORDER_ID}, "orders/delete", "wh-del")
    assert data.run(ORDERS_STREAM).success
    assert data.sql(
        "SELECT count(*) FROM staging.batches WHERE batch_id = ?", [deleted.batch_id]
    ) == [(0,)]
    assert data.log.verify(deleted)


def test_a_product_webhook_is_staged_and_builds_the_history(data):
    batch = data.deliver_shopify(fixture_product(), "products/update", "wh-p")
    assert data.run(PRODUCTS_STREAM).success
    assert data.batch_books(PRODUCTS_STREAM, batch.batch_id) == (1, 1, 0, 0)
    assert all(data.gates_passed(PRODUCTS_STREAM, batch.batch_id).values())
    skus = data.sql("SELECT DISTINCT raw_ref FROM core.product_history")
    assert skus == [(batch.raw_ref(0),)]


def test_a_stripe_event_is_staged_as_its_object_and_a_polled_copy_is_a_duplicate(data):
    event = stripe_event("charge", "charge.succeeded", "evt_1", 1_700_000_000)
    batch = data.deliver_stripe(event)
    charges = STREAMS["charges"]
    assert data.run(charges).success
    assert data.batch_books(charges, batch.batch_id) == (1, 1, 0, 0)
    assert all(data.gates_passed(charges, batch.batch_id).values())
    assert data.sql("SELECT resource, object_id, raw_ref FROM staging.payments_objects") == [
        ("charges", event["data"]["object"]["id"], batch.raw_ref(0))
    ]
    polled = polled_batch(data.log, charges, [event["data"]["object"]])
    assert data.run(charges).success
    assert data.batch_books(charges, polled.batch_id) == (1, 0, 0, 1)


def test_one_record_webhook_batches_do_not_shrink_the_volume_history_of_the_polls(data):
    for poll in range(3):
        polled_batch(data.log, ORDERS_STREAM, [fixture_order(id=poll * 100 + i) for i in range(10)])
    for number in range(10):
        data.deliver_shopify(fixture_order(id=5000 + number), "orders/create", f"wh-{number}")
    peak = polled_batch(data.log, ORDERS_STREAM, [fixture_order(id=9000 + i) for i in range(250)])
    data.run(ORDERS_STREAM)
    # Judged against the polls' median (10, limit 300), not the webhooks' (1, limit 200).
    [(passed, reason)] = data.sql(
        "SELECT passed, reason FROM ops.batch_gates WHERE batch_id = ? AND check_name = ?",
        [peak.batch_id, "volume_within_expected_range"],
    )
    assert passed, reason
    assert "trailing median 10" in reason
