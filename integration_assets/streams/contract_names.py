"""A payload read under the names its contract gives its fields.

A contract version that accepted a rename says where the source now sends a field
(`source: External_Id`). Row rules already read the new name first and the old one after
(`contract_rules.check_field`); a reader that knows only the contract's names (the golden record's
CRM and ERP readers) is given the payload with each renamed top-level field moved back under its
contract name, so records sent before and after the rename read, hash and deduplicate alike. Raw
keeps what the source sent.
"""

from __future__ import annotations

from typing import Any

from integration_assets.contracts import Contract


def with_contract_names(payload: Any, contract: Contract) -> Any:
    """`payload` with every top-level field the contract reads from another name (`source`) under
    its contract name; a payload that already has the contract name, or is not an object, is
    returned as it is. Nested (dotted) renames are not moved."""
    if not isinstance(payload, dict):
        return payload
    renamed = {
        rule.source: rule.name
        for rule in contract.fields
        if rule.source is not None
        and "." not in rule.name
        and "." not in rule.source
        and rule.source in payload
        and rule.name not in payload
    }
    if not renamed:
        return payload
    return {renamed.get(name, name): value for name, value in payload.items()}
