"""`webhook_batches_sensor`: each newly landed webhook batch starts one run of the assets it affects.

The receiver (`integration-assets webhooks serve`) lands every accepted delivery as a one-record raw
batch; `integration_assets/webhooks/routing.py` says which staging stream stages it. For each batch
newer than the cursor this sensor requests one run, keyed by the batch id (a batch re-evaluated after
a restart never launches twice), of that stream's staging asset and the core assets that promote it
(names.ASSETS_OF_STREAM); what lies further downstream follows by declarative automation. A batch
that no stream stages (an unknown topic, `orders/delete`...) starts nothing and is reported, in the
tick's log and its skip reason. The sensor is for latency only: staging stages every batch it has
not staged yet, whichever run it is in, so a batch the sensor never saw is still staged by the next run.
"""

from collections import Counter
from dataclasses import dataclass

import dagster as dg

from integration_assets.defs.webhooks.names import (
    ASSETS_OF_STREAM,
    MAX_RUN_REQUESTS_PER_TICK,
    MINIMUM_INTERVAL_SECONDS,
    RUN_CONFIG,
    SENSOR_NAME,
    TAG_BATCH,
    TAG_PROVIDER,
    TAG_STREAM,
    TAG_TOPIC,
    TAG_TRIGGER,
)
from integration_assets.storage.raw_log import BatchManifest, RawLog
from integration_assets.storage.resources import RawLogResource
from integration_assets.webhooks.cursor import BatchCursor
from integration_assets.webhooks.routing import (
    SOURCE,
    batch_id_of,
    manifest_target,
    provider_and_kind,
    webhook_manifest_paths,
)

AFFECTED_ASSETS = sorted(
    {key for keys in ASSETS_OF_STREAM.values() for key in keys}, key=lambda key: key.path
)


@dataclass(frozen=True)
class TickPlan:
    """What one evaluation decided: a run per staged batch, the batches no stream stages, the cursor."""

    run_requests: list[dg.RunRequest]
    not_staged: list[BatchManifest]
    cursor: BatchCursor
    left_for_next_tick: int = 0


def run_request_for(manifest: BatchManifest, stream: str) -> dg.RunRequest:
    provider, kind = provider_and_kind(manifest)
    return dg.RunRequest(
        run_key=manifest.batch_id,
        asset_selection=list(ASSETS_OF_STREAM[stream]),
        run_config=RUN_CONFIG,
        tags={
            TAG_TRIGGER: "webhook",
            TAG_PROVIDER: provider,
            TAG_TOPIC: kind,
            TAG_BATCH: manifest.batch_id,
            TAG_STREAM: stream,
        },
    )


def plan_tick(log: RawLog, cursor: BatchCursor, limit: int = MAX_RUN_REQUESTS_PER_TICK) -> TickPlan:
    """The oldest `limit` webhook batches the cursor has not handled: one run request for each
    batch a stream stages, the others reported; the cursor then counts all of them as handled."""
    fresh = [path for path in webhook_manifest_paths(log) if cursor.is_new(batch_id_of(path))]
    taken = fresh[:limit]
    requests, not_staged = [], []
    for manifest in (log.read_manifest(path) for path in taken):
        stream = manifest_target(log, manifest)
        if stream in ASSETS_OF_STREAM:
            requests.append(run_request_for(manifest, stream))
        else:
            not_staged.append(manifest)
    handled = cursor.handled(batch_id_of(path) for path in taken)
    return TickPlan(requests, not_staged, handled, left_for_next_tick=len(fresh) - len(taken))


def not_staged_summary(manifests: list[BatchManifest]) -> str:
    by_stream = Counter(manifest.stream for manifest in manifests)
    listed = ", ".join(f"{stream} x{count}" for stream, count in sorted(by_stream.items()))
    return f"{len(manifests)} webhook batch(es) landed, not staged by any stream: {listed}"


@dg.sensor(
    name=SENSOR_NAME,
    target=dg.AssetSelection.assets(*AFFECTED_ASSETS),
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"Every {MINIMUM_INTERVAL_SECONDS} s: each webhook batch landed since the last tick starts one "
        "run (run key = batch id) of the staging asset that stages it and the core assets that promote "
        "it; an order topic -> staging/storefront/orders + core orders, a product topic -> staging "
        "products + core/products, a Stripe event on a charge, refund, dispute, payout -> staging "
        "payments + core/financial_ledger. A batch no stream stages is reported in the tick, not run."
    ),
)
def webhook_batches_sensor(
    context: dg.SensorEvaluationContext, raw_log: RawLogResource
) -> dg.SensorResult:
    log = raw_log.log()
    plan = plan_tick(log, BatchCursor.parse(context.cursor))
    for manifest in plan.not_staged:
        context.log.warning(
            f"webhook batch {manifest.batch_id} ({manifest.stream}) landed, not staged by any stream"
        )
    for request in plan.run_requests:
        context.log.info(
            f"webhook batch {request.run_key} ({request.tags[TAG_PROVIDER]} "
            f"{request.tags[TAG_TOPIC]}) -> {request.tags[TAG_STREAM]}"
        )
    if plan.left_for_next_tick:
        context.log.info(f"{plan.left_for_next_tick} more webhook batch(es) left for the next tick")
    skip_reason = None
    if not plan.run_requests:
        skip_reason = (
            not_staged_summary(plan.not_staged)
            if plan.not_staged
            else f"no new webhook batch in {log.root / SOURCE}"
        )
    return dg.SensorResult(
        run_requests=plan.run_requests, cursor=plan.cursor.dumps(), skip_reason=skip_reason
    )
