"""The current version of every order as the storefront sent it: core.order_heads says which version
is current and holds that version's source document (`payload`, copied from the raw log at `raw_ref`).

Core keeps a normalized snapshot of each order; everything that needs the source's own document (the
customer object, refunds with their transactions, line item ids) reads it here, so it gets exactly
what the source said. The raw log stays the source of truth: `core/order_events` copies the payload
of each head it changes (and only those), a replay rebuilds it from raw, and a head whose payload is
not there yet (a warehouse built before the column existed) is read back from raw.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pandas as pd

from integration_assets.chunks import batched
from integration_assets.storage.raw_log import RawLog

PAYLOADS_PER_UPDATE = 2000  # heads' source documents held at once while they are written

# The staged version each head was applied from: its raw reference (one row per key in staging).
_HEADS_WITHOUT_PAYLOAD_SQL = """
SELECT h.order_id, any_value(s.raw_ref) FROM core.order_heads h
JOIN staging.storefront_orders s ON s.order_id = h.order_id AND s.updated_at = h.updated_at
    AND s.payload_hash = h.payload_hash
WHERE h.payload IS NULL
GROUP BY h.order_id ORDER BY h.order_id
"""


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
        return head_ref(self.order_id, self.sequence)


def head_ref(order_id: int, sequence: int) -> str:
    """`core/order_heads:<order id>@<sequence>`: one version of one order (storage/warehouse.py's
    ORDER_ID_OF_SOURCE_REF reads the order back from it)."""
    return f"core/order_heads:{order_id}@{sequence}"


def orders_condition(order_ids: Collection[int] | None) -> tuple[str, dict[str, Any]]:
    """A WHERE condition on an `order_id` column keeping `order_ids` (None: every order, `TRUE`),
    and its parameters."""
    if order_ids is None:
        return "TRUE", {}
    return "order_id IN (SELECT unnest($orders::BIGINT[]))", {"orders": sorted(order_ids)}


def payload_json(payload: Any) -> str:
    """A source document as stored in `core.order_heads.payload` (the source's key order kept)."""
    return orjson.dumps(payload).decode()


def _raw_payloads_of_heads_without_one(
    con: duckdb.DuckDBPyConnection, raw_log: RawLog
) -> dict[int, tuple[str, Any]]:
    """(raw_ref, payload) read from raw for every head whose payload column is still empty."""
    refs = dict(con.execute(_HEADS_WITHOUT_PAYLOAD_SQL).fetchall())
    if not refs:
        return {}
    payloads = raw_log.payloads(list(refs.values()))
    return {order_id: (raw_ref, payloads[raw_ref]) for order_id, raw_ref in refs.items()}


def fill_missing_payloads(con: duckdb.DuckDBPyConnection, raw_log: RawLog) -> int:
    """Copy from raw the payload of every head that has none (inside the caller's transaction).

    Heads written since the column exists carry their payload; this fills the heads of a warehouse
    built before, once: afterwards it finds nothing and reads no raw file. Returns the heads filled.
    """
    refs = con.execute(_HEADS_WITHOUT_PAYLOAD_SQL).fetchall()
    return copy_payloads_from_raw(con, raw_log, {raw_ref: order_id for order_id, raw_ref in refs})


def copy_payloads_from_raw(
    con: duckdb.DuckDBPyConnection, raw_log: RawLog, order_of_ref: dict[str, int]
) -> int:
    """Set each head's `raw_ref` and source document from the raw record it names (raw ref ->
    order id), inside the caller's transaction. Streamed from raw and written `PAYLOADS_PER_UPDATE`
    at a time: a peak-day poll's documents are gigabytes once parsed. Returns the heads written."""
    written = 0
    for chunk in batched(raw_log.iter_payloads(order_of_ref), PAYLOADS_PER_UPDATE):
        frame = pd.DataFrame(
            [[order_of_ref[ref], ref, payload_json(payload)] for ref, payload in chunk],
            columns=["order_id", "raw_ref", "payload"],
        )
        con.register("head_payloads", frame)
        try:
            con.execute(
                """
                UPDATE core.order_heads SET raw_ref = p.raw_ref, payload = p.payload
                FROM head_payloads p WHERE core.order_heads.order_id = p.order_id
                """
            )
        finally:
            con.unregister("head_payloads")
        written += len(chunk)
    return written


def current_orders(con: duckdb.DuckDBPyConnection, raw_log: RawLog) -> list[CurrentOrder]:
    """Every order's head version with its source payload, by order id (all held at once)."""
    return list(iter_current_orders(con, raw_log))


def iter_current_orders(
    con: duckdb.DuckDBPyConnection,
    raw_log: RawLog,
    chunk_size: int = 1000,
    order_ids: Collection[int] | None = None,
) -> Iterator[CurrentOrder]:
    """Every order's head version with its source payload, by order id, `chunk_size` rows fetched
    and parsed at a time: a reader that keeps only what it needs of each order holds one chunk of
    documents, not every order's. Run no other statement on `con` until the iteration ends (it
    would replace the open result).

    `order_ids`: only those orders (None: every order). One SELECT of core.order_heads. Heads still
    without a payload (written before the column existed, until `core/order_events` runs once) are
    read from raw first, as they always were; a head whose staged version cannot be found is left
    out, as before.
    """
    if order_ids is not None and not order_ids:
        return
    from_raw = _raw_payloads_of_heads_without_one(con, raw_log)
    condition, params = orders_condition(order_ids)
    result = con.execute(
        "SELECT order_id, sequence, updated_at, raw_ref, payload FROM core.order_heads "
        f"WHERE {condition} ORDER BY order_id",
        params,
    )
    while heads := result.fetchmany(chunk_size):
        for order_id, sequence, updated_at, raw_ref, payload in heads:
            if payload is None:
                if order_id not in from_raw:
                    continue
                raw_ref, document = from_raw[order_id]
            else:
                document = orjson.loads(payload)
            yield CurrentOrder(
                order_id, sequence, updated_at.replace(tzinfo=UTC), document, raw_ref
            )
