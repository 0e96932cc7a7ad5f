"""ops/source_signals: what may break an integration, raised once to its owner, cleared when it goes."""

import os
from datetime import UTC, datetime

import dagster as dg

from integration_assets.contracts.loader import ContractError, load_contract
from integration_assets.contracts.ownership import load_ownership
from integration_assets.contracts.warehouse_files import load_warehouse_files_contract
from integration_assets.defs.delivery.names import AUDIT_LOG, OPS_GROUP, OWNER
from integration_assets.defs.watch.names import (
    CHECK_NO_OPEN_SOURCE_SIGNALS,
    CLEARED,
    LOOKBACK,
    RAISED,
    SOURCE_SIGNALS,
)
from integration_assets.health.metrics import CHECK_OWNER_TEXTS_METADATA, CHECK_OWNERS_METADATA
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.source_signals import (
    SIGNAL_DIRECTION,
    open_source_signals,
    read_drift,
    read_path_histories,
    read_token_expiries,
    save_signals,
    signal_rows,
    stored_signals,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.source_signals import (
    CREDENTIAL_ENV,
    KINDS,
    ExpirySettingError,
    configured_expiries,
    credential_signals,
    drift_signals,
    endpoint_histories,
    endpoint_signals,
    plan_changes,
    signal_alert,
    version_signals,
    warning_window,
)
from integration_assets.systems.alert_sink import AlertSinkResource
from integration_assets.systems.audit import append_audit_lines, audit_line

WAREHOUSE_FILES_CONTRACT = "warehouse_files"


def system_owner_emails() -> dict[str, str]:
    """Each system's name in the audit trail -> the email of who answers for the connection to it."""
    registry = load_ownership()
    return {system: registry.system_owner(system).email for system in CREDENTIAL_ENV}


def versions_in_force(context: dg.AssetExecutionContext, contracts: set[str]) -> dict[str, int]:
    """The version in force of each contract named; one that does not load is left out (its drift
    stays open) with a warning."""
    versions = {}
    for name in sorted(contracts):
        try:
            contract = (
                load_warehouse_files_contract()
                if name == WAREHOUSE_FILES_CONTRACT
                else load_contract(name)
            )
        except (ContractError, OSError) as error:
            context.log.warning(f"contract {name} did not load, its drift stays open: {error}")
            continue
        versions[name] = contract.version
    return versions


def _signal_line(run_id: str, action: str, system: str, subject: str, kind: str, detail: str):
    return audit_line(
        system=system,
        direction=SIGNAL_DIRECTION,
        method=action,
        url=subject,
        status=kind,
        duration_ms=0.0,
        attempt=1,
        run_id=run_id,
        response_text=detail,
    )


def _open_table(signals: list[dict]) -> str:
    if not signals:
        return "none"
    lines = ["| kind | system | subject | owner | since |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {s['kind']} | {s['system']} | {s['subject']} | {s['owner'] or 'nobody'} | "
        f"{s['first_seen_at']:%Y-%m-%d %H:%M} |"
        for s in signals[:50]
    ]
    return "\n".join(lines)


@dg.asset(
    key=SOURCE_SIGNALS,
    deps=[AUDIT_LOG],  # right after the audit trail is loaded, in the hourly sync and watch_sources
    group_name=OPS_GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "ops"},
    pool=WAREHOUSE_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NO_OPEN_SOURCE_SIGNALS,
            asset=SOURCE_SIGNALS,
            description=(
                "No source-change signal is open: no credential close to expiry, no permission "
                "lost, no API version retiring, no endpoint moved, no unreviewed data-model change."
            ),
        )
    ],
)
def ops_source_signals(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    alert_sink: AlertSinkResource,
):
    """Source-change signals (ops.source_signals), from the audit trail and the contracts' drift:
    a credential close to expiry or expired (STOREFRONT_/PAYMENTS_/ERP_/CRM_/WMS_CREDENTIAL_EXPIRES_AT,
    or a JWT credential's own exp; warned CREDENTIAL_EXPIRY_WARNING_DAYS ahead, default 14), a
    permission lost (403 where there was data), an API version retiring (deprecation or sunset
    headers, or a version served other than the pinned one), an endpoint moved (404/410 where there
    was data, or a 301/308), a data-model change (ops.schema_drift).

    Each new signal is alerted once to the owner of the system (contracts/ownership.yaml `systems`;
    drift: the contract's owner, alerted by alert_on_schema_drift) and written to the audit trail
    (direction `signal`); a signal whose condition went is marked cleared, in the trail too.
    """
    now = datetime.now(UTC)
    try:
        window = warning_window(os.environ)
        configured = configured_expiries(os.environ)
    except ExpirySettingError as error:
        raise dg.Failure(str(error)) from None
    owners = system_owner_emails()
    with warehouse.warehouse().transaction() as con:
        stored = stored_signals(con)
        open_keys = frozenset(key for key, signal in stored.items() if signal.cleared_at is None)
        since = now - LOOKBACK
        histories = endpoint_histories(read_path_histories(con, since))
        drift = read_drift(con)
        detected = [
            *endpoint_signals(histories, owners, open_keys),
            *version_signals(histories, owners),
            *credential_signals(
                [*configured, *read_token_expiries(con, since)], owners, now, window
            ),
            *drift_signals(drift, versions_in_force(context, {seen.contract for seen in drift})),
        ]
        plan = plan_changes(detected, stored)
        posting = [signal for signal in plan.raised if signal.alerted_by is None]
        cleared = signal_rows(con, plan.cleared)
        save_signals(
            con,
            [*plan.raised, *plan.ongoing],
            plan.cleared,
            [signal.key for signal in posting],
            now,
            context.run_id,
        )
        still_open = open_source_signals(con)
    # Claimed in the transaction, posted after it committed (as the drift sensor does).
    for signal in posting:
        delivery = alert_sink.post(signal_alert(signal))
        if delivery.delivered is False:
            context.log.warning(
                f"alert {signal.key!r} is in {alert_sink.log_file()} but the webhook did not take it"
            )
    append_audit_lines(
        context.run_id,
        [
            _signal_line(context.run_id, RAISED, s.system, s.subject, s.kind, s.detail)
            for s in plan.raised
        ]
        + [
            _signal_line(
                context.run_id,
                CLEARED,
                row["system"],
                row["subject"],
                row["kind"],
                f"cleared: {row['detail']}",
            )
            for row in cleared
        ],
    )
    for signal in plan.raised:
        context.log.warning(f"{signal.kind} ({signal.owner or 'no owner'}): {signal.detail}")
    by_kind = {kind: 0 for kind in KINDS}
    for signal in still_open:
        by_kind[signal["kind"]] = by_kind.get(signal["kind"], 0) + 1
    yield dg.MaterializeResult(
        metadata={
            "open_signals": len(still_open),
            "raised": len(plan.raised),
            "cleared": len(plan.cleared),
            "alerts_posted": len(posting),
            "open_by_kind": dg.MetadataValue.json(by_kind),
            "open": dg.MetadataValue.md(_open_table(still_open)),
        }
    )
    named = [
        f"{s['kind']} {s['system']} {s['subject']} -> {s['owner'] or 'nobody'}" for s in still_open
    ]
    by_owner: dict[str, list[str]] = {}
    for signal, text in zip(still_open, named, strict=True):
        by_owner.setdefault(signal["owner"] or "nobody", []).append(text)
    yield dg.AssetCheckResult(
        check_name=CHECK_NO_OPEN_SOURCE_SIGNALS,
        passed=not still_open,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(still_open)} open source-change signal(s): " + "; ".join(named[:10])
            if still_open
            else "no open source-change signal"
        ),
        metadata={
            "open_signals": len(still_open),
            # Whose signals they are: the owners view lists the check under them, the failed-check
            # alert is addressed to them, each told only their own signals.
            CHECK_OWNERS_METADATA: ", ".join(sorted(by_owner)),
            CHECK_OWNER_TEXTS_METADATA: dg.MetadataValue.json(
                {
                    owner: f"{len(texts)} open source-change signal(s): " + "; ".join(texts[:10])
                    for owner, texts in sorted(by_owner.items())
                }
            ),
        },
    )
