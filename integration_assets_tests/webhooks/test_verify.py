"""Pure signature checks, against vectors computed here independently of the module under test."""

from __future__ import annotations

import base64
import hashlib
import hmac

from integration_assets.webhooks.verify import parse_stripe_signature, verify_shopify, verify_stripe

SECRET = "hush"
BODY = b'{"id":450789469,"updated_at":"2008-01-10T11:00:00-05:00"}'


def _shopify_headers(signature: str, **extra: str) -> dict[str, str]:
    headers = {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    headers.update(extra)
    return headers


def _shopify_sig(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_shopify_known_vector():
    # base64(HMAC-SHA256(key="hush", msg=BODY)), computed outside Python:
    # printf '%s' "$BODY" | openssl dgst -sha256 -hmac hush -binary | base64
    expected = "cCJr37piPs9TD69kUSTupAxqnZ5YCCw8t8TgxylzITI="
    verdict = verify_shopify(BODY, _shopify_headers(expected), SECRET)
    assert verdict.ok and verdict.topic == "orders/create"
    assert verdict.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def test_shopify_rejects_forged_body_and_wrong_secret():
    signature = _shopify_sig(BODY)
    forged = BODY.replace(b"450789469", b"450789470")
    assert (
        verify_shopify(forged, _shopify_headers(signature), SECRET).reason
        == "signature does not match"
    )
    assert not verify_shopify(BODY, _shopify_headers(_shopify_sig(BODY, "other")), SECRET).ok
    assert verify_shopify(BODY, _shopify_headers("not base64!!"), SECRET).reason.endswith(
        "not base64"
    )


def test_shopify_requires_signature_topic_and_id_and_a_body():
    signature = _shopify_sig(BODY)
    for missing in ("X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id"):
        headers = _shopify_headers(signature)
        del headers[missing]
        verdict = verify_shopify(BODY, headers, SECRET)
        assert not verdict.ok and verdict.reason == f"missing {missing}"
    assert verify_shopify(b"", _shopify_headers(_shopify_sig(b"")), SECRET).reason == "empty body"
    assert verify_shopify(BODY, _shopify_headers(signature), "").reason.startswith("no shopify")


def test_shopify_header_names_are_case_insensitive_and_prefix_optional():
    signature = _shopify_sig(BODY)
    lowered = [(key.lower(), value) for key, value in _shopify_headers(signature).items()]
    assert verify_shopify(BODY, lowered, SECRET).ok
    unprefixed = {
        key.lower().removeprefix("x-"): value for key, value in _shopify_headers(signature).items()
    }
    assert verify_shopify(BODY, unprefixed, SECRET).ok


def test_shopify_accepts_the_old_secret_during_a_rotation():
    signature = _shopify_sig(BODY, "old")
    assert verify_shopify(BODY, _shopify_headers(signature), ["new", "old"]).ok
    assert not verify_shopify(BODY, _shopify_headers(signature), ["new"]).ok


def _stripe_v1(timestamp: int, body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_stripe_known_vector():
    # hex(HMAC-SHA256(key="hush", msg="1700000000." + BODY)), computed outside Python with openssl.
    v1 = "a3a0c8dbde1a65eaf207ead8a78a15842f3fcf7c9de1d43c17c2e6f66ae92bf2"
    assert verify_stripe(BODY, f"t=1700000000,v1={v1}", SECRET, now=1_700_000_000).ok
    assert verify_stripe(BODY, f"t=1700000000,v1={v1.upper()}", SECRET, now=1_700_000_000).ok


def test_stripe_valid_within_tolerance_both_directions():
    t = 1_700_000_000
    header = f"t={t},v1={_stripe_v1(t, BODY)}"
    assert verify_stripe(BODY, header, SECRET, now=t + 300).ok
    assert verify_stripe(BODY, header, SECRET, now=t - 300).ok
    stale = verify_stripe(BODY, header, SECRET, now=t + 301)
    future = verify_stripe(BODY, header, SECRET, now=t - 301)
    assert not stale.ok and "tolerance" in stale.reason
    assert not future.ok and "tolerance" in future.reason
    assert verify_stripe(BODY, header, SECRET, now=t + 1000, tolerance_s=1000).ok


def test_stripe_several_v1_entries_and_other_schemes():
    t = 1_700_000_000
    good = _stripe_v1(t, BODY)
    wrong = _stripe_v1(t, BODY, "rolled-away")
    header = f"t={t},v0={good},v1={wrong},v1={good}"
    assert verify_stripe(BODY, header, SECRET, now=t).ok
    # A matching value under another scheme is ignored: only v1 counts.
    assert not verify_stripe(BODY, f"t={t},v0={good},v1={wrong}", SECRET, now=t).ok
    assert parse_stripe_signature(header) == (t, [wrong, good])


def test_stripe_rejects_forged_unsigned_and_garbled():
    t = 1_700_000_000
    header = f"t={t},v1={_stripe_v1(t, BODY)}"
    assert verify_stripe(BODY + b" ", header, SECRET, now=t).reason == "signature does not match"
    assert not verify_stripe(BODY, header, "other", now=t).ok
    # The timestamp is part of the signed message: moving it breaks the signature.
    moved = f"t={t + 1},v1={_stripe_v1(t, BODY)}"
    assert verify_stripe(BODY, moved, SECRET, now=t).reason == "signature does not match"
    assert verify_stripe(BODY, None, SECRET, now=t).reason == "missing Stripe-Signature"
    for garbled in ("v1=abc", "t=abc,v1=abc", "garbage", f"t={t},t={t},v1=ab"):
        assert verify_stripe(BODY, garbled, SECRET, now=t).reason == "garbled Stripe-Signature"
    assert verify_stripe(BODY, f"t={t}", SECRET, now=t).reason.startswith("no v1")
    assert not verify_stripe(BODY, f"t={t},v1=é", SECRET, now=t).ok


def test_reasons_never_contain_the_secret():
    t = 1_700_000_000
    verdicts = [
        verify_stripe(BODY, f"t={t},v1=00", SECRET, now=t),
        verify_stripe(BODY, f"t={t},v1={_stripe_v1(t, BODY)}", SECRET, now=t + 999),
        verify_shopify(BODY, _shopify_headers("AAAA"), SECRET),
    ]
    assert all(SECRET not in verdict.reason for verdict in verdicts)
