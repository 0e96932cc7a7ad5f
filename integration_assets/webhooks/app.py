"""The webhook receiver as a WSGI app: verify, land durably in raw, then answer.

- `POST /webhooks/shopify`, `POST /webhooks/stripe`: 401 when unsigned, forged or stale (no side effect:
  nothing is written, only a counter moves); 413 over `max_body_bytes`; 400 when the signed body is not
  JSON or names no usable id/topic; 200 only after the delivery is on disk (or is a known redelivery,
  or is older than the version already landed, which is counted as stale).
- `GET /_webhooks/stats`: the counters as JSON.

`integration-assets webhooks serve` runs it on werkzeug's threaded server; in production run the same
WSGI callable (`create_app()` builds it from the environment) under any WSGI server, e.g.
`gunicorn 'integration_assets.webhooks.app:create_app()'`, behind HTTPS.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from werkzeug.wrappers import Request, Response

from integration_assets.webhooks.routing import stripe_object_type
from integration_assets.webhooks.store import (
    Delivery,
    UnsafeStreamName,
    WebhookStore,
    shopify_object,
    stripe_object,
)
from integration_assets.webhooks.verify import (
    STRIPE_DEFAULT_TOLERANCE_S,
    Verdict,
    verify_shopify,
    verify_stripe,
)

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY_BYTES = 1_000_000


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


class WebhookApp:
    def __init__(
        self,
        store: WebhookStore,
        shopify_secret: str | Iterable[str] = "",
        stripe_secret: str | Iterable[str] = "",
        stripe_tolerance_s: int = STRIPE_DEFAULT_TOLERANCE_S,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self._shopify_secret = shopify_secret
        self._stripe_secret = stripe_secret
        self.stripe_tolerance_s = stripe_tolerance_s
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    def configured_providers(self) -> list[str]:
        """The providers whose secret is set (the others answer 401 to everything)."""
        secrets = (("shopify", self._shopify_secret), ("stripe", self._stripe_secret))
        return [name for name, value in secrets if value]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        routes = {
            ("POST", "/webhooks/shopify"): self._shopify,
            ("POST", "/webhooks/stripe"): self._stripe,
            ("GET", "/_webhooks/stats"): self._stats,
        }
        route = routes.get((request.method, request.path))
        if route is None:
            known_path = any(path == request.path for _, path in routes)
            return _json(405 if known_path else 404, {"error": "no such route"})
        return route(request)

    def _stats(self, request: Request) -> Response:
        return _json(200, self.store.stats())

    def _read_body(self, request: Request) -> bytes | None:
        """The raw body, or None when it exceeds the limit (read at most limit + 1 bytes)."""
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return None
        body = request.stream.read(self.max_body_bytes + 1)
        return None if len(body) > self.max_body_bytes else body

    def _reject(self, provider: str, verdict: Verdict) -> Response:
        self.store.count(f"{provider}_rejected_401")
        log.warning("webhooks: rejected %s delivery: %s", provider, verdict.reason)
        return _json(401, {"error": verdict.reason})

    def _too_large(self, provider: str) -> Response:
        self.store.count(f"{provider}_rejected_413")
        return _json(413, {"error": f"body over {self.max_body_bytes} bytes"})

    def _bad_request(self, provider: str, reason: str) -> Response:
        self.store.count(f"{provider}_rejected_400")
        log.warning("webhooks: bad %s delivery: %s", provider, reason)
        return _json(400, {"error": reason})

    def _shopify(self, request: Request) -> Response:
        body = self._read_body(request)
        if body is None:
            return self._too_large("shopify")
        headers = list(request.headers.items())
        verdict = verify_shopify(body, headers, self._shopify_secret)
        if not verdict.ok:
            return self._reject("shopify", verdict)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._bad_request("shopify", "body is not JSON")
        object_key, version = shopify_object(verdict.topic, payload)
        delivery = Delivery(
            "shopify",
            verdict.topic,
            verdict.delivery_id,
            body,
            payload,
            headers,
            object_key,
            version,
        )
        return self._land(delivery)

    def _stripe(self, request: Request) -> Response:
        body = self._read_body(request)
        if body is None:
            return self._too_large("stripe")
        verdict = verify_stripe(
            body,
            request.headers.get("Stripe-Signature"),
            self._stripe_secret,
            now=self.clock(),
            tolerance_s=self.stripe_tolerance_s,
        )
        if not verdict.ok:
            return self._reject("stripe", verdict)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._bad_request("stripe", "body is not JSON")
        if not isinstance(payload, dict) or not payload.get("id") or not payload.get("type"):
            return self._bad_request("stripe", "event has no id or type")
        object_key, version = stripe_object(payload)
        delivery = Delivery(
            "stripe",
            str(payload["type"]),
            str(payload["id"]),
            body,
            payload,
            list(request.headers.items()),
            object_key,
            version,
            object_type=stripe_object_type(payload),
        )
        return self._land(delivery)

    def _land(self, delivery: Delivery) -> Response:
        try:
            outcome = self.store.land(delivery)
        except UnsafeStreamName as error:
            return self._bad_request(delivery.provider, str(error))
        return _json(200, {"status": outcome.status, "raw_ref": outcome.raw_ref})


def create_app(raw_dir: Path | None = None, state_dir: Path | None = None) -> WebhookApp:
    """The app configured from the environment: SHOPIFY_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET (each may
    hold several comma-separated secrets during a rotation) and the raw log root; the ledger in
    `state_dir` (default: `webhooks/` beside the raw root, i.e. `<data dir>/webhooks`)."""
    from integration_assets.storage.resources import RawLogResource

    root = Path(raw_dir) if raw_dir else RawLogResource().log().root
    return WebhookApp(
        WebhookStore(root, Path(state_dir) if state_dir else None),
        shopify_secret=_env_secrets("SHOPIFY_WEBHOOK_SECRET"),
        stripe_secret=_env_secrets("STRIPE_WEBHOOK_SECRET"),
    )


def _env_secrets(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]
