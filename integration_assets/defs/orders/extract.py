"""raw/storefront/orders: poll the storefront and land every page, as received, in the raw log."""

from datetime import timedelta

import dagster as dg

from integration_assets.defs.orders.names import OWNER, RAW_ORDERS, SOURCE, STREAM_NAME
from integration_assets.storage.landing import (
    DEFAULT_START,
    HTTP_STATS_KEYS,
    land_pages,
    landed_batch_metadata,
    updated_at_cursor,
    updated_at_of,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource
from integration_assets.streams.timestamps import parse_utc, to_iso_utc
from integration_assets.systems.pools import STOREFRONT_API_POOL
from integration_assets.systems.storefront import StorefrontClient

ORDERS_PER_BATCH = 25_000


class ExtractConfig(dg.Config):
    """How far back to look on each poll, and where the very first poll starts."""

    lookback_minutes: int = 10
    initial_updated_at_min: str = DEFAULT_START
    # Re-read everything since initial_updated_at_min, ignoring the cursor: the remedy when the
    # completeness check finds orders the storefront has and we never saw (late writes below the cursor).
    full_sweep: bool = False
    # A poll with more orders than this lands as several batches (cut at page boundaries), so that
    # staging and promotion hold a part of a peak poll at a time; only the last moves the cursor.
    orders_per_batch: int = ORDERS_PER_BATCH


def land_orders(
    client: StorefrontClient,
    log: RawLog,
    run_id: str,
    lookback: timedelta,
    initial: str,
    full_sweep: bool = False,
    orders_per_batch: int = ORDERS_PER_BATCH,
) -> tuple[BatchManifest, dict]:
    """Fetch every order updated since the cursor (minus the lookback) into one immutable batch (a
    batch per `orders_per_batch` orders on a peak poll).

    Pages stream to disk as they arrive. If any page fails, the batch being written is discarded
    and the cursor does not move, so the next attempt asks for the same window again.
    """
    previous_cursor = updated_at_cursor(log, SOURCE, STREAM_NAME, initial)
    window_start = parse_utc(initial) if full_sweep else previous_cursor - lookback
    manifest, details = land_pages(
        log,
        SOURCE,
        STREAM_NAME,
        run_id,
        client.iter_order_pages(updated_at_min=window_start),
        position_of=updated_at_of,
        cursor_before=previous_cursor,
        render=to_iso_utc,
        details={
            "endpoint": client.api_url("orders.json"),
            "api_version_requested": client.api_version,
            "window_start": to_iso_utc(window_start),
            "full_sweep": full_sweep,
        },
        # Asked after the last page: orders the shop has now, for the completeness check downstream.
        late_details=lambda: {
            "orders_at_source": client.count_orders(),
            **client.stats.as_metadata(),
        },
        records_per_batch=orders_per_batch,
    )
    details["api_versions_served"] = sorted(
        {p["api_version"] for p in details["pages"] if p.get("api_version")}
    )
    return manifest, details


@dg.asset(
    key=RAW_ORDERS,
    group_name="orders",
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "storefront", "pii": "true"},
    pool=STOREFRONT_API_POOL,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
    ),
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def raw_storefront_orders(
    context: dg.AssetExecutionContext,
    config: ExtractConfig,
    storefront: StorefrontClient,
    raw_log: RawLogResource,
) -> dg.MaterializeResult:
    """Orders exactly as the storefront reported them (Shopify `orders.json?status=any&updated_at_min=...`).

    Each poll is one immutable batch file in the raw log (a peak poll, one per `orders_per_batch`
    orders), with the provenance of every record (endpoint, request parameters, page, fetched-at,
    HTTP status, payload hash, batch and run id). The cursor is the newest `updated_at` seen; each
    poll re-reads a lookback window before it, so late writes are not missed and the boundary records
    come back as exact duplicates that staging counts and drops. If this fails, re-materialize it:
    the cursor did not move (parts of a peak poll already landed come back as duplicates).
    """
    log = raw_log.log()
    manifest, details = land_orders(
        storefront,
        log,
        context.run_id,
        timedelta(minutes=config.lookback_minutes),
        config.initial_updated_at_min,
        full_sweep=config.full_sweep,
        orders_per_batch=config.orders_per_batch,
    )
    seconds = max(details["seconds"], 1e-6)
    return dg.MaterializeResult(
        metadata={
            **landed_batch_metadata(
                manifest, details, detail_keys=(*HTTP_STATS_KEYS, "retry_wait_seconds")
            ),
            "orders_at_source": details["orders_at_source"],
            "bytes": manifest.bytes,
            "orders_per_second": round(details["records_landed"] / seconds, 1),
            "api_versions_served": ", ".join(details["api_versions_served"]) or "none",
        }
    )
