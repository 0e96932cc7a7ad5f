"""Which staging stream stages each landed webhook batch, and the raw batches each stream stages.

A webhook batch (raw source `webhooks`, stream `shopify/<topic>` or `stripe/<event type>`, one record
whose `payload` is the delivery's parsed body) is staged by the staging asset of the same resource,
under that resource's stream name, beside the polled batches: the same contract, the same blocking
checks, the same promotion to core. So a webhook version identical to a polled one is an exact
duplicate (counted and dropped), a newer one is a new version, an older one is stale in core.

- Shopify `orders/create|updated|paid|cancelled|fulfilled|partially_fulfilled`: the body is the full
  Order resource, bare (no `{"order": ...}` envelope) -> `storefront/orders`;
- Shopify `products/create|update`: the full Product resource -> `storefront/products`;
- a Stripe event whose `data.object.object` is a charge, refund, dispute, payout or balance
  transaction -> `payments/<resource>`; what is staged is the event's `data.object`, not the event.

Anything else (`orders/delete` and `products/delete`, whose body is only an id; `refunds/create`;
`customer.created`...) stays in raw, and no stream stages it: `webhook_batches_sensor` reports it as
"landed, not staged by any stream". Pure apart from reading the raw log; imports no Dagster asset.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from integration_assets.storage.raw_log import MANIFEST_SUFFIX, BatchManifest, RawLog

SOURCE = "webhooks"

# The staging streams (the same names as in integration_assets/defs/*/names.py; a test keeps them equal).
ORDERS_STREAM = "storefront/orders"
PRODUCTS_STREAM = "storefront/products"
PAYMENTS_SOURCE = "payments"

SHOPIFY_ORDER_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
)
SHOPIFY_PRODUCT_TOPICS = ("products/create", "products/update")
SHOPIFY_TOPIC_STREAMS = {
    **{topic: ORDERS_STREAM for topic in SHOPIFY_ORDER_TOPICS},
    **{topic: PRODUCTS_STREAM for topic in SHOPIFY_PRODUCT_TOPICS},
}
# Stripe `object` of an event's data.object -> the payments resource staged from it.
STRIPE_OBJECT_RESOURCES = {
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "payout": "payouts",
    "balance_transaction": "balance_transactions",
}


def stripe_data_object(event: Any) -> Any:
    """A Stripe event's `data.object` (the charge, refund... it is about), or None."""
    data = event.get("data") if isinstance(event, dict) else None
    return data.get("object") if isinstance(data, dict) else None


def stripe_object_type(event: Any) -> str | None:
    """The `object` of a Stripe event's `data.object` ("charge", "refund"...), or None."""
    obj = stripe_data_object(event)
    kind = obj.get("object") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) and kind else None


def target_stream(provider: str, kind: str, object_type: str | None = None) -> str | None:
    """The staging stream that stages a delivery (Shopify topic, or Stripe event type and the
    `object` of its data.object), or None when no stream stages it."""
    if provider == "shopify":
        return SHOPIFY_TOPIC_STREAMS.get(kind)
    if provider == "stripe" and object_type in STRIPE_OBJECT_RESOURCES:
        return f"{PAYMENTS_SOURCE}/{STRIPE_OBJECT_RESOURCES[object_type]}"
    return None


def provider_and_kind(manifest: BatchManifest) -> tuple[str, str]:
    """("shopify", "orders/create") of a webhook batch, from its stream `shopify/orders/create`."""
    provider, _, kind = manifest.stream.partition("/")
    return provider, kind


def manifest_target(log: RawLog, manifest: BatchManifest) -> str | None:
    """The staging stream of one webhook batch. The Stripe object type is in the manifest's details
    (read from the record for a batch landed before it was recorded there)."""
    provider, kind = provider_and_kind(manifest)
    object_type = None
    if provider == "stripe":
        if "object_type" in manifest.details:
            object_type = manifest.details["object_type"]
        else:
            object_type = next(
                (stripe_object_type(r.get("payload")) for r in log.read_records(manifest)), None
            )
    return target_stream(provider, kind, object_type)


def batch_id_of(manifest_path: Path) -> str:
    return manifest_path.name.removesuffix(MANIFEST_SUFFIX)


def webhook_manifest_paths(log: RawLog, provider: str | None = None) -> list[Path]:
    """The manifest of every committed webhook batch (of one provider, or all), oldest batch first.
    Only file names are listed: nothing is read."""
    folder = log.root / SOURCE / (provider or "")
    if not folder.is_dir():
        return []
    return sorted(folder.rglob(f"*{MANIFEST_SUFFIX}"), key=batch_id_of)


def stripe_batches_by_stream(log: RawLog) -> dict[str, list[BatchManifest]]:
    """Every Stripe webhook batch a payments stream stages, by that stream, oldest first: one pass
    over the Stripe manifests, whatever the number of payments streams asking."""
    by_stream: dict[str, list[BatchManifest]] = {}
    for path in webhook_manifest_paths(log, "stripe"):
        manifest = log.read_manifest(path)
        stream = manifest_target(log, manifest)
        if stream is not None:
            by_stream.setdefault(stream, []).append(manifest)
    return by_stream


def webhook_batches_for(log: RawLog, stream: str) -> list[BatchManifest]:
    """The webhook batches `stream` stages, oldest first."""
    if stream.startswith(f"{PAYMENTS_SOURCE}/"):
        return stripe_batches_by_stream(log).get(stream, [])
    topics = [topic for topic, target in SHOPIFY_TOPIC_STREAMS.items() if target == stream]
    return _by_batch_id(m for topic in topics for m in log.batches(SOURCE, f"shopify/{topic}"))


def batches_staged_as(log: RawLog, stream: str) -> list[BatchManifest]:
    """Every raw batch staged under `stream` ("storefront/orders"): the polled batches of that
    stream and the webhook batches routed to it, oldest first (batch ids sort by landing time)."""
    source, name = stream.split("/", 1)
    return _by_batch_id([*log.batches(source, name), *webhook_batches_for(log, stream)])


def payments_batches_staged(log: RawLog, streams: Iterable[str]) -> dict[str, list[BatchManifest]]:
    """`batches_staged_as` for each payments stream, reading the Stripe manifests once for all."""
    stripe = stripe_batches_by_stream(log)
    return {
        stream: _by_batch_id([*log.batches(*stream.split("/", 1)), *stripe.get(stream, [])])
        for stream in streams
    }


def staged_payload(manifest: BatchManifest, record: dict[str, Any]) -> Any:
    """What staging types from one raw record: its `payload`, except for a Stripe event (a webhook
    batch's, or a poll of the event log's), where the staged object is the event's `data.object`."""
    payload = record.get("payload")
    if manifest.source == SOURCE and provider_and_kind(manifest)[0] == "stripe":
        return stripe_data_object(payload)
    if (
        manifest.source == PAYMENTS_SOURCE
        and isinstance(payload, dict)
        and payload.get("object") == "event"
    ):
        return stripe_data_object(payload)
    return payload


def _by_batch_id(manifests: Iterable[BatchManifest]) -> list[BatchManifest]:
    return sorted(manifests, key=lambda manifest: manifest.batch_id)
