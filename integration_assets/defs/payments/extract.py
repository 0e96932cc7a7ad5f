"""raw/payments/*: poll the payment provider's list endpoints and land every page in the raw log."""

from datetime import timedelta
from typing import Any

import dagster as dg

from integration_assets.defs.payments.names import (
    DAY,
    HOUR,
    OWNER,
    PAYOUT_TRANSACTIONS,
    RAW,
    RESOURCES,
    SOURCE,
)
from integration_assets.storage.landing import HTTP_STATS_KEYS, land_pages, landed_batch_metadata
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource
from integration_assets.systems.payments import PaymentsClient
from integration_assets.systems.pools import PAYMENTS_API_POOL


def created_of(payload: object) -> int | None:
    created = payload.get("created") if isinstance(payload, dict) else None
    return created if isinstance(created, int) and not isinstance(created, bool) else None


def previous_cursor(log: RawLog, stream: str) -> int:
    latest = log.latest(SOURCE, stream)
    return int(latest.details["cursor_after"]) if latest is not None else 0


def _result(manifest: BatchManifest, details: dict[str, Any]) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata=landed_batch_metadata(manifest, details, detail_keys=HTTP_STATS_KEYS)
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
        ),
    )
    def raw_payments(
        context: dg.AssetExecutionContext, payments: PaymentsClient, raw_log: RawLogResource
    ) -> dg.MaterializeResult:
        log = raw_log.log()
        cursor = previous_cursor(log, resource)
        since = max(0, cursor - lookback_seconds)
        manifest, details = land_pages(
            log,
            SOURCE,
            resource,
            context.run_id,
            payments.iter_pages(resource, created_gte=since),
            position_of=created_of,
            cursor_before=cursor,
            render=int,
            details={"endpoint": f"/v1/{resource}", "created_gte": since},
            late_details=payments.stats.as_metadata,
        )
        return _result(manifest, details)

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
