"""What a source says about itself on an answer, beyond the answer: the notices a person must hear.

A source warns before it breaks an integration: Shopify names a deprecated version or endpoint in
`X-Shopify-API-Deprecated-Reason`, and falls forward to the oldest supported version when the one
asked for is retired (its `X-Shopify-API-Version` then differs from the pinned one); any API may
send RFC 9745 `Deprecation` and RFC 8594 `Sunset` headers; a moved endpoint answers 301/308 with a
`Location` (which `requests` follows silently for a GET). A credential may carry its own expiry
(a JWT's `exp` claim). `response_notices` gathers these into one small JSON object for the audit
line (`systems/audit.py`), None when the source said nothing; `streams/source_signals.py` turns
them into signals. Nothing here holds a secret: a JWT is decoded for its `exp` alone, unverified,
and only the expiry leaves this module; a redirect's location is redacted like any audited URL.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from integration_assets.systems.audit import redact_text, redact_url

DEPRECATED_REASON_HEADER = "X-Shopify-API-Deprecated-Reason"
DEPRECATION_HEADER = "Deprecation"  # RFC 9745: `@<epoch seconds>` (a structured-field date)
SUNSET_HEADER = "Sunset"  # RFC 8594: an HTTP-date
NOTICE_CHARS = 200
# Redirects that say the resource lives elsewhere for good (the client should change its URL).
PERMANENT_REDIRECTS = (301, 308)


def header_moment(value: str | None) -> str | None:
    """An HTTP-date (`Sat, 01 Aug 2026 00:00:00 GMT`) or an RFC 9745 `@epoch` as ISO-8601 UTC; the
    value itself (cut short) when it is neither, so a notice is never dropped for its format."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        if text.startswith("@"):
            moment = datetime.fromtimestamp(int(text[1:]), UTC)
        else:
            moment = parsedate_to_datetime(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="seconds")
    except (ValueError, TypeError, OverflowError):
        return redact_text(text)[:NOTICE_CHARS]


def response_notices(
    headers: Mapping[str, str],
    redirects: Iterable[tuple[int, str | None]] = (),
    *,
    pinned_version: str | None = None,
    served_version: str | None = None,
) -> dict[str, Any] | None:
    """The notices of one answer, or None when there are none.

    `headers` are the final answer's; `redirects` the (status, Location) of every hop followed on
    the way; `pinned_version` the API version the client asks for and `served_version` the one the
    source says it served (None when the system names no version)."""
    notices: dict[str, Any] = {}
    reason = headers.get(DEPRECATED_REASON_HEADER)
    if reason:
        notices["deprecated_reason"] = redact_text(reason.strip())[:NOTICE_CHARS]
    deprecation = header_moment(headers.get(DEPRECATION_HEADER))
    if deprecation:
        notices["deprecation"] = deprecation
    sunset = header_moment(headers.get(SUNSET_HEADER))
    if sunset:
        notices["sunset"] = sunset
    if served_version and pinned_version and served_version != pinned_version:
        notices["served_version"] = served_version
    hops = [
        {"status": int(status), "location": redact_url(location) if location else None}
        for status, location in redirects
    ]
    if hops:
        notices["redirects"] = hops
    if notices and pinned_version:
        notices["api_version"] = pinned_version
    return notices or None


def jwt_expiry(token: str | None) -> datetime | None:
    """The `exp` claim of a JWT-shaped credential (header.payload.signature), read without verifying
    it (only the source can); None when the credential is not a JWT or names no expiry. The token
    and its other claims are not kept."""
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    expiry = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return None
    try:
        return datetime.fromtimestamp(expiry, UTC)
    except (ValueError, OverflowError, OSError):
        return None
