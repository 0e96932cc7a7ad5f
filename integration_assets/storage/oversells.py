"""core.inventory_oversells: one row per oversell episode of a SKU, written whole and read per SKU.

A row is a stretch during which the SKU's available-to-promise was below zero (`started_at` until
`ended_at`, NULL while still below), its lowest available, and each order short of stock in it once:
`channels[i]` is the sales channel of `orders[i]`. Reads and writes are set-based and cost
O(episodes + orders), however long a SKU stays oversold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from integration_assets.streams.inventory_ledger import (
    NAMED_SHORT_ORDERS,
    Oversell,
    short_orders_text,
)

# The channel of an order is Shopify's `source_name` on its newest staged version (web, pos, an app's
# id); "unknown" when staging has none. Joined in DuckDB, not looked up order by order.
WRITE_SQL = """
CREATE OR REPLACE TABLE core.inventory_oversells AS
WITH episodes AS (
    SELECT CAST(episode AS BIGINT) AS episode, CAST(sku AS VARCHAR) AS sku,
           CAST(started_at AS TIMESTAMP) AS started_at, CAST(ended_at AS TIMESTAMP) AS ended_at,
           CAST(lowest_available AS BIGINT) AS lowest_available, CAST(orders AS BIGINT[]) AS orders
    FROM oversell_episodes
),
short AS (
    SELECT episode, unnest(orders) AS order_id, generate_subscripts(orders, 1) AS position
    FROM episodes
),
channel AS (
    SELECT order_id, arg_max(source_name, updated_at) AS channel FROM staging.storefront_orders
    WHERE order_id IN (SELECT order_id FROM short) GROUP BY order_id
),
channels AS (
    SELECT episode, list(coalesce(nullif(channel, ''), 'unknown') ORDER BY position) AS channels
    FROM short LEFT JOIN channel USING (order_id) GROUP BY episode
)
SELECT sku, started_at, ended_at, lowest_available, orders,
       coalesce(channels, CAST([] AS VARCHAR[])) AS channels
FROM episodes LEFT JOIN channels USING (episode)
ORDER BY episode
"""

# Per SKU: its episodes, the lowest available in any of them, and its short orders (each once; the
# first `$named` by id with their channel, the others only counted).
OVERSOLD_SKUS_SQL = """
WITH short AS (
    SELECT DISTINCT sku, unnest(orders) AS order_id, unnest(channels) AS channel
    FROM core.inventory_oversells
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY sku ORDER BY order_id) AS rank FROM short
),
orders_by_sku AS (
    SELECT sku,
           list(order_id ORDER BY order_id) FILTER (WHERE rank <= $named) AS named_orders,
           list(channel ORDER BY order_id) FILTER (WHERE rank <= $named) AS named_channels,
           count(*) AS short_orders,
           list(DISTINCT channel ORDER BY channel) AS sold_on
    FROM ranked GROUP BY sku
),
episodes_by_sku AS (
    SELECT sku, count(*) AS episodes, min(lowest_available) AS lowest_available,
           min(started_at) FILTER (WHERE ended_at IS NULL) AS open_since,
           max(ended_at) AS last_ended
    FROM core.inventory_oversells GROUP BY sku
)
SELECT sku, episodes, open_since, last_ended, lowest_available, named_orders, named_channels,
       short_orders, sold_on
FROM episodes_by_sku JOIN orders_by_sku USING (sku)
ORDER BY sku
"""


@dataclass(frozen=True)
class OversoldSku:
    sku: str
    episodes: int
    open_since: datetime | None  # the start of its open episode, if it is still below zero
    last_ended: datetime | None
    lowest_available: int
    named_orders: list[int]  # the first short orders by id...
    named_channels: list[str]  # ...and their channels
    short_orders: int  # every short order, once
    sold_on: list[str]  # the distinct channels of all of them


def write_oversells(connection: duckdb.DuckDBPyConnection, found: list[Oversell]) -> None:
    """Rebuild core.inventory_oversells from the episodes (inside the caller's transaction)."""
    frame = pd.DataFrame(
        {
            "episode": range(len(found)),
            "sku": [o.sku for o in found],
            "started_at": [o.started_at.replace(tzinfo=None) for o in found],
            "ended_at": [o.ended_at.replace(tzinfo=None) if o.ended_at else None for o in found],
            "lowest_available": [o.lowest_available for o in found],
            "orders": [list(o.orders) for o in found],
        }
    )
    connection.register("oversell_episodes", frame)
    try:
        connection.execute(WRITE_SQL)
    finally:
        connection.unregister("oversell_episodes")


def oversold_skus(
    connection: duckdb.DuckDBPyConnection, named: int = NAMED_SHORT_ORDERS
) -> list[OversoldSku]:
    """Each SKU that has an oversell episode, by SKU, naming at most `named` of its short orders."""
    return [
        OversoldSku(
            sku,
            int(episodes),
            open_since,
            last_ended,
            int(lowest),
            [int(o) for o in named_orders],
            list(named_channels),
            int(short_orders),
            list(sold_on),
        )
        for (
            sku,
            episodes,
            open_since,
            last_ended,
            lowest,
            named_orders,
            named_channels,
            short_orders,
            sold_on,
        ) in connection.execute(OVERSOLD_SKUS_SQL, {"named": named}).fetchall()
    ]


def oversell_text(item: OversoldSku) -> str:
    """`LIMITED-ED: available -2 at lowest in 1 episode (open since 2026-11-20 20:05), orders [1 (web),
    2 (pos)], sold on pos and web`; past NAMED_SHORT_ORDERS orders the rest are counted ("and K more")."""
    last = "" if item.episodes == 1 else "the last "
    if item.open_since is not None:
        when = f"{last}open since {item.open_since:%Y-%m-%d %H:%M}"
    else:
        when = f"{last}ended {item.last_ended:%Y-%m-%d %H:%M}"
    orders = short_orders_text(item.named_orders, item.named_channels, item.short_orders)
    return (
        f"{item.sku}: available {item.lowest_available} at lowest in {item.episodes}"
        f" episode{'' if item.episodes == 1 else 's'} ({when}), orders {orders},"
        f" sold on {' and '.join(item.sold_on)}"
    )
