"""Operator jobs with config: replay dead letters (filtered), and decide on writes awaiting approval.

Both act in the warehouse (audited in ops.operator_actions), then deliver exactly the rows they
touched through the same drain as the delivery assets, so an operator sees the outcome in the run.
"""

from collections import defaultdict

import dagster as dg

from integration_assets.delivery.drain import DrainReport
from integration_assets.delivery.targets import target_for
from integration_assets.storage import outbox as store
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

TARGET_RESOURCES = {"erp", "crm", "wms", "warehouse"}
# Not retried by the daemon: the person who launched it reads the failure and decides (a retried
# review would fail anyway on decisions already recorded; approved writes go out with the next delivery).
OPERATOR_JOB_TAGS = {"integration_assets/trigger": "operator", "dagster/max_retries": "0"}


def deliver_rows(
    context: dg.OpExecutionContext, rows: list[dict], warehouse: WarehouseResource
) -> dict[str, DrainReport]:
    """Send exactly these outbox rows (they must be due), grouped by target and entity."""
    by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        by_pair[(row["target"], row["entity"])].append(row["idempotency_key"])
    reports = {}
    for (target_name, entity), keys in sorted(by_pair.items()):
        target = target_for(target_name, entity)
        client = getattr(context.resources, target.resource_key)
        report = target.drain(warehouse.warehouse(), client, context.run_id, keys=keys)
        reports[f"{target_name}/{entity}"] = report
        context.log.info(f"{target_name}/{entity}: {report.as_metadata()}")
        for letter in report.dead_letters:
            context.log.warning(
                f"dead again {letter['idempotency_key']}: {letter['error_class']}: {letter['message']}"
            )
    return reports


class ReplayConfig(dg.Config):
    """Which open dead letters to send again (empty filter = any), who asks, and why."""

    operator: str
    reason: str = "replay after the cause was fixed"
    target: str = ""
    entity: str = ""
    error_class: str = ""
    external_id: str = ""


@dg.op(required_resource_keys=TARGET_RESOURCES, pool=WAREHOUSE_POOL)
def replay_matching_dead_letters(context: dg.OpExecutionContext, config: ReplayConfig) -> dict:
    """Put the matching open dead letters back in the queue (audited), then deliver exactly those."""
    warehouse: WarehouseResource = context.resources.warehouse
    with warehouse.warehouse().transaction() as con:
        rows = [
            row
            for row in store.list_rows(
                con,
                status="dead",
                target=config.target or None,
                entity=config.entity or None,
                error_class=config.error_class or None,
                open_only=True,
            )
            if not config.external_id or row["external_id"] == config.external_id
        ]
        for row in rows:
            store.retry(con, row["idempotency_key"], config.operator, config.reason)
    context.log.info(f"{len(rows)} dead letter(s) match the filters and are queued again")
    reports = deliver_rows(context, rows, warehouse)
    summary = {pair: report.as_metadata() for pair, report in reports.items()}
    context.add_output_metadata({"replayed": len(rows), "by_target_entity": summary})
    return summary


class ApprovalDecision(dg.Config):
    key: str  # the idempotency key, or its unique start
    approve: bool
    reason: str


class ReviewConfig(dg.Config):
    """One person's decisions on writes awaiting approval (see `integration-assets approvals list`)."""

    decided_by: str
    decisions: list[ApprovalDecision]
    deliver_now: bool = True


@dg.op(required_resource_keys=TARGET_RESOURCES, pool=WAREHOUSE_POOL)
def apply_approval_decisions(context: dg.OpExecutionContext, config: ReviewConfig) -> dict:
    """Record each decision (audited); approved writes are delivered now unless deliver_now is false."""
    warehouse: WarehouseResource = context.resources.warehouse
    approved = []
    with warehouse.warehouse().transaction() as con:
        for decision in config.decisions:
            key = store.find_key(con, decision.key)
            row = store.decide(con, key, decision.approve, config.decided_by, decision.reason)
            context.log.info(
                f"{key}: {'approved' if decision.approve else 'rejected'} by {config.decided_by}"
            )
            if decision.approve:
                approved.append(row)
    reports = deliver_rows(context, approved, warehouse) if config.deliver_now else {}
    summary = {
        "approved": len(approved),
        "rejected": len(config.decisions) - len(approved),
        "delivered": {pair: report.as_metadata() for pair, report in reports.items()},
    }
    context.add_output_metadata({"approved": summary["approved"], "rejected": summary["rejected"]})
    return summary


@dg.job(
    description="Send open dead letters again, filtered by target, entity, error class or external id "
    "(after fixing the cause). Each retry is audited with the operator's name and reason.",
    tags=OPERATOR_JOB_TAGS,
)
def replay_dead_letters():
    replay_matching_dead_letters()


@dg.job(
    description="Approve or reject high-stakes writes (credit notes above the threshold, credit limit "
    "changes) with a reason; approved ones are delivered at once. Every decision is audited.",
    tags=OPERATOR_JOB_TAGS,
)
def review_approvals():
    apply_approval_decisions()
