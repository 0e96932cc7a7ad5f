"""raw/payments/*: poll the payment provider's list endpoints and land every page in the raw log."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from integration_assets.defs.payments.names import (
    CHANGE_EVENTS,
    DAY,
    EVENTS_OVERLAP,
    EVENTS_USABLE_FOR,
    HOUR,
    OWNER,
    PAYOUT_TRANSACTIONS,
    RAW,
    RESOURCES,
    SOURCE,
)
from integration_assets.storage.landing import HTTP_STATS_KEYS, land_pages, landed_batch_metadata
from integration_assets.storage.raw_log import BatchManifest
from integration_assets.storage.resources import RawLogResource
from integration_assets.streams.timestamps import parse_utc
from integration_assets.systems.payments import PaymentsClient, PaymentsPage
from integration_assets.systems.pools import PAYMENTS_API_POOL


def created_of(payload: object) -> int | None:
    created = payload.get("created") if isinstance(payload, dict) else None
    return created if isinstance(created, int) and not isinstance(created, bool) else None


def cursor_after(latest: BatchManifest | None) -> int:
    """How far the stream has read: the newest `created` its last batch saw (0 before any)."""
    return int(latest.details["cursor_after"]) if latest is not None else 0


def events_usable(latest: BatchManifest | None, now: datetime) -> bool:
    """Whether the changes since `latest` can be read from the event log: a batch has landed (the
    first poll lists) and it is recent enough that Stripe still keeps every event since."""
    if latest is None or "extracted_at" not in latest.details:
        return False
    extracted = parse_utc(latest.details["extracted_at"])
    return (now - extracted).total_seconds() < EVENTS_USABLE_FOR


def oldest_first(pages: Iterator[PaymentsPage]) -> list[PaymentsPage]:
    """Stripe lists newest first; a batch holds the versions of an object in the order they were
    true, so staging's newest is the last. The window's events are held, then landed oldest first
    (an hour at peak: a few MB)."""
    held = list(pages)
    return [
        PaymentsPage(
            page.url,
            page.params,
            len(held) - 1 - page.page_number,
            page.http_status,
            list(reversed(page.records)),
            page.fetched_at,
            page.has_more,
        )
        for page in reversed(held)
    ]


def _result(
    manifest: BatchManifest, details: dict[str, Any], extra_keys: tuple[str, ...] = ()
) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata=landed_batch_metadata(
            manifest, details, detail_keys=(*HTTP_STATS_KEYS, *extra_keys)
        )
    )


def _duration(seconds: int) -> str:
    return f"{seconds // DAY} days" if seconds >= DAY else f"{seconds // HOUR} hour(s)"


def build_raw_payments_asset(resource: str, lookback_seconds: int) -> dg.AssetsDefinition:
    @dg.asset(
        key=RAW[resource],
        group_name="payments",
        owners=[OWNER],
        kinds={"api", "jsonl"},
        tags={"layer": "raw", "source": "payments"},
        pool=PAYMENTS_API_POOL,
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)
        ),
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
        ),
        description=(
            f"Stripe `{resource}` exactly as the payment provider listed them (`GET /v1/{resource}?created[gte]=...`), "
            f"one immutable batch per poll. Each poll re-reads {_duration(lookback_seconds)} before the newest `created` seen, "
            "because these objects keep changing after they are created; staging drops the unchanged copies."
            if resource not in CHANGE_EVENTS
            else f"Stripe `{resource}` exactly as the payment provider sent them, one immutable batch per poll: "
            f"the first poll lists them (`GET /v1/{resource}`), every later one reads their changes from the "
            "event log (`GET /v1/events?types[]=...`, since the newest event seen less an hour), landed oldest "
            "first; each event's `data.object` is staged. A stream away longer than Stripe keeps events lists "
            f"{_duration(lookback_seconds)} again."
        ),
    )
    def raw_payments(
        context: dg.AssetExecutionContext, payments: PaymentsClient, raw_log: RawLogResource
    ) -> dg.MaterializeResult:
        log = raw_log.log()
        latest = log.latest(SOURCE, resource)
        cursor = cursor_after(latest)
        if resource in CHANGE_EVENTS and events_usable(latest, datetime.now(UTC)):
            since = max(0, cursor - EVENTS_OVERLAP)
            types = list(CHANGE_EVENTS[resource])
            pages = oldest_first(
                payments.iter_pages("events", created_gte=since, extra_params={"types[]": types})
            )
            read = {"endpoint": "/v1/events", "read_from": "events", "event_types": types}
        else:
            since = max(0, cursor - lookback_seconds)
            pages = payments.iter_pages(resource, created_gte=since)
            read = {"endpoint": f"/v1/{resource}", "read_from": "list"}
        manifest, details = land_pages(
            log,
            SOURCE,
            resource,
            context.run_id,
            pages,
            position_of=created_of,
            cursor_before=cursor,
            render=int,
            details={**read, "created_gte": since},
            late_details=payments.stats.as_metadata,
        )
        return _result(manifest, details, extra_keys=("read_from",))

    return raw_payments


@dg.asset(
    key=RAW[PAYOUT_TRANSACTIONS],
    deps=[RAW["payouts"]],
    group_name="payments",
    owners=[OWNER],
    kinds={"api", "jsonl"},
    tags={"layer": "raw", "source": "payments"},
    pool=PAYMENTS_API_POOL,
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def raw_payout_transactions(
    context: dg.AssetExecutionContext, payments: PaymentsClient, raw_log: RawLogResource
) -> dg.MaterializeResult:
    """For every payout in the newest payouts batch: the balance transactions it paid out
    (`GET /v1/balance_transactions?payout=po_...`), so that each payout can be proved equal to its transactions.
    """
    log = raw_log.log()
    latest = log.latest(SOURCE, "payouts")
    payout_ids = sorted({r["payload"]["id"] for r in log.read_records(latest)} if latest else set())

    def pages():
        for payout_id in payout_ids:
            yield from payments.iter_pages(
                "balance_transactions", extra_params={"payout": payout_id}
            )

    manifest, details = land_pages(
        log,
        SOURCE,
        PAYOUT_TRANSACTIONS,
        context.run_id,
        pages(),
        position_of=created_of,
        cursor_before=0,
        render=int,
        details={"endpoint": "/v1/balance_transactions?payout=", "payouts": payout_ids},
        late_details=payments.stats.as_metadata,
    )
    return _result(manifest, details)


raw_payments_assets = [
    build_raw_payments_asset(resource, seconds) for resource, seconds in RESOURCES.items()
]
