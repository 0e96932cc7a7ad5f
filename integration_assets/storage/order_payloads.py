"""The current version of every order as the storefront sent it: core.order_heads says which version
is current, staging says which raw record it came from, and the raw log holds the payload itself.

Core keeps a normalized snapshot of each order; everything that needs the source's own document (the
customer object, refunds with their transactions, line item ids) reads it back from raw here, so it
gets exactly what the source said and nothing is copied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from integration_assets.storage.raw_log import RawLog


@dataclass(frozen=True)
class CurrentOrder:
    order_id: int
    sequence: int
    updated_at: datetime  # UTC-aware
    payload: dict[str, Any]
    raw_ref: str

    @property
    def ref(self) -> str:
        """How outbox rows and golden records name the version they were built from."""
        return f"core/order_heads:{self.order_id}@{self.sequence}"


def current_orders(con: duckdb.DuckDBPyConnection, raw_log: RawLog) -> list[CurrentOrder]:
    """Every order's head version with its raw payload, by order id."""
    heads = con.execute(
        """
        SELECT h.order_id, h.sequence, h.updated_at, any_value(s.raw_ref) FROM core.order_heads h
        JOIN staging.storefront_orders s ON s.order_id = h.order_id AND s.updated_at = h.updated_at
            AND s.payload_hash = h.payload_hash
        GROUP BY ALL ORDER BY h.order_id
        """
    ).fetchall()
    payloads = raw_log.payloads([raw_ref for *_, raw_ref in heads])
    return [
        CurrentOrder(order_id, sequence, updated_at.replace(tzinfo=UTC), payloads[raw_ref], raw_ref)
        for order_id, sequence, updated_at, raw_ref in heads
    ]
