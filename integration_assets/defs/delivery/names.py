"""Asset keys, check names and owners of the delivery layer (writes into ERP, CRM and WMS) and ops/*."""

import dagster as dg

GROUP = "delivery"
OPS_GROUP = "ops"
OWNER = "integrations@example.com"  # the registry's integrations (contracts/ownership.yaml)

OUTBOX = dg.AssetKey(["ops", "outbox"])
AUDIT_LOG = dg.AssetKey(["ops", "audit_log"])


def delivery_key(target: str, plural: str) -> dg.AssetKey:
    return dg.AssetKey(["delivery", target, plural])


CHECK_TARGET_REACHABLE = "target_reachable"
CHECK_PLAN_BALANCE = "every_candidate_accounted_for"
CHECK_OUTBOX_BALANCES = "outbox_balances"
CHECK_NO_OLD_DEAD_LETTERS = "no_dead_letters_past_escalation_age"
