"""Golden customer -> CRM writes: the Account (person or business) and, for a company, its Contact.

The CRM decides who may own an account and which picklist values exist, so the transform takes what
the CRM said (users found by email, the describe's active picklist values) as inputs and never guesses:
no owner found -> the default owner and a flag so sales ops can reassign; several -> held back, since
picking one would hand a customer to the wrong person; a segment the CRM does not know -> left out
and flagged, since a restricted picklist would reject the whole write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.streams.customers import GOLDEN_COLUMNS, LINEAGE_COLUMNS
from integration_assets.streams.mapped import Mapped, guarded
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

CRM_MAPPING_FILE = CONTRACTS_DIR / "crm_mapping.yaml"
TARGET = "crm"
OWNER_LOOKUP = "crm_owner_by_email"
FLAG_OWNER_DEFAULTED = "owner_defaulted"
QUARANTINE_OWNER_AMBIGUOUS = "owner_ambiguous"
QUARANTINE_LAST_NAME_MISSING = "last_name_missing"
QUARANTINE_COMPANY_NAME_MISSING = "company_name_missing"
QUARANTINE_POSTAL_CODE_MISSING = "postal_code_missing"
# The CRM's validation rule (as the ERP's): a US or Canadian billing address needs a postal code.
POSTAL_CODE_REQUIRED = ("US", "CA")


class CrmMappingError(ValueError):
    """A CRM mapping file that does not say what it must; the message names the file and the path."""


@dataclass(frozen=True)
class Picklist:
    field: str  # the CRM field, e.g. Customer_Segment__c
    source: str  # the golden-record column the value comes from
    values: Mapping[str, str]  # our value -> CRM picklist value


@dataclass(frozen=True)
class CrmMapping:
    source: Path
    picklists: tuple[Picklist, ...]


class _MappingReader(StrictYamlReader):
    def fail(self, path: str, problem: str) -> CrmMappingError:
        return CrmMappingError(f"{self.file}: {path or '<top level>'}: {problem}")


def load_crm_mapping(path: str | Path = CRM_MAPPING_FILE) -> CrmMapping:
    """Read and validate the picklist mapping table; raises CrmMappingError naming file and path."""
    file = Path(path)
    raw = load_yaml_file(file, CrmMappingError, "CRM mapping")
    reader = _MappingReader(file)
    top = reader.mapping(raw, "", {"version", "picklists"})
    reader.integer(top.get("version"), "version", minimum=1)
    columns = set(GOLDEN_COLUMNS) - set(LINEAGE_COLUMNS)
    picklists = []
    for field_name, spec in reader.mapping(top.get("picklists"), "picklists").items():
        path = f"picklists.{reader.string(field_name, 'picklists')}"
        spec = reader.mapping(spec, path, {"from", "values"})
        source = reader.string(spec.get("from"), f"{path}.from")
        if source not in columns:
            raise reader.fail(f"{path}.from", f"not a golden-record column: {source!r}")
        values = {
            reader.string(ours, f"{path}.values"): reader.string(theirs, f"{path}.values.{ours}")
            for ours, theirs in reader.mapping(spec.get("values"), f"{path}.values").items()
        }
        picklists.append(Picklist(field_name, source, MappingProxyType(values)))
    return CrmMapping(file, tuple(picklists))


@cache
def _shipped_mapping() -> CrmMapping:
    return load_crm_mapping()


@dataclass(frozen=True)
class _OwnerResolution:
    owner_id: str | None
    outcome: str
    flags: tuple[str, ...]
    quarantine: str | None
    candidates: tuple[str, ...]


def _resolve_owner(
    email: str | None, owners_by_email: Mapping[str, list[dict]], default_owner_id: str
) -> _OwnerResolution:
    if not email:
        return _OwnerResolution(default_owner_id, "no_email", (FLAG_OWNER_DEFAULTED,), None, ())
    wanted = email.strip().lower()
    found: dict[str, dict] = {}
    for key, users in owners_by_email.items():
        if key.strip().lower() != wanted:
            continue
        for user in users or []:
            # "active users found": a user explicitly inactive cannot own records, so it is no match.
            if user.get("IsActive") is not False and user.get("Id"):
                found[str(user["Id"])] = user
    if not found:
        return _OwnerResolution(default_owner_id, "missing", (FLAG_OWNER_DEFAULTED,), None, ())
    if len(found) > 1:
        return _OwnerResolution(
            None, "ambiguous", (), QUARANTINE_OWNER_AMBIGUOUS, tuple(sorted(found))
        )
    (owner_id,) = found
    return _OwnerResolution(owner_id, "found", (), None, ())


def _billing(golden: Mapping[str, Any]) -> dict[str, Any]:
    street = "\n".join(
        part for part in (golden.get("address_line1"), golden.get("address_line2")) if part
    )
    return {
        "BillingStreet": street or None,
        "BillingCity": golden.get("city"),
        "BillingState": golden.get("region"),
        "BillingPostalCode": golden.get("postal_code"),
        "BillingCountry": golden.get("country"),
    }


def _without_empty(fields: Mapping[str, Any]) -> dict[str, Any]:
    # An absent value is left out, not sent as null: in a PATCH, null would erase what the CRM holds.
    return {key: value for key, value in fields.items() if value is not None}


def crm_account(
    golden: Mapping[str, Any],
    owners_by_email: Mapping[str, list[dict]],
    default_owner_id: str,
    picklists: Mapping[str, set[str]],
    person_record_type_id: str,
    business_record_type_id: str,
    mapping: CrmMapping | None = None,
) -> Mapped:
    """The CRM Account upsert (by External_Id__c = customer id) for a golden customer row.

    A company becomes a Business Account (Name = company); a person a Person Account (FirstName,
    LastName, PersonEmail). `owners_by_email`: email -> the CRM users found for it; `picklists`: CRM
    field -> the values the describe lists as active; `mapping`: our values -> picklist values
    (default: contracts/crm_mapping.yaml).
    """
    customer_id = str(golden.get("customer_id"))
    return guarded(
        TARGET,
        "account",
        customer_id,
        lambda: _crm_account(
            customer_id,
            golden,
            owners_by_email,
            default_owner_id,
            picklists,
            person_record_type_id,
            business_record_type_id,
            mapping or _shipped_mapping(),
        ),
    )


def _crm_account(
    customer_id: str,
    golden: Mapping[str, Any],
    owners_by_email: Mapping[str, list[dict]],
    default_owner_id: str,
    picklists: Mapping[str, set[str]],
    person_record_type_id: str,
    business_record_type_id: str,
    mapping: CrmMapping,
) -> Mapped:
    flags: list[str] = []
    lookups: list[tuple[str, str]] = []
    quarantine = None
    if golden.get("is_company"):
        fields: dict[str, Any] = {
            "RecordTypeId": business_record_type_id,
            "Name": golden.get("company"),
        }
        if not golden.get("company"):
            quarantine = QUARANTINE_COMPANY_NAME_MISSING
    else:
        fields = {
            "RecordTypeId": person_record_type_id,
            "FirstName": golden.get("first_name"),
            "LastName": golden.get("last_name"),
            "PersonEmail": golden.get("email"),
        }
        if not golden.get("last_name"):
            quarantine = QUARANTINE_LAST_NAME_MISSING
    fields["Phone"] = golden.get("phone")
    fields.update(_billing(golden))
    if golden.get("country") in POSTAL_CODE_REQUIRED and not golden.get("postal_code"):
        quarantine = quarantine or QUARANTINE_POSTAL_CODE_MISSING
    for picklist in mapping.picklists:
        ours = golden.get(picklist.source)
        if ours is None:
            continue
        theirs = picklist.values.get(str(ours).strip().lower())
        if theirs is not None and theirs in picklists.get(picklist.field, set()):
            fields[picklist.field] = theirs
            lookups.append((f"picklist:{picklist.field}", "mapped"))
        else:
            flags.append(f"picklist_unknown:{picklist.field}={ours}")
            lookups.append((f"picklist:{picklist.field}", "unknown"))
    owner = _resolve_owner(golden.get("account_manager_email"), owners_by_email, default_owner_id)
    lookups.append((OWNER_LOOKUP, owner.outcome))
    flags.extend(owner.flags)
    fields["OwnerId"] = owner.owner_id
    return Mapped(
        TARGET,
        "account",
        customer_id,
        _without_empty(fields),
        flags=tuple(flags),
        quarantine=quarantine or owner.quarantine,
        lookups=tuple(lookups),
        details={"owner_candidates": list(owner.candidates)} if owner.candidates else {},
    )


def crm_contact(
    golden: Mapping[str, Any],
    owners_by_email: Mapping[str, list[dict]],
    default_owner_id: str,
) -> Mapped | None:
    """The CRM Contact upsert for a company's buyer, linked to its Business Account by external id.

    None for a person: a Person Account is its own contact. The contact's external id is the customer
    id, the same as its account's (external ids are unique per sObject, not across them).
    """
    if not golden.get("is_company"):
        return None
    customer_id = str(golden.get("customer_id"))

    def build() -> Mapped:
        owner = _resolve_owner(
            golden.get("account_manager_email"), owners_by_email, default_owner_id
        )
        fields = {
            "FirstName": golden.get("first_name"),
            "LastName": golden.get("last_name"),
            "Email": golden.get("email"),
            "Phone": golden.get("phone"),
            "Account": {"External_Id__c": customer_id},
            "OwnerId": owner.owner_id,
        }
        quarantine = None if golden.get("last_name") else QUARANTINE_LAST_NAME_MISSING
        return Mapped(
            TARGET,
            "contact",
            customer_id,
            _without_empty(fields),
            flags=owner.flags,
            quarantine=quarantine or owner.quarantine,
            lookups=((OWNER_LOOKUP, owner.outcome),),
            depends_on=((TARGET, "account", customer_id),),
            details={"owner_candidates": list(owner.candidates)} if owner.candidates else {},
        )

    return guarded(TARGET, "contact", customer_id, build)
