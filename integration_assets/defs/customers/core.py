"""core/customers: the customer golden record, merged attribute by attribute by the ownership registry."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts.ownership import OwnershipRegistry, load_ownership
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.customers.names import (
    CHECK_CONFLICTS_RESOLVED,
    CHECK_EVERY_CUSTOMER_HAS_EMAIL,
    CRM_STREAM,
    CUSTOMERS,
    ERP_STREAM,
    GATING_CHECKS,
    GROUP,
    OWNER,
    STAGING_REFERENCES,
    SYSTEM_OF_STREAM,
)
from integration_assets.defs.orders.names import ORDERS_CURRENT
from integration_assets.storage.balances import record_balance
from integration_assets.storage.derivations import code_version
from integration_assets.storage.gates import passed_batches_sql
from integration_assets.storage.order_payloads import CurrentOrder, head_ref
from integration_assets.storage.per_order import PerOrderTable
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL, replace_table
from integration_assets.streams import customers as customers_module
from integration_assets.streams.balances import Balance
from integration_assets.streams.customers import (
    CONFLICT_COLUMNS,
    ENTITY,
    GOLDEN_COLUMNS,
    CrmAccount,
    CustomerMerge,
    CustomerRecordError,
    ErpCustomer,
    StorefrontCustomer,
    crm_account_from_row,
    erp_customer_from_row,
    merge_customers,
    storefront_customer,
    storefront_customer_from_json,
    storefront_customer_json,
)

# Column types, so the tables keep their schema even when a run has no customer (an empty frame
# carries no types of its own).
GOLDEN_DTYPES = {
    **{column: "string" for column in GOLDEN_COLUMNS},
    "is_company": "boolean",
    "credit_limit_minor": "Int64",
    "sources": "object",
}


@dataclass
class CustomerInputs:
    """What the merge reads, per system, and every row a reader rejected as (system, ref, reason)."""

    storefront: list[StorefrontCustomer] = field(default_factory=list)
    crm: list[CrmAccount] = field(default_factory=list)
    erp: list[ErpCustomer] = field(default_factory=list)
    rows_offered: Counter = field(default_factory=Counter)
    guest_orders: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def _storefront_customer_of(order: CurrentOrder) -> list:
    """core.order_customers' derived columns: the order's customer (JSON; NULL for a guest order)
    and why it could not be read (NULL when it could)."""
    try:
        customer = storefront_customer(order.payload, order.updated_at, order.ref)
    except CustomerRecordError as error:
        return [None, str(error)]
    return [None if customer is None else storefront_customer_json(customer), None]


# The customer of every current order, derived again only for the orders whose head moved
# (storage/per_order.py): the golden record reads it instead of every order's document.
ORDER_CUSTOMERS = PerOrderTable(
    "core.order_customers",
    {"customer": "VARCHAR", "rejected": "VARCHAR"},
    code_version(Path(customers_module.__file__), Path(__file__)),
    _storefront_customer_of,
)


def read_storefront(con, raw_log: RawLog, inputs: CustomerInputs) -> int:
    """The customer of every current order (as the storefront sent it); the merge keeps each one's
    newest. Returns how many orders' customers were read from their documents now."""
    derived = ORDER_CUSTOMERS.refresh(con, raw_log)
    for order_id, sequence, customer, rejected in con.execute(
        "SELECT order_id, sequence, customer, rejected FROM core.order_customers ORDER BY order_id"
    ).fetchall():
        inputs.rows_offered["storefront"] += 1
        if rejected is not None:
            inputs.rejected.append(("storefront", head_ref(order_id, sequence), rejected))
        elif customer is None:
            inputs.guest_orders += 1
        else:
            inputs.storefront.append(storefront_customer_from_json(customer))
    return derived


def read_gated_references(con, inputs: CustomerInputs) -> None:
    """Every staged CRM account and ERP customer version from batches that passed every gating check."""
    for stream in (CRM_STREAM, ERP_STREAM):
        system = SYSTEM_OF_STREAM[stream]
        rows = con.execute(
            f"""
            WITH passed AS ({passed_batches_sql(stream, GATING_CHECKS)})
            SELECT r.payload, r.currency, r.raw_ref
            FROM staging.customer_references r JOIN passed p USING (batch_id)
            WHERE r.system = ? AND p.stream = ?
            ORDER BY r.batch_id, r.record_index
            """,
            [system, stream],
        ).fetchall()
        for payload, currency, raw_ref in rows:
            inputs.rows_offered[system] += 1
            try:
                row = orjson.loads(payload)
                if system == "crm":
                    inputs.crm.append(crm_account_from_row(row))
                else:
                    # Read with the currency staging resolved, so both read the limit the same way.
                    inputs.erp.append(erp_customer_from_row(row, currency))
            except CustomerRecordError as error:
                inputs.rejected.append((system, raw_ref, str(error)))


def merge_balance(inputs: CustomerInputs, merge: CustomerMerge) -> Balance:
    """Every row offered is rejected, a guest order, superseded by a newer record of its customer, or
    one system's record in a golden row (`sources` lists each system that knows the customer)."""
    return Balance(
        "rows_equal_rejected_guests_superseded_merged",
        {f"{system}_rows": int(count) for system, count in sorted(inputs.rows_offered.items())},
        {
            "rejected": len(inputs.rejected),
            "guest_orders": inputs.guest_orders,
            "superseded": sum(merge.superseded.values()),
            "merged_records": sum(len(row["sources"]) for row in merge.golden),
        },
    )


