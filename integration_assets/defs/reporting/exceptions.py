"""reporting/open_exceptions: the latest open exceptions, each with the command that explains it."""

from collections import Counter

import dagster as dg

from integration_assets.explain.exceptions import open_exceptions as read_open_exceptions
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

OPEN_EXCEPTIONS = dg.AssetKey(["reporting", "open_exceptions"])
OWNER = "team:integrations"
TABLE_ROWS = 25
# Everything an exception can come from: materialized after them in the hourly sync.
UPSTREAM = [
    dg.AssetKey(["staging", "storefront", "orders"]),
    dg.AssetKey(["staging", "warehouse", "files"]),
    dg.AssetKey(["core", "payment_reconciliation"]),
    dg.AssetKey(["core", "inventory_ledger"]),
    dg.AssetKey(["core", "returns"]),
    dg.AssetKey(["ops", "outbox"]),
]


def _cell(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")[:140]


def exceptions_markdown(exceptions: list[dict], limit: int = TABLE_ROWS) -> str:
    """A markdown table of the newest `limit` exceptions, each with its explain command (pure)."""
    if not exceptions:
        return "No open exceptions."
    newest = sorted(exceptions, key=lambda e: e["since"] or "", reverse=True)[:limit]
    lines = ["| kind | about | what | run this |", "|---|---|---|---|"]
    for item in newest:
        about = f"{item['entity']} {item['entity_id']}" if item["entity"] else ""
        command = f"`{item['command']}`" if item["command"] else ""
        lines.append(f"| {item['kind']} | {_cell(about)} | {_cell(item['detail'])} | {command} |")
    if len(exceptions) > limit:
        lines.append(f"\n{len(exceptions) - limit} older exception(s) not shown.")
    return "\n".join(lines)


@dg.asset(
    key=OPEN_EXCEPTIONS,
    deps=UPSTREAM,
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
)
def open_exceptions(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """What waits for a person right now, across every stream: quarantined records and files, dead
    letters, writes awaiting approval or not built, stuck returns, oversells, unexplained count drift and
    money differences no rule explains. The metadata table names each one with the exact
    `integration-assets explain order|customer|sku ID` command that tells its whole story (events with
    raw references, what each system knew when, what was written where, reconciliation)."""
    with warehouse.warehouse().connect() as con:
        exceptions = read_open_exceptions(con)
    by_kind = Counter(item["kind"] for item in exceptions)
    return dg.MaterializeResult(
        metadata={
            "open_exceptions": int(len(exceptions)),
            **{f"open_{kind}": int(count) for kind, count in sorted(by_kind.items())},
            "latest": dg.MetadataValue.md(exceptions_markdown(exceptions)),
        }
    )
