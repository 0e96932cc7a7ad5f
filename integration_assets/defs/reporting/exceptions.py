"""reporting/open_exceptions: the latest open exceptions, each with the command that explains it."""

import hashlib
from collections import Counter
from datetime import datetime

import dagster as dg

from integration_assets.defs.automation.conditions import FOLLOW_UPSTREAM
from integration_assets.explain.exceptions import open_exceptions as read_open_exceptions
from integration_assets.storage.reporting_postgres import TEXT, TIMESTAMP, Mart
from integration_assets.storage.resources import ReportingDatabaseResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL

OPEN_EXCEPTIONS = dg.AssetKey(["reporting", "open_exceptions"])
OWNER = "integrations@example.com"  # the registry's integrations (contracts/ownership.yaml)
TABLE_ROWS = 25
# The open exceptions as a table in PostgreSQL (when configured): one row per exception, replaced whole.
OPEN_EXCEPTIONS_TABLE = "reporting.open_exceptions"
OPEN_EXCEPTIONS_COLUMNS = (
    ("exception_key", TEXT),
    ("kind", TEXT),
    ("entity", TEXT),
    ("entity_id", TEXT),
    ("detail", TEXT),
    ("ref", TEXT),
    ("since", TIMESTAMP),
    ("command", TEXT),
)
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


def exception_key(item: dict) -> str:
    """What identifies an exception from one run to the next (pure). The raw reference, outbox key,
    return id or oversell episode (SKU and start) when it has one (its detail, such as a return's age or
    an open episode's short orders, may change without it being another exception); else its subject,
    time and detail (count drift, money differences)."""
    if item["ref"]:
        return f"{item['kind']}:{item['ref']}"
    detail = hashlib.sha256(f"{item['since']}|{item['detail']}".encode()).hexdigest()[:16]
    return f"{item['kind']}:{item['entity']}:{item['entity_id']}:{detail}"


def _since(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.removesuffix("Z"))


def open_exceptions_mart(exceptions: list[dict]) -> Mart:
    """The exceptions as rows keyed by `exception_key` (pure). Two exceptions with the same key (one
    source reference behind two writes not built) are told apart by " [2]", " [3]"... in their
    order (not "#2": raw references end in "#<record index>")."""
    seen: Counter[str] = Counter()
    rows = []
    for item in exceptions:
        key = exception_key(item)
        seen[key] += 1
        rows.append(
            (
                key if seen[key] == 1 else f"{key} [{seen[key]}]",
                item["kind"],
                item["entity"],
                item["entity_id"],
                item["detail"],
                item["ref"],
                _since(item["since"]),
                item["command"],
            )
        )
    return Mart(OPEN_EXCEPTIONS_TABLE, OPEN_EXCEPTIONS_COLUMNS, ("exception_key",), rows)


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
    kinds={"duckdb", "postgres"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def open_exceptions(
    warehouse: WarehouseResource, reporting_database: ReportingDatabaseResource
) -> dg.MaterializeResult:
    """What waits for a person right now, across every stream: quarantined records and files, dead
    letters, writes awaiting approval or not built, stuck returns, oversells, unexplained count drift and
    money differences no rule explains. The metadata table names each one with the exact
    `integration-assets explain order|customer|sku ID` command that tells its whole story (events with
    raw references, what each system knew when, what was written where, reconciliation). When
    REPORTING_DATABASE_URL is set, the table reporting.open_exceptions in PostgreSQL holds them all."""
    with warehouse.warehouse().connect() as con:
        exceptions = read_open_exceptions(con)
    by_kind = Counter(item["kind"] for item in exceptions)
    published = reporting_database.publish(open_exceptions_mart(exceptions))
    return dg.MaterializeResult(
        metadata={
            "open_exceptions": int(len(exceptions)),
            **{f"open_{kind}": int(count) for kind, count in sorted(by_kind.items())},
            "latest": dg.MetadataValue.md(exceptions_markdown(exceptions)),
            **published,
        }
    )
