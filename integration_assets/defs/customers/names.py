"""Asset keys, streams, contracts and check names of the customers domain: CRM accounts and ERP
customers in, the customer golden record (core/customers) out."""

import dagster as dg

from integration_assets.contracts.ownership import load_ownership

GROUP = "customers"
# The customer entity's steward in the ownership registry answers for every asset of the domain.
OWNER = load_ownership().entity_owner("customer").email

CRM_SOURCE, CRM_STREAM_NAME = "crm", "accounts"
ERP_SOURCE, ERP_STREAM_NAME = "erp", "customers"
CRM_STREAM = f"{CRM_SOURCE}/{CRM_STREAM_NAME}"
ERP_STREAM = f"{ERP_SOURCE}/{ERP_STREAM_NAME}"
STREAMS = (CRM_STREAM, ERP_STREAM)
# The golden record's name for the system behind each stream (ownership.yaml `systems`).
SYSTEM_OF_STREAM = {CRM_STREAM: "crm", ERP_STREAM: "erp"}
CONTRACTS = {CRM_STREAM: "crm_accounts", ERP_STREAM: "erp_customers"}

RAW_CRM_ACCOUNTS = dg.AssetKey(["raw", CRM_SOURCE, CRM_STREAM_NAME])
RAW_ERP_CUSTOMERS = dg.AssetKey(["raw", ERP_SOURCE, ERP_STREAM_NAME])
STAGING_REFERENCES = dg.AssetKey(["staging", "customers", "references"])
CUSTOMERS = dg.AssetKey(["core", "customers"])

# Blocking checks on staging: core/customers reads only batches that passed every one of these.
CHECK_KEYS_UNIQUE = "keys_unique"
CHECK_COUNT_BALANCE = "count_balance"
CHECK_QUARANTINE_SHARE = "quarantine_within_limit"
CHECK_REQUIRED_FIELDS = "required_fields_present"
GATING_CHECKS = (
    CHECK_KEYS_UNIQUE,
    CHECK_COUNT_BALANCE,
    CHECK_QUARANTINE_SHARE,
    CHECK_REQUIRED_FIELDS,
)

CHECK_EVERY_CUSTOMER_HAS_EMAIL = "every_customer_has_email"
CHECK_CONFLICTS_RESOLVED = "conflicts_resolved_by_registry"
