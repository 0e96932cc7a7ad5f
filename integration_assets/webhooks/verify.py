"""Pure signature checks for Shopify and Stripe webhook deliveries.

Shopify: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw body)); the topic and webhook id headers
are required (the id is the dedup key). Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, each
v1 = hex(HMAC-SHA256(secret, f"{t}.{raw body}")); any v1 may match (secret rotation); `t` must be within
`tolerance_s` of now in either direction. Comparisons are constant-time. A `Verdict.reason` is short and
safe to send back in a 401 body or to log: it never contains the secret or a signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

STRIPE_DEFAULT_TOLERANCE_S = 300

# Shopify's newer "Events" delivery uses the same names without the `X-` prefix.
SHOPIFY_HMAC_HEADER = "x-shopify-hmac-sha256"
SHOPIFY_TOPIC_HEADER = "x-shopify-topic"
SHOPIFY_WEBHOOK_ID_HEADER = "x-shopify-webhook-id"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    topic: str = ""
    delivery_id: str = ""


def header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str:
    """The value of header `name` (case-insensitive; `x-` prefix optional), or ''."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    bare = wanted.removeprefix("x-")
    for key, value in items:
        lowered = key.lower()
        if lowered in (wanted, bare):
            return str(value).strip()
    return ""


def _secrets(secret: str | Iterable[str]) -> list[bytes]:
    values = [secret] if isinstance(secret, str) else list(secret)
    return [value.encode() for value in values if value]


def verify_shopify(
    raw_body: bytes,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    secret: str | Iterable[str],
) -> Verdict:
    """Verify one Shopify delivery. `secret` may be several (Shopify signs with the old one for up to 1 h)."""
    keys = _secrets(secret)
    if not keys:
        return Verdict(False, "no shopify webhook secret configured")
    signature = header(headers, SHOPIFY_HMAC_HEADER)
    if not signature:
        return Verdict(False, "missing X-Shopify-Hmac-Sha256")
    topic = header(headers, SHOPIFY_TOPIC_HEADER)
    if not topic:
        return Verdict(False, "missing X-Shopify-Topic")
    delivery_id = header(headers, SHOPIFY_WEBHOOK_ID_HEADER)
    if not delivery_id:
        return Verdict(False, "missing X-Shopify-Webhook-Id")
    if not raw_body:
        return Verdict(False, "empty body")
    try:
        given = base64.b64decode(signature, validate=True)
    except ValueError:
        return Verdict(False, "X-Shopify-Hmac-Sha256 is not base64")
    for key in keys:
        expected = hmac.new(key, raw_body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return Verdict(True, "ok", topic=topic, delivery_id=delivery_id)
    return Verdict(False, "signature does not match")


def parse_stripe_signature(signature_header: str) -> tuple[int, list[str]] | None:
    """(`t`, every `v1` value) of a `Stripe-Signature` header, or None when garbled. Other schemes are ignored."""
    timestamp: int | None = None
    v1: list[str] = []
    for part in signature_header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                return None
            timestamp = int(value)
        elif key == "v1" and value:
            v1.append(value.strip())
    if timestamp is None:
        return None
    return timestamp, v1


def verify_stripe(
    raw_body: bytes,
    signature_header: str | None,
    secret: str | Iterable[str],
    now: float,
    tolerance_s: int = STRIPE_DEFAULT_TOLERANCE_S,
) -> Verdict:
    """Verify one Stripe delivery at unix time `now`."""
    keys = _secrets(secret)
    if not keys:
        return Verdict(False, "no stripe webhook secret configured")
    if not signature_header:
        return Verdict(False, "missing Stripe-Signature")
    parsed = parse_stripe_signature(signature_header)
    if parsed is None:
        return Verdict(False, "garbled Stripe-Signature")
    timestamp, candidates = parsed
    if not candidates:
        return Verdict(False, "no v1 signature in Stripe-Signature")
    if abs(now - timestamp) > tolerance_s:
        return Verdict(False, f"timestamp outside the {tolerance_s}s tolerance")
    signed = str(timestamp).encode() + b"." + raw_body
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).hexdigest()
        if any(
            hmac.compare_digest(expected.encode(), candidate.lower().encode())
            for candidate in candidates
        ):
            return Verdict(True, "ok")
    return Verdict(False, "signature does not match")


def shopify_signature(raw_body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` Shopify sends with `raw_body` (what `verify_shopify` checks)."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def stripe_signature(raw_body: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` Stripe sends with `raw_body` at `timestamp` (what `verify_stripe` checks)."""
    signed = str(timestamp).encode() + b"." + raw_body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"
