"""`webhook_batches_sensor`: the webhook batches landed since the last tick start one run per group of streams.

The receiver (`integration-assets webhooks serve`) lands every accepted delivery as a one-record raw
batch; `integration_assets/webhooks/routing.py` says which staging stream stages it. Each tick takes
the batches newer than the cursor (oldest first, at most MAX_BATCHES_PER_TICK) and requests ONE run
per group of assets they affect (names.ASSETS_OF_STREAM: the stream's staging asset and the core
assets that promote it; the five payments streams share one group), whatever the number of batches:
a micro-batch. So a quiet shop gets a run per delivery, a Christmas peak of thousands of deliveries a
minute a few runs per tick, not a run per delivery. The run key is the group and the newest batch of
the run (a tick re-evaluated after a restart never launches the same micro-batch twice); the tags say
the first and newest batch, how many, their topics and streams. What lies further downstream follows
by declarative automation. A batch that no stream stages (an unknown topic, `orders/delete`...)
starts nothing and is reported, in the tick's log and its skip reason. The sensor is for latency
only: staging stages every batch it has not staged yet, whichever run it is in, so a batch the sensor
never saw (or a micro-batch whose run another run overtook) is still staged exactly once.
"""

from collections import Counter
from dataclasses import dataclass

import dagster as dg

from integration_assets.defs.webhooks.names import (
    ASSETS_OF_STREAM,
    MAX_BATCHES_PER_TICK,
    MINIMUM_INTERVAL_SECONDS,
    RUN_CONFIG,
    SENSOR_NAME,
    TAG_BATCH,
    TAG_BATCH_COUNT,
    TAG_FIRST_BATCH,
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
class MicroBatch:
    """The batches of one tick that one run stages: same asset group, oldest first."""

    assets: tuple[dg.AssetKey, ...]
    manifests: tuple[BatchManifest, ...]
    streams: tuple[str, ...]  # the staging stream of each manifest

    @property
    def run_key(self) -> str:
        return f"{self.assets[0].to_user_string()}:{self.manifests[-1].batch_id}"


@dataclass(frozen=True)
class TickPlan:
    """What one evaluation decided: a micro-batch per asset group, the batches no stream stages, the cursor."""

    micro_batches: list[MicroBatch]
    not_staged: list[BatchManifest]
    cursor: BatchCursor
    left_for_next_tick: int = 0

    @property
    def run_requests(self) -> list[dg.RunRequest]:
        return [run_request_for(batch) for batch in self.micro_batches]


def _joined(values: list[str]) -> str:
    return ",".join(sorted(set(values)))


def run_request_for(batch: MicroBatch) -> dg.RunRequest:
    kinds = [provider_and_kind(manifest) for manifest in batch.manifests]
    return dg.RunRequest(
        run_key=batch.run_key,
        asset_selection=list(batch.assets),
        run_config=RUN_CONFIG,
        tags={
            TAG_TRIGGER: "webhook",
            TAG_PROVIDER: _joined([provider for provider, _ in kinds]),
            TAG_TOPIC: _joined([kind for _, kind in kinds]),
            TAG_FIRST_BATCH: batch.manifests[0].batch_id,
            TAG_BATCH: batch.manifests[-1].batch_id,
            TAG_BATCH_COUNT: str(len(batch.manifests)),
            TAG_STREAM: _joined(list(batch.streams)),
        },
    )


def plan_tick(log: RawLog, cursor: BatchCursor, limit: int = MAX_BATCHES_PER_TICK) -> TickPlan:
    """The oldest `limit` webhook batches the cursor has not handled, grouped into one micro-batch
    per asset group (in the order each group's first batch landed), the others reported; the cursor
    then counts all of them as handled."""
    fresh = [path for path in webhook_manifest_paths(log) if cursor.is_new(batch_id_of(path))]
    taken = fresh[:limit]
    groups: dict[tuple[dg.AssetKey, ...], list[tuple[BatchManifest, str]]] = {}
    not_staged = []
    for manifest in (log.read_manifest(path) for path in taken):
        stream = manifest_target(log, manifest)
        if stream in ASSETS_OF_STREAM:
            groups.setdefault(ASSETS_OF_STREAM[stream], []).append((manifest, stream))
        else:
            not_staged.append(manifest)
    micro_batches = [
        MicroBatch(
            assets,
            tuple(manifest for manifest, _ in members),
            tuple(stream for _, stream in members),
        )
        for assets, members in groups.items()
    ]
    handled = cursor.handled(batch_id_of(path) for path in taken)
    return TickPlan(micro_batches, not_staged, handled, left_for_next_tick=len(fresh) - len(taken))


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
        f"Every {MINIMUM_INTERVAL_SECONDS} s: the webhook batches landed since the last tick (at most "
        f"{MAX_BATCHES_PER_TICK:,}) start one run per group of assets they affect, a micro-batch (run key "
        "= group + newest batch id): order topics -> staging/storefront/orders + core orders, product "
        "topics -> staging products + core/products, Stripe events on a charge, refund, dispute, payout "
        "-> staging payments + core/financial_ledger. A batch no stream stages is reported in the tick, "
        "not run."
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
    requests = plan.run_requests
    for request in requests:
        context.log.info(
            f"{request.tags[TAG_BATCH_COUNT]} webhook batch(es) {request.tags[TAG_FIRST_BATCH]} .. "
            f"{request.tags[TAG_BATCH]} ({request.tags[TAG_TOPIC]}) -> {request.tags[TAG_STREAM]}: "
            f"one run, key {request.run_key}"
        )
    if plan.left_for_next_tick:
        context.log.info(f"{plan.left_for_next_tick} more webhook batch(es) left for the next tick")
    skip_reason = None
    if not requests:
        skip_reason = (
            not_staged_summary(plan.not_staged)
            if plan.not_staged
            else f"no new webhook batch in {log.root / SOURCE}"
        )
    return dg.SensorResult(
        run_requests=requests, cursor=plan.cursor.dumps(), skip_reason=skip_reason
    )
