"""The webhook receiver over real HTTP: the WSGI app on werkzeug's threaded server, 127.0.0.1, port 0."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.test import Client

from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.webhooks.app import WebhookApp
from integration_assets.webhooks.store import WebhookStore

FIXTURES = Path(__file__).resolve().parents[2] / "integration_assets" / "sandbox" / "fixtures"
SHOPIFY_SECRET = "shpss_test_secret_do_not_leak_8f3a"
STRIPE_SECRET = "whsec_test_secret_do_not_leak_91c2"


def fixture_order(relative: str = "shopify_python_api/order.json", **overrides) -> dict:
    """A real Shopify order fixture, unwrapped from its `order` envelope, with `overrides`."""
    order = json.loads((FIXTURES / "shopify" / relative).read_text())["order"]
    return {**order, **overrides}


def fixture_product(**overrides) -> dict:
    path = FIXTURES / "shopify" / "shopify_python_api" / "product.json"
    return {**json.loads(path.read_text())["product"], **overrides}


def stripe_event(
    object_name: str, event_type: str, event_id: str, created: int, **object_overrides
) -> dict:
    """A Stripe event whose data.object is the stripe-mock fixture of `object_name` ("charge"...)."""
    resources = json.loads((FIXTURES / "stripe" / "fixtures3.json").read_text())["resources"]
    event = dict(resources["event"])
    event.update(
        id=event_id,
        type=event_type,
        created=created,
        data={"object": {**resources[object_name], **object_overrides}},
    )
    return event


def shopify_order_body(**overrides) -> bytes:
    """The real Shopify order fixture as a webhook body: the bare object, without the `order` envelope."""
    path = FIXTURES / "shopify" / "shopify_python_api" / "order.json"
    order = json.loads(path.read_text())["order"]
    order.update(overrides)
    return json.dumps(order).encode()


def stripe_event_body(**overrides) -> bytes:
    path = FIXTURES / "stripe" / "fixtures3.json"
    event = json.loads(path.read_text())["resources"]["event"]
    event.update(overrides)
    return json.dumps(event).encode()


def shopify_headers(
    body: bytes, webhook_id: str, topic: str = "orders/updated", secret: str = SHOPIFY_SECRET
):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": "example.myshopify.com",
    }


def stripe_header(body: bytes, timestamp: int, secret: str = STRIPE_SECRET) -> str:
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def raw_listing(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes: a byte-for-byte picture of the raw dir."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def deliver_shopify(app: WebhookApp, payload: dict, topic: str, webhook_id: str) -> dict:
    """Post one signed Shopify delivery to `app` (no server: werkzeug's test client); its answer."""
    body = json.dumps(payload).encode()
    response = Client(app).post(
        "/webhooks/shopify", data=body, headers=shopify_headers(body, webhook_id, topic=topic)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def deliver_stripe(app: WebhookApp, event: dict) -> dict:
    body = json.dumps(event).encode()
    response = Client(app).post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": stripe_header(body, int(time.time()))},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def webhook_app(raw_root: Path) -> WebhookApp:
    return WebhookApp(
        WebhookStore(raw_root), shopify_secret=SHOPIFY_SECRET, stripe_secret=STRIPE_SECRET
    )


def polled_batch(log: RawLog, stream: str, payloads: list) -> BatchManifest:
    """A batch of `stream` ("storefront/orders") as a poll lands it (the fields staging reads)."""
    source, name = stream.split("/", 1)
    batch = log.open_batch(source, name)
    for index, payload in enumerate(payloads):
        batch.append({"batch_id": batch.batch_id, "record_index": index, "payload": payload})
    return batch.commit({"cursor_after": "2000-01-01T00:00:00Z"})


@dataclass
class Receiver:
    url: str
    raw_root: Path
    state_dir: Path
    app: WebhookApp
    client: requests.Session

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return self.client.post(self.url + path, data=body, headers=headers, timeout=10)

    def stats(self) -> dict[str, int]:
        return self.client.get(self.url + "/_webhooks/stats", timeout=10).json()

    def landed(self) -> list[Path]:
        return sorted((self.raw_root / "webhooks").rglob("*.jsonl"))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    raw_root = tmp_path / "raw"
    store = WebhookStore(raw_root)
    app = WebhookApp(
        store, shopify_secret=SHOPIFY_SECRET, stripe_secret=STRIPE_SECRET, max_body_bytes=200_000
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as client:
            yield Receiver(
                f"http://127.0.0.1:{server.port}", raw_root, store.state_dir, app, client
            )
    finally:
        server.shutdown()
        thread.join(timeout=5)
        store.close()
