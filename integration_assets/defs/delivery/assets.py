"""The delivery assets: one per (target, entity), in the order the targets need them.

Customers before the sales orders that reference them, sales orders before invoices, invoices before
the payments and credit notes applied to them: the asset graph is the dependency order, so a run
never sends a child before its parent (and a target that answers "reference not found" anyway gets
the row retried, not dead-lettered).
"""

import dagster as dg

from integration_assets.contracts.timing import load_timing
from integration_assets.defs.delivery.factory import DeliverySpec, build_delivery_asset
from integration_assets.defs.delivery.names import delivery_key
from integration_assets.defs.orders.names import ORDERS_CURRENT
from integration_assets.defs.payments.names import STAGING_PAYMENTS
from integration_assets.delivery import plans

GOLDEN_CUSTOMERS = dg.AssetKey(["core", "customers"])

SPECS = (
    DeliverySpec(
        "crm",
        "account",
        "accounts",
        plans.plan_crm_accounts,
        [GOLDEN_CUSTOMERS],
        "Customers as CRM Accounts (a company: a Business Account; a person: a Person Account), upserted "
        "by External_Id__c. The account manager is looked up by email among the CRM's users (none: the "
        "default owner and the flag owner_defaulted; several: quarantined as owner_ambiguous); the "
        "segment is mapped to the Customer_Segment__c picklist (unknown values flagged, left out).",
    ),
    DeliverySpec(
        "crm",
        "contact",
        "contacts",
        plans.plan_crm_contacts,
        [delivery_key("crm", "accounts")],
        "The buyer of each business customer as a CRM Contact, linked to its Account by external id.",
    ),
    DeliverySpec(
        "erp",
        "customer",
        "customers",
        plans.plan_erp_customers,
        [GOLDEN_CUSTOMERS],
        "Customers in the ERP (name, email, phone, billing address), upserted by external id. Credit "
        "limit and payment terms are the ERP's own and are never overwritten from here.",
    ),
    DeliverySpec(
        "erp",
        "credit_limit",
        "credit_limits",
        plans.plan_erp_credit_limits,
        [delivery_key("erp", "customers")],
        "Credit limit changes requested by people: each waits for approval by another person "
        "(`integration-assets approvals approve|reject`), then is written to the ERP customer.",
    ),
    DeliverySpec(
        "erp",
        "sales_order",
        "sales_orders",
        plans.plan_erp_sales_orders,
        [ORDERS_CURRENT, delivery_key("erp", "customers")],
        "Orders as ERP sales orders (lines as sold, shipping, tax, discounts, status), each linked to its "
        "customer; an order whose customer is unknown is quarantined (unknown_customer), not sent.",
    ),
    DeliverySpec(
        "erp",
        "invoice",
        "invoices",
        plans.plan_erp_invoices,
        [delivery_key("erp", "sales_orders")],
        "One invoice per order whose revenue is recognised (INV-<order id>), dated the day of recognition: "
        "by default when it is paid; `revenue_recognised` in contracts/timing.yaml decides (this asset's "
        "metadata names the version and moments loaded). Invoices never change: refunds become credit notes.",
    ),
    DeliverySpec(
        "erp",
        "payment_applied",
        "payments_applied",
        plans.plan_erp_payments_applied,
        [delivery_key("erp", "invoices"), STAGING_PAYMENTS],
        "Each succeeded charge at the payment provider, applied to its order's invoice.",
    ),
    DeliverySpec(
        "erp",
        "credit_note",
        "credit_notes",
        plans.plan_erp_credit_notes,
        [delivery_key("erp", "invoices")],
        "One credit note per refund that returned money (CN-<refund id>). Above the threshold "
        f"({plans.CREDIT_NOTE_APPROVAL_THRESHOLD_MINOR / 100:.2f} in the order's currency) a person "
        "approves it first.",
    ),
    DeliverySpec(
        "wms",
        "reservation",
        "reservations",
        plans.plan_wms_reservations,
        [ORDERS_CURRENT],
        "Stock reservations in the WMS (RES-<order id>): reserved with the unshipped units once an order's "
        "fulfilment is activated (by default when it is paid; `fulfilment_activated` in "
        "contracts/timing.yaml), adjusted when it is edited or shipped, released when it is cancelled or "
        "refunded.",
    ),
)

# The order deliveries whose timing the definitions decide; the UI shows the definitions loaded with
# the code location (each run reads the file again, so a run after an edit applies the new one).
TIMED_DELIVERIES = {("erp", "sales_order"), ("erp", "invoice"), ("erp", "payment_applied"),
                    ("erp", "credit_note"), ("wms", "reservation")}  # fmt: skip


def _with_timing_metadata(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    timing = load_timing().as_metadata()
    return dg.map_asset_specs(lambda spec: spec.merge_attributes(metadata=timing), [asset])[0]


DELIVERY_ASSETS = [
    _with_timing_metadata(build_delivery_asset(spec))
    if (spec.target, spec.entity) in TIMED_DELIVERIES
    else build_delivery_asset(spec)
    for spec in SPECS
]
DELIVERY_KEYS = [spec.key for spec in SPECS]
