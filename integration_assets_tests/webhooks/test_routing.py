"""Which staging stream stages each webhook batch, and the batches each stream stages."""

from __future__ import annotations

import orjson

from integration_assets.defs.orders.names import STREAM as ORDERS_STREAM
from integration_assets.defs.payments.names import RESOURCES, STREAMS
from integration_assets.defs.products.names import STREAM as PRODUCTS_STREAM
from integration_assets.storage.raw_log import RawLog
from integration_assets.webhooks import routing
from integration_assets.webhooks.routing import (
    STRIPE_OBJECT_RESOURCES,
    batches_staged_as,
    manifest_target,
    staged_payload,
    target_stream,
    webhook_batches_for,
)

from .conftest import (
    deliver_shopify,
    deliver_stripe,
    fixture_order,
    fixture_product,
    polled_batch,
    stripe_event,
    webhook_app,
)


def test_stream_names_are_the_staging_streams_of_the_defs():
    assert routing.ORDERS_STREAM == ORDERS_STREAM
    assert routing.PRODUCTS_STREAM == PRODUCTS_STREAM
    # Every polled Stripe resource can also arrive by webhook, under the same stream.
    assert set(STRIPE_OBJECT_RESOURCES.values()) == set(RESOURCES)
    for object_type, resource in STRIPE_OBJECT_RESOURCES.items():
        assert target_stream("stripe", "any.event", object_type) == STREAMS[resource]


def test_order_and_product_topics_are_staged_and_other_topics_are_not():
    for topic in (
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    ):
        assert target_stream("shopify", topic) == ORDERS_STREAM
    assert target_stream("shopify", "products/create") == PRODUCTS_STREAM
    assert target_stream("shopify", "products/update") == PRODUCTS_STREAM
    # Bodies that are not the resource (`orders/delete` is only an id; a refund is not an order).
    for topic in ("orders/delete", "products/delete", "refunds/create", "customers/create"):
        assert target_stream("shopify", topic) is None
    assert target_stream("stripe", "customer.created", "customer") is None
    assert target_stream("stripe", "charge.succeeded", None) is None
    assert target_stream("other", "orders/create") is None


def test_each_stream_lists_its_polled_and_webhook_batches_oldest_first(tmp_path):
    app = webhook_app(tmp_path / "raw")
    log = RawLog(tmp_path / "raw")
    polled_first = polled_batch(log, ORDERS_STREAM, [fixture_order()])
    deliver_shopify(app, fixture_order(id=1), "orders/create", "wh-1")
    deliver_shopify(app, fixture_order(id=2), "orders/paid", "wh-2")
    deliver_shopify(app, fixture_order(id=3), "orders/delete", "wh-3")
    deliver_shopify(app, fixture_product(), "products/update", "wh-4")
    deliver_stripe(app, stripe_event("charge", "charge.succeeded", "evt_1", 1_700_000_000))
    deliver_stripe(app, stripe_event("refund", "charge.refund.updated", "evt_2", 1_700_000_001))
    deliver_stripe(app, stripe_event("customer", "customer.created", "evt_3", 1_700_000_002))
    polled_last = polled_batch(log, ORDERS_STREAM, [fixture_order()])
    app.store.close()

    orders = batches_staged_as(log, ORDERS_STREAM)
    assert [m.batch_id for m in orders] == sorted(m.batch_id for m in orders)
    assert orders[0] == polled_first and orders[-1] == polled_last
    assert [m.stream for m in orders[1:-1]] == ["shopify/orders/create", "shopify/orders/paid"]
    assert [m.stream for m in batches_staged_as(log, PRODUCTS_STREAM)] == [
        "shopify/products/update"
    ]
    # Stripe events by the type of their data.object, whatever the event type says.
    assert [m.stream for m in webhook_batches_for(log, STREAMS["charges"])] == [
        "stripe/charge.succeeded"
    ]
    assert [m.stream for m in webhook_batches_for(log, STREAMS["refunds"])] == [
        "stripe/charge.refund.updated"
    ]
    assert webhook_batches_for(log, STREAMS["disputes"]) == []
    [customer] = log.batches("webhooks", "stripe/customer.created")
    assert manifest_target(log, customer) is None


def test_a_stripe_batch_without_object_type_in_its_manifest_is_routed_from_its_record(tmp_path):
    app = webhook_app(tmp_path / "raw")
    deliver_stripe(app, stripe_event("dispute", "charge.dispute.created", "evt_1", 1_700_000_000))
    app.store.close()
    log = RawLog(tmp_path / "raw")
    [manifest] = log.batches("webhooks", "stripe/charge.dispute.created")
    assert manifest.details["object_type"] == "dispute"
    # As landed before the type was recorded in the manifest.
    manifest_path = manifest.path.with_name(f"{manifest.batch_id}.manifest.json")
    raw = orjson.loads(manifest_path.read_bytes())
    del raw["details"]["object_type"]
    manifest_path.write_bytes(orjson.dumps(raw))
    assert manifest_target(log, log.read_manifest(manifest_path)) == STREAMS["disputes"]


def test_staged_payload_is_the_events_object_for_stripe_and_the_body_for_shopify(tmp_path):
    app = webhook_app(tmp_path / "raw")
    deliver_shopify(app, fixture_order(), "orders/create", "wh-1")
    event = stripe_event("charge", "charge.succeeded", "evt_1", 1_700_000_000)
    deliver_stripe(app, event)
    app.store.close()
    log = RawLog(tmp_path / "raw")
    polled = polled_batch(log, "payments/charges", [event["data"]["object"]])
    for manifest, expected in (
        (log.batches("webhooks", "shopify/orders/create")[0], fixture_order()),
        (log.batches("webhooks", "stripe/charge.succeeded")[0], event["data"]["object"]),
        (polled, event["data"]["object"]),
    ):
        [record] = log.read_records(manifest)
        assert staged_payload(manifest, record) == expected
