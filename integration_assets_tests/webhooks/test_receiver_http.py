"""The receiver over real HTTP: land, dedup, reject without side effect, count stale, never leak a secret."""

from __future__ import annotations

import hashlib
import json
import time

from integration_assets.storage.raw_log import RawLog

from .conftest import (
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    raw_listing,
    shopify_headers,
    shopify_order_body,
    stripe_event_body,
    stripe_header,
)


def test_signed_shopify_order_lands_one_raw_record_then_redelivery_lands_nothing(receiver):
    body = shopify_order_body()
    response = receiver.post("/webhooks/shopify", body, shopify_headers(body, "wh-1"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "landed"

    log = RawLog(receiver.raw_root)
    [manifest] = log.batches("webhooks", "shopify/orders/updated")
    assert log.verify(manifest) and manifest.records == 1
    [record] = list(log.read_records(manifest))
    assert record["body"].encode() == body  # verbatim
    assert record["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert record["delivery_id"] == "wh-1"
    assert record["headers"]["x-shopify-topic"] == "orders/updated"
    assert "x-shopify-hmac-sha256" not in record["headers"]
    assert log.payloads([response.json()["raw_ref"]])[response.json()["raw_ref"]]["id"] == 450789469

    before = raw_listing(receiver.raw_root / "webhooks")
    again = receiver.post("/webhooks/shopify", body, shopify_headers(body, "wh-1"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["raw_ref"] == response.json()["raw_ref"]
    assert len(receiver.landed()) == 1
    assert raw_listing(receiver.raw_root / "webhooks") == before  # raw holds batches only
    assert receiver.stats()["duplicates"] == 1


def test_forged_unsigned_and_wrong_secret_get_401_and_leave_raw_unchanged(receiver):
    body = shopify_order_body()
    receiver.post("/webhooks/shopify", body, shopify_headers(body, "wh-ok"))
    before = raw_listing(receiver.raw_root)
    ledger_before = raw_listing(receiver.state_dir)

    forged = shopify_order_body(total_price="0.01")
    cases = [
        (
            "/webhooks/shopify",
            forged,
            shopify_headers(body, "wh-forged"),
        ),  # signature of another body
        ("/webhooks/shopify", body, shopify_headers(body, "wh-wrong", secret="guess")),
        (
            "/webhooks/shopify",
            body,
            {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "x"},
        ),
        ("/webhooks/stripe", stripe_event_body(), {"Content-Type": "application/json"}),
    ]
    for path, payload, headers in cases:
        response = receiver.post(path, payload, headers)
        assert response.status_code == 401, (path, response.text)
    assert raw_listing(receiver.raw_root) == before  # byte for byte
    assert raw_listing(receiver.state_dir) == ledger_before  # the ledger too
    stats = receiver.stats()
    assert stats["shopify_rejected_401"] == 3 and stats["stripe_rejected_401"] == 1
    assert stats["landed"] == 1


def test_older_version_of_a_landed_order_is_counted_stale(receiver):
    newer = shopify_order_body(updated_at="2024-05-02T10:00:00-04:00")
    older = shopify_order_body(updated_at="2024-05-02T13:59:59Z")  # one second before `newer`
    assert (
        receiver.post("/webhooks/shopify", newer, shopify_headers(newer, "wh-new")).json()["status"]
        == "landed"
    )
    response = receiver.post("/webhooks/shopify", older, shopify_headers(older, "wh-old"))
    assert response.status_code == 200 and response.json()["status"] == "stale"
    assert len(receiver.landed()) == 1
    # A newer one still lands, and the same version (another subscription) is not stale.
    newest = shopify_order_body(updated_at="2024-05-03T00:00:00Z")
    assert (
        receiver.post("/webhooks/shopify", newest, shopify_headers(newest, "wh-newest")).json()[
            "status"
        ]
        == "landed"
    )
    same = receiver.post(
        "/webhooks/shopify", newest, shopify_headers(newest, "wh-2nd-sub", topic="orders/create")
    )
    assert same.json()["status"] == "landed"
    stats = receiver.stats()
    assert stats["stale"] == 1 and stats["landed"] == 3 and stats["received"] == 4


def test_signed_stripe_event_lands_with_tolerance_and_stale_is_rejected(receiver):
    body = stripe_event_body(id="evt_1", type="price.updated", created=1_700_000_100)
    now = int(time.time())
    response = receiver.post(
        "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body, now - 120)}
    )
    assert response.status_code == 200 and response.json()["status"] == "landed"
    log = RawLog(receiver.raw_root)
    [manifest] = log.batches("webhooks", "stripe/price.updated")
    assert manifest.details["delivery_id"] == "evt_1"

    before = raw_listing(receiver.raw_root)
    old_sig = receiver.post(
        "/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body, now - 400)}
    )
    assert old_sig.status_code == 401 and "tolerance" in old_sig.json()["error"]
    assert raw_listing(receiver.raw_root) == before

    # Same event id retried with a fresh signature: a duplicate. An older event about the same object: stale.
    retry = receiver.post("/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body, now)})
    assert retry.json()["status"] == "duplicate"
    older = stripe_event_body(id="evt_0", type="price.updated", created=1_700_000_000)
    stale = receiver.post(
        "/webhooks/stripe", older, {"Stripe-Signature": stripe_header(older, now)}
    )
    assert stale.json()["status"] == "stale"
    assert len(receiver.landed()) == 1


def test_not_json_is_400_oversize_is_413_and_unsafe_topic_is_400(receiver):
    not_json = b"id=1&updated_at=now"
    assert (
        receiver.post("/webhooks/shopify", not_json, shopify_headers(not_json, "wh-x")).status_code
        == 400
    )
    big = b'{"id": 1, "pad": "' + b"x" * 300_000 + b'"}'
    assert (
        receiver.post("/webhooks/shopify", big, shopify_headers(big, "wh-big")).status_code == 413
    )
    body = shopify_order_body()
    escape = receiver.post(
        "/webhooks/shopify", body, shopify_headers(body, "wh-esc", topic="../../etc")
    )
    assert escape.status_code == 400
    assert receiver.landed() == []
    stats = receiver.stats()
    assert stats["shopify_rejected_400"] == 2 and stats["shopify_rejected_413"] == 1


def test_no_secret_anywhere_in_raw_or_responses(receiver):
    texts = []
    body = shopify_order_body()
    texts.append(receiver.post("/webhooks/shopify", body, shopify_headers(body, "wh-s")).text)
    texts.append(
        receiver.post("/webhooks/shopify", body, shopify_headers(body, "wh-f", secret="x")).text
    )
    event = stripe_event_body(id="evt_s")
    now = int(time.time())
    texts.append(
        receiver.post(
            "/webhooks/stripe", event, {"Stripe-Signature": stripe_header(event, now)}
        ).text
    )
    texts.append(receiver.post("/webhooks/stripe", event, {"Stripe-Signature": "t=1,v1=00"}).text)
    texts.append(json.dumps(receiver.stats()))
    assert len(receiver.landed()) == 2
    blobs = [
        *raw_listing(receiver.raw_root).values(),
        *raw_listing(receiver.state_dir).values(),
        *(text.encode() for text in texts),
    ]
    for secret in (SHOPIFY_SECRET, STRIPE_SECRET):
        assert not any(secret.encode() in blob for blob in blobs)
    # Nor the signatures themselves (they are only as safe as the body they sign).
    signature = shopify_headers(body, "wh-s")["X-Shopify-Hmac-Sha256"].encode()
    assert not any(signature in blob for blob in blobs)


def test_concurrent_redeliveries_land_exactly_once(receiver):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    body = shopify_order_body()
    headers = shopify_headers(body, "wh-race")

    def post(_):
        return requests.post(
            receiver.url + "/webhooks/shopify", data=body, headers=headers, timeout=10
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [response.json()["status"] for response in pool.map(post, range(16))]
    assert statuses.count("landed") == 1 and statuses.count("duplicate") == 15
    assert len(receiver.landed()) == 1
