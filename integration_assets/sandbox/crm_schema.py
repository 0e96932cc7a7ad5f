"""The sandbox CRM's data model: the Account and Contact fields it knows, as Salesforce describes them.

One table of fields drives both the upsert validation (`crm_records.py`) and the describe answer,
so what the CRM says it accepts and what it accepts cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

API_VERSION = "v60.0"
ORG_ID = "00DSb0000000001AAA"
ID_PREFIXES = {"Account": "001", "Contact": "003", "User": "005"}
BUSINESS_ACCOUNT = "Business Account"
PERSON_ACCOUNT = "Person Account"
ACCOUNT_RECORD_TYPES = {
    BUSINESS_ACCOUNT: "012Sb0000000001AAA",
    PERSON_ACCOUNT: "012Sb0000000002AAA",
}
MASTER_RECORD_TYPE_ID = "012000000000000AAA"  # what Salesforce calls an object's only record type
PICKLIST_FIELDS = ("Industry", "Customer_Segment__c")
DEFAULT_PICKLISTS: dict[str, tuple[str, ...]] = {
    # Salesforce's standard Industry values.
    "Industry": (
        "Agriculture",
        "Apparel",
        "Banking",
        "Biotechnology",
        "Chemicals",
        "Communications",
        "Construction",
        "Consulting",
        "Education",
        "Electronics",
        "Energy",
        "Engineering",
        "Entertainment",
        "Environmental",
        "Finance",
        "Food & Beverage",
        "Government",
        "Healthcare",
        "Hospitality",
        "Insurance",
        "Machinery",
        "Manufacturing",
        "Media",
        "Not For Profit",
        "Other",
        "Recreation",
        "Retail",
        "Shipping",
        "Technology",
        "Telecommunications",
        "Transportation",
        "Utilities",
    ),
    "Customer_Segment__c": ("Retail", "Wholesale", "VIP", "Marketplace"),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # Salesforce's describe type: id, string, textarea, email, phone, picklist, reference, ...
    label: str
    length: int = 0
    nillable: bool = True
    updateable: bool = True
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None


def _text(name: str, label: str, length: int, kind: str = "string", **extra: Any) -> FieldSpec:
    return FieldSpec(name, kind, label, length, **extra)


_COMMON_HEAD = (
    FieldSpec("Id", "id", "Record ID", 18, nillable=False, updateable=False),
    _text("External_Id__c", "External ID", 255, external_id=True),
)
_COMMON_TAIL = (
    FieldSpec(
        "OwnerId",
        "reference",
        "Owner ID",
        18,
        nillable=False,
        reference_to=("User",),
        relationship_name="Owner",
    ),
    FieldSpec("CreatedDate", "datetime", "Created Date", nillable=False, updateable=False),
    FieldSpec(
        "LastModifiedDate", "datetime", "Last Modified Date", nillable=False, updateable=False
    ),
)
FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "Account": (
        *_COMMON_HEAD,
        # Name is required for business accounts; on a person account it is First + Last name.
        _text("Name", "Account Name", 255, nillable=False),
        FieldSpec(
            "RecordTypeId",
            "reference",
            "Record Type ID",
            18,
            reference_to=("RecordType",),
            relationship_name="RecordType",
        ),
        FieldSpec("IsPersonAccount", "boolean", "Is Person Account", updateable=False),
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80),
        _text("PersonEmail", "Email", 80, "email"),
        _text("Phone", "Account Phone", 40, "phone"),
        _text("BillingStreet", "Billing Street", 255, "textarea"),
        _text("BillingCity", "Billing City", 40),
        _text("BillingState", "Billing State/Province", 80),
        _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
        _text("BillingCountry", "Billing Country", 80),
        _text("Industry", "Industry", 255, "picklist"),
        _text("Customer_Segment__c", "Customer Segment", 255, "picklist"),
        *_COMMON_TAIL,
    ),
    "Contact": (
        *_COMMON_HEAD,
        _text("FirstName", "First Name", 40),
        _text("LastName", "Last Name", 80, nillable=False),
        _text("Email", "Email", 80, "email"),
        _text("Phone", "Business Phone", 40, "phone"),
        FieldSpec(
            "AccountId",
            "reference",
            "Account ID",
            18,
            reference_to=("Account",),
            relationship_name="Account",
        ),
        *_COMMON_TAIL,
    ),
}
SOBJECTS = tuple(FIELDS)
PERSON_ONLY_FIELDS = ("FirstName", "LastName", "PersonEmail")


def field_specs(sobject: str) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in FIELDS[sobject]}


def record_type_infos(sobject: str) -> list[dict[str, Any]]:
    """`recordTypeInfos` of a describe: Business and Person Account, or Contact's master type."""
    if sobject != "Account":
        return [_record_type("Master", MASTER_RECORD_TYPE_ID, default=True, master=True)]
    return [
        _record_type(name, record_type_id, default=name == BUSINESS_ACCOUNT, master=False)
        for name, record_type_id in ACCOUNT_RECORD_TYPES.items()
    ]


def _record_type(name: str, record_type_id: str, *, default: bool, master: bool) -> dict[str, Any]:
    return {
        "active": True,
        "available": True,
        "defaultRecordTypeMapping": default,
        "developerName": name.replace(" ", ""),
        "master": master,
        "name": name,
        "recordTypeId": record_type_id,
        "urls": {"layout": f"/services/data/{API_VERSION}/sobjects/RecordType/{record_type_id}"},
    }


def describe(sobject: str, picklists: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The describe answer (a subset of Salesforce's keys, with the same names and meanings)."""
    return {
        "name": sobject,
        "label": sobject,
        "custom": False,
        "createable": True,
        "updateable": True,
        "keyPrefix": ID_PREFIXES[sobject],
        "fields": [_describe_field(spec, picklists) for spec in FIELDS[sobject]],
        "recordTypeInfos": record_type_infos(sobject),
        "urls": {
            "sobject": f"/services/data/{API_VERSION}/sobjects/{sobject}",
            "describe": f"/services/data/{API_VERSION}/sobjects/{sobject}/describe",
        },
    }


def _describe_field(spec: FieldSpec, picklists: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    values = picklists.get(spec.name, ()) if spec.type == "picklist" else ()
    return {
        "name": spec.name,
        "label": spec.label,
        "type": spec.type,
        "length": spec.length,
        "nillable": spec.nillable,
        "createable": spec.updateable,
        "updateable": spec.updateable,
        "externalId": spec.external_id,
        "unique": spec.external_id,
        "custom": spec.name.endswith("__c"),
        "referenceTo": list(spec.reference_to),
        "relationshipName": spec.relationship_name,
        "restrictedPicklist": spec.type == "picklist",
        "picklistValues": [
            {
                "active": True,
                "defaultValue": False,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in values
        ],
    }
