"""Layer 4: `webhook_batches_sensor` over a temporary raw log, with dg.build_sensor_context."""

from __future__ import annotations

import dagster as dg

from integration_assets.defs.orders.names import ORDER_EVENTS, ORDERS_CURRENT, STAGING_ORDERS
from integration_assets.defs.payments.names import STAGING_PAYMENTS
from integration_assets.defs.products.names import PRODUCT_HISTORY, STAGING_PRODUCTS
from integration_assets.defs.webhooks.names import (
    SENSOR_NAME,
    TAG_BATCH,
    TAG_BATCH_COUNT,
    TAG_FIRST_BATCH,
    TAG_PROVIDER,
    TAG_STREAM,
    TAG_TOPIC,
)
from integration_assets.defs.webhooks.sensors import plan_tick, webhook_batches_sensor
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource
from integration_assets.webhooks.cursor import BatchCursor

from .conftest import (
    deliver_shopify,
    deliver_stripe,
    fixture_order,
    fixture_product,
    stripe_event,
    webhook_app,
)


def evaluate(raw_root, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        cursor=cursor, resources={"raw_log": RawLogResource(root=str(raw_root))}
    ) as context:
        return webhook_batches_sensor(context)


def test_nothing_landed_is_a_skip_with_a_reason(tmp_path):
    result = evaluate(tmp_path / "raw")
    assert not result.run_requests
    assert "no new webhook batch" in result.skip_reason.skip_message


def test_one_run_per_asset_group_per_tick_keyed_by_its_newest_batch(tmp_path):
    app = webhook_app(tmp_path / "raw")
    deliver_shopify(app, fixture_order(id=1), "orders/create", "wh-1")
    deliver_shopify(
        app, fixture_order(id=1, updated_at="2030-01-01T00:00:00Z"), "orders/paid", "wh-2"
    )
    deliver_shopify(app, fixture_product(), "products/create", "wh-3")
    deliver_stripe(app, stripe_event("charge", "charge.succeeded", "evt_1", 1_700_000_000))
    deliver_stripe(app, stripe_event("refund", "refund.created", "evt_2", 1_700_000_001))
    app.store.close()
    log = RawLog(tmp_path / "raw")
    landed = {
        stream: log.batches("webhooks", stream)[0].batch_id
        for stream in (
            "shopify/orders/create",
            "shopify/orders/paid",
            "shopify/products/create",
            "stripe/charge.succeeded",
            "stripe/refund.created",
        )
    }

    result = evaluate(tmp_path / "raw")
    # Five batches, three asset groups: three runs (orders, products, payments), not five.
    assert len(result.run_requests) == 3
    by_stream = {request.tags[TAG_STREAM]: request for request in result.run_requests}
    orders_run = by_stream["storefront/orders"]
    assert set(orders_run.asset_selection) == {STAGING_ORDERS, ORDER_EVENTS, ORDERS_CURRENT}
    assert orders_run.tags[TAG_PROVIDER] == "shopify"
    assert orders_run.tags[TAG_TOPIC] == "orders/create,orders/paid"
    assert orders_run.tags[TAG_BATCH_COUNT] == "2"
    assert orders_run.tags[TAG_FIRST_BATCH] == landed["shopify/orders/create"]
    assert orders_run.tags[TAG_BATCH] == landed["shopify/orders/paid"]
    assert orders_run.run_key == f"staging/storefront/orders:{landed['shopify/orders/paid']}"
    assert set(by_stream["storefront/products"].asset_selection) == {
        STAGING_PRODUCTS,
        PRODUCT_HISTORY,
    }
    payments_run = by_stream["payments/charges,payments/refunds"]
    assert STAGING_PAYMENTS in payments_run.asset_selection
    assert payments_run.tags[TAG_BATCH_COUNT] == "2"
    assert payments_run.tags[TAG_BATCH] == landed["stripe/refund.created"]
    # Each run key is unique and names its newest batch.
    assert len({request.run_key for request in result.run_requests}) == 3

    # The cursor moved past them: the next tick requests nothing.
    again = evaluate(tmp_path / "raw", result.cursor)
    assert not again.run_requests
    assert "no new webhook batch" in again.skip_reason.skip_message

    # A new delivery after that: exactly one new request, for that batch alone.
    app = webhook_app(tmp_path / "raw")
    deliver_shopify(app, fixture_order(id=2), "orders/updated", "wh-5")
    app.store.close()
    [new] = evaluate(tmp_path / "raw", again.cursor).run_requests
    newest = log.batches("webhooks", "shopify/orders/updated")[0].batch_id
    assert new.tags[TAG_BATCH] == new.tags[TAG_FIRST_BATCH] == newest
    assert new.tags[TAG_BATCH_COUNT] == "1"


