"""Durable landing of accepted webhook deliveries, with dedup by delivery id and "older than known" skips.

Each accepted delivery becomes one immutable raw batch of one record under source `webhooks`, stream
`shopify/<topic>` or `stripe/<event type>` (see `storage.raw_log`: fsync, atomic rename, manifest last);
the stream directory is fsynced too, so the batch survives a crash once `land` returns. The record holds
the delivery id, received-at, the headers minus secrets and signatures, the raw body verbatim as text,
its sha256 and the parsed `payload` (so `RawLog.payloads(raw_refs)` works on it); the manifest's details
name the delivery, its object and, for Stripe, the object's type (`routing` reads it to pick a stream).

The ledger is a small sqlite file beside the raw log, never inside it (raw holds only immutable batch
files): `<state dir>/ledger.sqlite3`, the state dir being `webhooks/` in the raw root's parent (so
`<data dir>/webhooks`) unless given. sqlite rather than DuckDB: tiny point writes from many request
threads, FULL synchronous commits, no lock held between requests. A ledger left at its former place,
`<raw root>/webhooks/.ledger.sqlite3`, is moved to the new one on start, so no delivery seen before
is landed twice.
It records every delivery id seen (dedup: a redelivery lands nothing) and, per object, the newest
version landed (Shopify `updated_at` of the order/product..., Stripe event `created` per `data.object.id`);
a delivery strictly older than that lands nothing and is counted stale. One lock serializes decisions
and writes, so two threads never land the same delivery twice. The raw batch is written before the
ledger row: a crash between the two can at worst land one duplicate on redelivery, never lose one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integration_assets.storage.raw_log import RawLog
from integration_assets.webhooks.routing import stripe_data_object

logger = logging.getLogger(__name__)

SOURCE = "webhooks"
LEDGER_NAME = "ledger.sqlite3"
LEGACY_LEDGER_NAME = ".ledger.sqlite3"  # its former place: <raw root>/webhooks/.ledger.sqlite3
# Never copied into raw: signatures, and anything that can carry a credential.
DROPPED_HEADERS = frozenset(
    {
        "x-shopify-hmac-sha256",
        "shopify-hmac-sha256",
        "stripe-signature",
        "authorization",
        "proxy-authorization",
        "cookie",
    }
)
_STREAM_PART = re.compile(r"^[a-z0-9_.\-]+$")


class UnsafeStreamName(ValueError):
    """A topic or event type that cannot be a raw stream name (it would escape the raw directory)."""


@dataclass(frozen=True)
class Delivery:
    provider: str  # "shopify" or "stripe"
    kind: str  # Shopify topic ("orders/create") or Stripe event type ("charge.succeeded")
    delivery_id: str
    raw_body: bytes
    payload: Any
    headers: list[tuple[str, str]]
    object_key: (
        str | None
    )  # "shopify/orders/123", "stripe/ch_1"; None when the body names no object
    object_version: float | None  # unix seconds; None when unknown (never counted stale)
    object_type: str | None = None  # Stripe: the `object` of data.object ("charge"...), for routing


@dataclass(frozen=True)
class LandingOutcome:
    status: str  # "landed", "duplicate" or "stale"
    raw_ref: str | None = None


def stream_for(provider: str, kind: str) -> str:
    parts = kind.split("/")
    if not all(_STREAM_PART.match(part) and part not in {".", ".."} for part in parts):
        raise UnsafeStreamName(f"unusable {provider} topic/type {kind[:80]!r}")
    return f"{provider}/{kind}"


def _unix(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def shopify_object(topic: str, payload: Any) -> tuple[str | None, float | None]:
    """("shopify/<resource>/<id>", updated_at) of a Shopify body, e.g. orders/updated -> shopify/orders/42."""
    if not isinstance(payload, dict) or payload.get("id") is None:
        return None, None
    resource = topic.split("/", 1)[0]
    return f"shopify/{resource}/{payload['id']}", _unix(payload.get("updated_at"))


def stripe_object(payload: Any) -> tuple[str | None, float | None]:
    """("stripe/<data.object.id>", event `created`) of a Stripe event."""
    if not isinstance(payload, dict):
        return None, None
    obj = stripe_data_object(payload)
    if not isinstance(obj, dict) or not obj.get("id"):
        return None, None
    return f"stripe/{obj['id']}", _unix(payload.get("created"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_state_dir(raw_root: Path) -> Path:
    """`<data dir>/webhooks`: beside the raw root (`<data dir>/raw`), not inside it."""
    return Path(raw_root).parent / SOURCE


def adopt_legacy_ledger(raw_root: Path, ledger_path: Path) -> bool:
    """Move a ledger from its former place inside the raw tree to `ledger_path` (when there is none
    there yet); True when one was moved. Both present: the new one is kept and the old one reported."""
    legacy = Path(raw_root) / SOURCE / LEGACY_LEDGER_NAME
    if not legacy.exists():
        return False
    if ledger_path.exists():
        logger.warning(
            "webhooks: ignoring the former ledger %s: %s is the ledger in use", legacy, ledger_path
        )
        return False
    shutil.move(legacy, ledger_path)
    logger.info("webhooks: moved the ledger out of the raw tree, to %s", ledger_path)
    return True


class WebhookStore:
    def __init__(self, raw_root: Path, state_dir: Path | None = None):
        self.log = RawLog(Path(raw_root))
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.state_dir = Path(state_dir) if state_dir else default_state_dir(self.log.root)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ledger_path = self.state_dir / LEDGER_NAME
        adopt_legacy_ledger(self.log.root, self.ledger_path)
        self._db = sqlite3.connect(self.ledger_path, check_same_thread=False)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS deliveries (
                provider TEXT NOT NULL, delivery_id TEXT NOT NULL, outcome TEXT NOT NULL,
                raw_ref TEXT, received_at TEXT NOT NULL, PRIMARY KEY (provider, delivery_id));
            CREATE TABLE IF NOT EXISTS object_versions (
                object_key TEXT PRIMARY KEY, version REAL NOT NULL, raw_ref TEXT NOT NULL);
            """
        )
        self._db.commit()

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {key: int(value) for key, value in sorted(self.counters.items())}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def land(self, delivery: Delivery) -> LandingOutcome:
        """Land `delivery` durably unless it is a redelivery or older than what is known; then record it."""
        stream = stream_for(delivery.provider, delivery.kind)
        received_at = datetime.now(UTC).isoformat()
        with self._lock:
            self.counters["received"] += 1
            seen = self._db.execute(
                "SELECT raw_ref FROM deliveries WHERE provider = ? AND delivery_id = ?",
                (delivery.provider, delivery.delivery_id),
            ).fetchone()
            if seen is not None:
                self.counters["duplicates"] += 1
                return LandingOutcome("duplicate", seen[0])
            known = None
            if delivery.object_key is not None and delivery.object_version is not None:
                known = self._db.execute(
                    "SELECT version FROM object_versions WHERE object_key = ?",
                    (delivery.object_key,),
                ).fetchone()
            if known is not None and delivery.object_version < known[0]:
                self.counters["stale"] += 1
                self._db.execute(
                    "INSERT INTO deliveries VALUES (?, ?, 'stale', NULL, ?)",
                    (delivery.provider, delivery.delivery_id, received_at),
                )
                self._db.commit()
                return LandingOutcome("stale")
            raw_ref = self._write_raw(delivery, stream, received_at)
            self._db.execute(
                "INSERT INTO deliveries VALUES (?, ?, 'landed', ?, ?)",
                (delivery.provider, delivery.delivery_id, raw_ref, received_at),
            )
            if delivery.object_key is not None and delivery.object_version is not None:
                self._db.execute(
                    "INSERT INTO object_versions VALUES (?, ?, ?) ON CONFLICT (object_key) DO UPDATE"
                    " SET version = excluded.version, raw_ref = excluded.raw_ref"
                    " WHERE excluded.version >= object_versions.version",
                    (delivery.object_key, delivery.object_version, raw_ref),
                )
            self._db.commit()
            self.counters["landed"] += 1
            return LandingOutcome("landed", raw_ref)

    def _write_raw(self, delivery: Delivery, stream: str, received_at: str) -> str:
        body_sha256 = hashlib.sha256(delivery.raw_body).hexdigest()
        headers = {
            key.lower(): value
            for key, value in delivery.headers
            if key.lower() not in DROPPED_HEADERS
        }
        batch = self.log.open_batch(SOURCE, stream)
        try:
            batch.append(
                {
                    "record_index": 0,
                    "provider": delivery.provider,
                    "kind": delivery.kind,
                    "delivery_id": delivery.delivery_id,
                    "received_at": received_at,
                    "headers": headers,
                    "body": delivery.raw_body.decode("utf-8"),
                    "body_sha256": body_sha256,
                    "payload": delivery.payload,
                }
            )
            manifest = batch.commit(
                {
                    "delivery_id": delivery.delivery_id,
                    "provider": delivery.provider,
                    "kind": delivery.kind,
                    "body_sha256": body_sha256,
                    "object_key": delivery.object_key,
                    **({"object_type": delivery.object_type} if delivery.object_type else {}),
                }
            )
        except BaseException:
            batch.abort()
            raise
        _fsync_dir(manifest.path.parent)
        return manifest.raw_ref(0)
