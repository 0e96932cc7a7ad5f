"""The customers domain: CRM accounts and ERP customers -> gated staging -> the customer golden record."""

import dagster as dg

from integration_assets.defs.customers.checks import staging_customers_gate
from integration_assets.defs.customers.core import (
    conflicts_resolved_by_registry,
    core_customers,
    every_customer_has_email,
)
from integration_assets.defs.customers.extract import raw_crm_accounts, raw_erp_customers
from integration_assets.defs.customers.staging import staging_customer_references

customers_assets = [
    raw_crm_accounts,
    raw_erp_customers,
    staging_customer_references,
    core_customers,
]
customers_checks = [
    staging_customers_gate,
    every_customer_has_email,
    conflicts_resolved_by_registry,
]

defs = dg.Definitions(assets=customers_assets, asset_checks=customers_checks)