def test_a_peak_of_deliveries_is_one_run_per_tick_not_one_per_delivery(tmp_path):
    app = webhook_app(tmp_path / "raw")
    for number in range(40):
        deliver_shopify(app, fixture_order(id=number + 1), "orders/create", f"wh-{number}")
    app.store.close()
    [request] = evaluate(tmp_path / "raw").run_requests
    assert request.tags[TAG_BATCH_COUNT] == "40"


def test_a_topic_no_stream_stages_starts_no_run_and_is_reported(tmp_path):
    app = webhook_app(tmp_path / "raw")
    deliver_shopify(app, {"id": 450789469}, "orders/delete", "wh-1")
    deliver_stripe(app, stripe_event("customer", "customer.created", "evt_1", 1_700_000_000))
    app.store.close()
    result = evaluate(tmp_path / "raw")
    assert not result.run_requests
    reason = result.skip_reason.skip_message
    assert "2 webhook batch(es) landed, not staged by any stream" in reason
    assert "shopify/orders/delete x1" in reason and "stripe/customer.created x1" in reason
    # Reported once: the cursor counts them as handled.
    assert (
        "no new webhook batch" in evaluate(tmp_path / "raw", result.cursor).skip_reason.skip_message
    )


def test_a_backlog_is_requested_in_slices_without_losing_a_batch(tmp_path):
    app = webhook_app(tmp_path / "raw")
    for number in range(5):
        deliver_shopify(app, fixture_order(id=number + 1), "orders/create", f"wh-{number}")
    app.store.close()
    log = RawLog(tmp_path / "raw")
    cursor, covered, left, runs = BatchCursor(), [], [], 0
    for _ in range(3):
        plan = plan_tick(log, cursor, limit=2)
        runs += len(plan.run_requests)
        covered += [m.batch_id for batch in plan.micro_batches for m in batch.manifests]
        left.append(plan.left_for_next_tick)
        cursor = plan.cursor
    assert left == [3, 1, 0]
    assert runs == 3  # one per tick
    # Every batch in exactly one micro-batch, in the order they landed.
    assert covered == [m.batch_id for m in log.batches("webhooks", "shopify/orders/create")]


def test_the_sensor_is_registered_running_with_a_short_interval_and_valid_run_config(tmp_path):
    from integration_assets.definitions import defs

    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds <= 30
    # What it requests is a valid run of the job it targets, for every stream.
    app = webhook_app(tmp_path / "raw")
    deliver_shopify(app, fixture_order(), "orders/create", "wh-1")
    deliver_shopify(app, fixture_product(), "products/create", "wh-2")
    deliver_stripe(app, stripe_event("charge", "charge.succeeded", "evt_1", 1_700_000_000))
    app.store.close()
    job = defs.get_repository_def().get_job(sensor.job_name)
    requests = evaluate(tmp_path / "raw").run_requests
    assert len(requests) == 3
    for request in requests:
        subset = job.get_subset(asset_selection=set(request.asset_selection))
        config = dg.validate_run_config(subset, request.run_config)
        assert "in_process" in config["execution"]["multi_or_in_process_executor"]
