"""raw/storefront/products: poll the storefront's products and land every page, as received, in the raw log."""

from datetime import timedelta

import dagster as dg

from integration_assets.defs.products.names import (
    GROUP,
    OWNER,
    RAW_PRODUCTS,
    SOURCE,
    STREAM_NAME,
)
from integration_assets.storage.landing import (
    DEFAULT_START,
    land_pages,
    landed_batch_metadata,
    updated_at_cursor,
    updated_at_of,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource
from integration_assets.streams.timestamps import to_iso_utc
from integration_assets.systems.pools import STOREFRONT_API_POOL
from integration_assets.systems.storefront import StorefrontClient


class ProductExtractConfig(dg.Config):
    """How far back to look on each poll, and where the very first poll starts."""

    lookback_minutes: int = 10
    initial_updated_at_min: str = DEFAULT_START


def land_products(
    client: StorefrontClient, log: RawLog, run_id: str, lookback: timedelta, initial: str
) -> tuple[BatchManifest, dict]:
    """Fetch every product updated since the cursor (minus the lookback) into one immutable batch."""
    previous_cursor = updated_at_cursor(log, SOURCE, STREAM_NAME, initial)
    window_start = previous_cursor - lookback
    return land_pages(
        log,
        SOURCE,
        STREAM_NAME,
        run_id,
        client.iter_product_pages(updated_at_min=window_start),
        position_of=updated_at_of,
        cursor_before=previous_cursor,
        render=to_iso_utc,
        details={
            "endpoint": client.api_url("products.json"),
            "api_version_requested": client.api_version,
            "window_start": to_iso_utc(window_start),
        },
        late_details=client.stats.as_metadata,
    )


@dg.asset(
    key=RAW_PRODUCTS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "storefront", "pii": "false"},
    pool=STOREFRONT_API_POOL,
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def raw_storefront_products(
    context: dg.AssetExecutionContext,
    config: ProductExtractConfig,
    storefront: StorefrontClient,
    raw_log: RawLogResource,
) -> dg.MaterializeResult:
    """Products with their variants exactly as the storefront reported them (`products.json?updated_at_min=...`).

    Any change to a product (a price, a variant's stock, the category, a bundle definition) bumps its
    `updated_at`, so each poll asks from the newest `updated_at` seen minus a lookback. Each poll is
    one immutable batch file in the raw log with every record's provenance; boundary records come back
    as exact duplicates that staging counts and drops.
    If this fails, re-materialize it: nothing was landed and the cursor did not move.
    """
    manifest, details = land_products(
        storefront,
        raw_log.log(),
        context.run_id,
        timedelta(minutes=config.lookback_minutes),
        config.initial_updated_at_min,
    )
    return dg.MaterializeResult(
        metadata=landed_batch_metadata(manifest, details, detail_keys=("http_requests",))
    )
