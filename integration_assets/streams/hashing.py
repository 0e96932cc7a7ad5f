"""Content hashes used as payload identity, version keys and idempotency keys."""

from __future__ import annotations

import hashlib

import orjson


def canonical_json(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def payload_hash(value: object) -> str:
    """sha256 of the canonical JSON form: the same content always gives the same hash."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
