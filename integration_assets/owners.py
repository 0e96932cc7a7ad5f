"""`integration-assets owners`: for each owner in the registry, what is theirs to act on.

Their source streams (the stream contracts they own), the attributes they answer for (the ownership
registry), the assets they own in the Dagster UI, the open exceptions that are theirs, and their
broken promises: the checks of their assets whose latest evaluation failed, and the health promises
(reporting/integration_health's checks) that are theirs. An open exception or a
failed check that nobody owns is listed under "nobody", which is a problem of its own.

`owner_views` is pure; the command gathers its inputs from the contracts, the registry, the
definitions, the warehouse and the Dagster instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from integration_assets.contracts.loader import load_contract
from integration_assets.contracts.ownership import OwnershipRegistry, UnknownOwnershipEntry
from integration_assets.contracts.warehouse_files import load_warehouse_files_contract

# Every stream contract (contracts/<name>.yaml), each with a `stream` and an `owner`; the warehouse
# files' contract has a loader of its own.
WAREHOUSE_FILES = "warehouse_files"
STREAM_CONTRACTS = (
    "crm_accounts",
    "erp_customers",
    "payments_balance_transactions",
    "payments_charges",
    "payments_disputes",
    "payments_payouts",
    "payments_refunds",
    "storefront_orders",
    "storefront_products",
    "warehouse_files",
)
# Exceptions that come from neither a stream nor a write: the registry entity whose owner has them.
KIND_ENTITY = {
    "stuck_return": "return",
    "oversell": "oversell",
    "count_drift": "stock_count",
    "reconciliation": "reconciliation_difference",
}
NOBODY = "nobody"


@dataclass
class OwnerView:
    key: str
    name: str
    email: str
    slack: str
    streams: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    broken_promises: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stream_owners() -> dict[str, str]:
    """Each source stream (`storefront/orders`) and the email of its contract's owner, read by the
    contracts' own loaders."""
    contracts = [load_contract(name) for name in STREAM_CONTRACTS if name != WAREHOUSE_FILES]
    contracts.append(load_warehouse_files_contract())
    return {contract.stream: contract.owner for contract in contracts}


def exception_owner(
    item: Mapping[str, Any], registry: OwnershipRegistry, streams: Mapping[str, str]
) -> str | None:
    """The email of whoever an open exception belongs to, or None when nobody is named for it."""
    if item.get("stream"):
        return streams.get(item["stream"])
    try:
        if item.get("writes"):
            target, entity = item["writes"].split("/", 1)
            return registry.escalation_owner(target, entity).email
        entity = KIND_ENTITY.get(item["kind"])
        return registry.entity_owner(entity).email if entity else None
    except UnknownOwnershipEntry:
        return None


def owner_views(
    registry: OwnershipRegistry,
    streams: Mapping[str, str],
    asset_owners: Mapping[str, Iterable[str]],
    exceptions: Iterable[Mapping[str, Any]],
    checks: Iterable[Mapping[str, Any]],
) -> list[OwnerView]:
    """One view per registry owner (in the registry's order), plus `nobody` when something is unowned."""
    views = {
        owner.email: OwnerView(owner.key, owner.name, owner.email, owner.slack)
        for owner in registry.owners.values()
    }
    nobody = OwnerView(NOBODY, "Nobody: unowned", "", "")
    for stream, email in sorted(streams.items()):
        views.get(email, nobody).streams.append(stream)
    for entity in registry.entities.values():
        for attribute in entity.attributes.values():
            views[attribute.owner.email].attributes.append(
                f"{entity.name}.{attribute.name} (system of record: {attribute.system})"
            )
    for asset, owners in sorted(asset_owners.items()):
        for email in owners or [""]:
            views.get(email, nobody).assets.append(asset)
    for item in exceptions:
        views.get(exception_owner(item, registry, streams) or "", nobody).exceptions.append(
            dict(item)
        )
    for check in checks:
        if check["passed"]:
            continue
        # A check that names whose promise it found broken (the health checks) goes to them; any
        # other to its asset's owners.
        owners = list(check.get("owners") or asset_owners.get(check["asset_key"], ())) or [""]
        for email in owners:
            # A check that found several owners' promises broken tells each one only theirs.
            mine = (check.get("owner_descriptions") or {}).get(email)
            views.get(email, nobody).broken_promises.append(
                {**check, "description": mine} if mine else dict(check)
            )
    found = list(views.values())
    if nobody.streams or nobody.assets or nobody.exceptions or nobody.broken_promises:
        found.append(nobody)
    return found


def _listed(label: str, items: list[str], shown: int = 6) -> str:
    """`assets: 3: a, b, c` (the first `shown`, then how many more)."""
    if not items:
        return f"  {label}: 0"
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return f"  {label}: {len(items)}: {', '.join(items[:shown])}{more}"


def render_owners(views: Iterable[OwnerView]) -> str:
    lines = []
    for view in views:
        contact = f" ({view.email}, {view.slack})" if view.email else ""
        lines += [
            f"{view.name} [{view.key}]{contact}",
            f"  streams: {', '.join(view.streams) or '-'}",
            _listed("attributes", view.attributes),
            _listed("assets", view.assets),
            f"  open exceptions: {len(view.exceptions)}",
        ]
        for item in view.exceptions[:5]:
            command = f"  ->  {item['command']}" if item.get("command") else ""
            lines.append(f"    [{item['kind']}] {item['detail'][:110]}{command}")
        if len(view.exceptions) > 5:
            lines.append(f"    ... and {len(view.exceptions) - 5} more")
        lines.append(f"  broken promises: {len(view.broken_promises)}")
        for check in view.broken_promises:
            why = (check.get("description") or "").replace("\n", " ")[:110]
            lines.append(
                f"    {check['asset_key']} / {check['check']} ({check['severity']}): {why}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