@dg.asset(
    key=CUSTOMERS,
    deps=[STAGING_REFERENCES, ORDERS_CURRENT],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core", "pii": "true"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def core_customers(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, raw_log: RawLogResource
) -> dg.MaterializeResult:
    """One row per customer any system knows (`core.customers`), each attribute from its system of
    record in `contracts/ownership.yaml` (or the first fallback with a value): email and names from
    the storefront, address, phone, segment and account manager from the CRM, credit limit and
    payment terms from the ERP. `sources` lists the systems that know the customer,
    `attribute_sources` where each value came from.

    Every place two systems disagree is a row of `core.customer_conflicts`: the attribute, the value
    that won and the one overridden, and the registry rule that decided. Fix disagreements at the
    overridden source; this table is rebuilt whole from the current orders and the CRM and ERP
    batches the staging gate passed, so re-running always gives the same rows.
    """
    registry = load_ownership()
    inputs = CustomerInputs()
    with warehouse.warehouse().transaction() as con:
        orders_read = read_storefront(con, raw_log.log(), inputs)
        read_gated_references(con, inputs)
        merge = merge_customers(inputs.storefront, inputs.crm, inputs.erp, registry)
        golden = pd.DataFrame(list(merge.golden), columns=list(GOLDEN_COLUMNS)).astype(
            GOLDEN_DTYPES
        )
        replace_table(con, "core.customers", golden, order_by="customer_id")
        # An empty frame's list column has no element type; the golden record's is text.
        con.execute("ALTER TABLE core.customers ALTER sources TYPE VARCHAR[]")
        conflicts = pd.DataFrame(list(merge.conflicts), columns=list(CONFLICT_COLUMNS)).astype(
            "string"
        )
        replace_table(
            con,
            "core.customer_conflicts",
            conflicts,
            order_by="customer_id, attribute, overridden_system",
        )
        balance = merge_balance(inputs, merge)
        record_balance(con, context.run_id, CUSTOMERS.to_user_string(), "golden", balance)
    for system, ref, reason in inputs.rejected:
        context.log.warning(f"{system} row {ref} not merged: {reason}")
    by_source = Counter(system for row in merge.golden for system in row["sources"])
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(merge.golden),
            "customers": len(merge.golden),
            "customers_by_source": dg.MetadataValue.json(dict(sorted(by_source.items()))),
            "conflicts": len(merge.conflicts),
            "conflicts_by_attribute": dg.MetadataValue.json(
                dict(sorted(Counter(c["attribute"] for c in merge.conflicts).items()))
            ),
            "rows_rejected": len(inputs.rejected),
            "rows_rejected_by_source": dg.MetadataValue.json(
                dict(sorted(Counter(system for system, _, _ in inputs.rejected).items()))
            ),
            "guest_orders": inputs.guest_orders,
            "orders_read_now": orders_read,
            "superseded_records": dg.MetadataValue.json(dict(merge.superseded)),
            "registry": str(registry.source.name),
            "balance": balance.as_text(),
            "balance_holds": balance.holds,
        }
    )


@dg.asset_check(
    asset=CUSTOMERS,
    name=CHECK_EVERY_CUSTOMER_HAS_EMAIL,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Every golden customer has an email (storefront, else ERP): the ERP refuses a "
    "customer without one, and customer service cannot reach them.",
)
def every_customer_has_email(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        missing = con.execute(
            "SELECT customer_id, sources FROM core.customers WHERE email IS NULL ORDER BY customer_id"
        ).fetchall()
        total = con.execute("SELECT count(*) FROM core.customers").fetchone()[0]
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(
            f"customer {customer_id} (known to {', '.join(sources)}) has no email"
            for customer_id, sources in missing[:20]
        )
        or None,
        metadata={"customers": int(total), "customers_without_email": len(missing)},
    )


def conflicts_against_registry(
    conflicts: list[dict[str, str]], registry: OwnershipRegistry
) -> list[str]:
    """What is wrong with each conflict row: a missing or wrong rule, or a winner the registry would
    not have chosen over the overridden system."""
    problems = []
    for conflict in conflicts:
        where = f"customer {conflict['customer_id']} {conflict['attribute']}"
        try:
            attribute = registry.attribute(ENTITY, conflict["attribute"])
        except KeyError as error:
            problems.append(f"{where}: {error}")
            continue
        precedence = attribute.precedence
        chosen, overridden = conflict["chosen_system"], conflict["overridden_system"]
        expected_rule = "system_of_record" if chosen == attribute.system else "fallback"
        if conflict["rule"] != expected_rule:
            problems.append(f"{where}: rule {conflict['rule']!r}, expected {expected_rule!r}")
        if chosen not in precedence or overridden not in precedence:
            problems.append(f"{where}: {chosen} over {overridden}, outside {precedence}")
        elif precedence.index(chosen) >= precedence.index(overridden):
            problems.append(f"{where}: {chosen} won over {overridden}, precedence {precedence}")
    return problems


@dg.asset_check(
    asset=CUSTOMERS,
    name=CHECK_CONFLICTS_RESOLVED,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Every recorded conflict names the registry rule that decided it, and the winner is "
    "the system the registry puts first.",
)
def conflicts_resolved_by_registry(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        frame = con.execute(
            f"SELECT {', '.join(CONFLICT_COLUMNS)} FROM core.customer_conflicts"
        ).df()
    conflicts = frame.astype(object).where(frame.notna(), None).to_dict("records")
    problems = conflicts_against_registry(conflicts, load_ownership())
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems[:20]) or None,
        metadata={
            "conflicts": len(conflicts),
            "conflicts_not_by_registry": len(problems),
            "conflicts_by_rule": dg.MetadataValue.json(
                dict(sorted(Counter(str(c["rule"]) for c in conflicts).items()))
            ),
        },
    )
