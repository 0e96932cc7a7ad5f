"""The sandbox CRM's records: upsert by external id, with Salesforce's validation and error shapes.

A PATCH to `sobjects/{Account|Contact}/External_Id__c/{id}` creates the record or updates the
fields it names (a PATCH is partial, as in Salesforce). What it refuses comes back as Salesforce's
list of `{message, errorCode, fields}`; a refused write changes nothing. An update that changes
nothing is counted as `unchanged` and keeps `LastModifiedDate` (Salesforce would bump it; keeping it
lets tests see that a retried delivery was a no-op, and it never makes a second document).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration_assets.sandbox.crm_config import CrmConfig, CrmUser
from integration_assets.sandbox.crm_schema import (
    ACCOUNT_RECORD_TYPES,
    API_VERSION,
    BUSINESS_ACCOUNT,
    ID_PREFIXES,
    PERSON_ACCOUNT,
    PERSON_ONLY_FIELDS,
    PICKLIST_FIELDS,
    SOBJECTS,
    field_specs,
)

# Close to what Salesforce accepts: a dotted domain and no spaces.
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
# The org's validation rule (a FIELD_CUSTOM_VALIDATION_EXCEPTION), the same one the ERP enforces.
POSTAL_CODE_COUNTRIES = {"US", "USA", "United States", "CA", "Canada"}
POSTAL_CODE_RULE = "Billing Zip/Postal Code is required for US and Canadian addresses"


def sf_error(code: str, message: str, fields: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    return {"message": message, "errorCode": code, "fields": list(fields)}


class CrmRejected(Exception):
    """A write the CRM refuses: `errors` is Salesforce's error list, `status` the HTTP status."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 400) -> None:
        super().__init__("; ".join(f"{error['errorCode']}: {error['message']}" for error in errors))
        self.errors = errors
        self.status = status


def salesforce_datetime(moment: datetime) -> str:
    """Salesforce's datetime: `2026-11-20T14:00:00.000+0000` (always UTC, milliseconds)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


@dataclass
class StoredRecord:
    sobject: str
    id: str
    external_id: str
    fields: dict[str, str]  # what a write can set, OwnerId / RecordTypeId / AccountId included
    created: datetime
    last_modified: datetime

    @property
    def is_person_account(self) -> bool:
        return self.fields.get("RecordTypeId") == ACCOUNT_RECORD_TYPES[PERSON_ACCOUNT]

    @property
    def name(self) -> str | None:
        if self.sobject == "Account" and not self.is_person_account:
            return self.fields.get("Name")
        # A person account's (and a contact's) Name is made of its first and last name.
        parts = (self.fields.get("FirstName"), self.fields.get("LastName"))
        return " ".join(part for part in parts if part) or None

    def as_sobject(self) -> dict[str, Any]:
        """The record as the REST API shows it (every known field, unset ones as null)."""
        body: dict[str, Any] = {
            "attributes": {
                "type": self.sobject,
                "url": f"/services/data/{API_VERSION}/sobjects/{self.sobject}/{self.id}",
            }
        }
        for name in field_specs(self.sobject):
            body[name] = self.fields.get(name)
        body.update(
            Id=self.id,
            External_Id__c=self.external_id,
            CreatedDate=salesforce_datetime(self.created),
            LastModifiedDate=salesforce_datetime(self.last_modified),
        )
        body["Name"] = self.name
        if self.sobject == "Account":
            body["IsPersonAccount"] = self.is_person_account
        return body


@dataclass(frozen=True)
class UpsertResult:
    id: str
    created: bool
    changed: bool  # False: the record already held exactly these values


@dataclass
class _WriteCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class CrmRecords:
    """Every Account and Contact the CRM holds, keyed by external id; thread-safe."""

    def __init__(self, config: CrmConfig, started_at: datetime) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, StoredRecord]] = {sobject: {} for sobject in SOBJECTS}
        self._by_id: dict[str, StoredRecord] = {}
        self._counters = {sobject: 0 for sobject in SOBJECTS}
        self._writes = {sobject: _WriteCounts() for sobject in SOBJECTS}
        self._users = {user.id: user for user in config.users}
        for seed in config.accounts:
            fields = dict(seed.fields)
            fields["OwnerId"] = seed.owner or config.default_owner
            person = "LastName" in fields
            fields["RecordTypeId"] = ACCOUNT_RECORD_TYPES[
                PERSON_ACCOUNT if person else BUSINESS_ACCOUNT
            ]
            moment = seed.last_modified or started_at
            self._store("Account", seed.external_id, fields, moment, moment)

    # ---- reads -------------------------------------------------------------------------------
    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of `sobject` as the API shows it, in creation order."""
        with self._lock:
            return [record.as_sobject() for record in self._records[sobject].values()]

    def count(self, sobject: str) -> int:
        with self._lock:
            return len(self._records[sobject])

    def write_counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {sobject: counts.as_dict() for sobject, counts in self._writes.items()}

    def users_by_email(self, email: str) -> list[CrmUser]:
        """Salesforce compares email addresses without regard to case."""
        wanted = email.casefold()
        return [user for user in self.config.users if user.email.casefold() == wanted]

    def user(self, user_id: str) -> CrmUser | None:
        return self._users.get(user_id)

    def accounts_modified_after(self, moment: datetime) -> list[StoredRecord]:
        with self._lock:
            matching = [
                record
                for record in self._records["Account"].values()
                if record.last_modified > moment
            ]
        return sorted(matching, key=lambda record: (record.last_modified, record.id))

    # ---- the write -----------------------------------------------------------------------------
    def upsert(self, sobject: str, external_id: str, body: Any, now: datetime) -> UpsertResult:
        """Create or update by external id; raises CrmRejected (changing nothing) when refused."""
        try:
            with self._lock:
                return self._upsert_locked(sobject, external_id, body, now)
        except CrmRejected:
            with self._lock:
                self._writes[sobject].rejected += 1
            raise

    def _upsert_locked(
        self, sobject: str, external_id: str, body: Any, now: datetime
    ) -> UpsertResult:
        if not isinstance(body, dict):
            raise CrmRejected(
                [sf_error("JSON_PARSER_ERROR", "The request body must be a JSON object")]
            )
        changes, errors = self._read_changes(sobject, external_id, body)
        if errors:  # fields that cannot be written at all: Salesforce stops there
            raise CrmRejected(errors)
        stored = self._records[sobject].get(external_id)
        current = {} if stored is None else dict(stored.fields)
        if stored is None:
            # Salesforce's defaults on create: the API user owns it, the default record type.
            current["OwnerId"] = self.config.default_owner
            if sobject == "Account":
                current["RecordTypeId"] = ACCOUNT_RECORD_TYPES[BUSINESS_ACCOUNT]
        merged = {**current, **changes}
        merged = {name: value for name, value in merged.items() if value is not None}
        if sobject == "Account":
            errors += self._account_errors(merged, changes)
        else:
            if not merged.get("LastName"):
                errors.append(
                    sf_error(
                        "REQUIRED_FIELD_MISSING",
                        "Required fields are missing: [LastName]",
                        ["LastName"],
                    )
                )
            errors += _email_errors(changes, "Email")
            account_id = changes.get("AccountId")
            account = None if account_id is None else self._by_id.get(account_id)
            if account_id is not None and (account is None or account.sobject != "Account"):
                errors.append(
                    sf_error(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["AccountId"]
                    )
                )
        errors += self._owner_errors(sobject, changes)
        if errors:
            raise CrmRejected(errors)
        if stored is None:
            record = self._store(sobject, external_id, merged, now, now)
            self._writes[sobject].created += 1
            return UpsertResult(record.id, created=True, changed=True)
        if merged == stored.fields:
            self._writes[sobject].unchanged += 1
            return UpsertResult(stored.id, created=False, changed=False)
        stored.fields = merged
        stored.last_modified = now
        self._writes[sobject].updated += 1
        return UpsertResult(stored.id, created=False, changed=True)

    def _read_changes(
        self, sobject: str, external_id: str, body: dict[str, Any]
    ) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
        """The body's field values, and the errors of fields that cannot be written at all."""
        specs = field_specs(sobject)
        changes: dict[str, str | None] = {}
        errors: list[dict[str, Any]] = []
        for name, value in body.items():
            if name == "attributes":  # Salesforce accepts (and ignores) the type annotation
                continue
            if sobject == "Contact" and name == "Account":
                reference_errors, account_id = self._account_reference(value)
                errors += reference_errors
                if account_id is not None:
                    changes["AccountId"] = account_id
                continue
            spec = specs.get(name)
            if spec is None:
                errors.append(
                    sf_error(
                        "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}"
                    )
                )
            elif not spec.updateable:
                errors.append(
                    sf_error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security "
                        "settings of this field and verify that it is read/write for your "
                        "profile or permission set.",
                        [name],
                    )
                )
            elif value is not None and not isinstance(value, str):
                errors.append(
                    sf_error(
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of string from {type(value).__name__} "
                        f"value {value!r:.40} at [field {name}]",
                    )
                )
            elif name == "External_Id__c":
                if value != external_id:
                    errors.append(
                        sf_error(
                            "INVALID_FIELD",
                            f"External_Id__c in the body ({value!r:.60}) differs from the one in the URL",
                            [name],
                        )
                    )
            elif spec.length and value is not None and len(value) > spec.length:
                errors.append(
                    sf_error(
                        "STRING_TOO_LONG",
                        f"{spec.label}: data value too large: {value[:40]}... (max length={spec.length})",
                        [name],
                    )
                )
            else:
                changes[name] = value
        return changes, errors

    def _account_reference(self, value: Any) -> tuple[list[dict[str, Any]], str | None]:
        """`"Account": {"External_Id__c": "..."}` -> the Account's Id, or Salesforce's error."""
        if not isinstance(value, dict) or set(value) - {"attributes"} != {"External_Id__c"}:
            return [
                sf_error(
                    "INVALID_FIELD",
                    "A reference to Account must be an object with exactly External_Id__c",
                    ["Account"],
                )
            ], None
        account_eid = value["External_Id__c"]
        account = self._records["Account"].get(str(account_eid))
        if account is None:
            return [
                sf_error(
                    "INVALID_FIELD",
                    f"Foreign key external ID: {account_eid} not found for field "
                    "External_Id__c in entity Account",
                )
            ], None
        return [], account.id

    def _account_errors(
        self, merged: dict[str, str], changes: dict[str, str | None]
    ) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        record_type = merged.get("RecordTypeId", ACCOUNT_RECORD_TYPES[BUSINESS_ACCOUNT])
        if record_type not in ACCOUNT_RECORD_TYPES.values():
            errors.append(
                sf_error(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"Record Type ID: this ID value isn't valid for the user: {record_type}",
                    ["RecordTypeId"],
                )
            )
        elif record_type == ACCOUNT_RECORD_TYPES[PERSON_ACCOUNT]:
            if changes.get("Name") is not None:
                errors.append(
                    sf_error(
                        "INVALID_FIELD",
                        "Name: a Person Account's name is its FirstName and LastName",
                        ["Name"],
                    )
                )
            merged.pop("Name", None)
            if not merged.get("LastName"):
                errors.append(
                    sf_error(
                        "REQUIRED_FIELD_MISSING",
                        "Required fields are missing: [LastName]",
                        ["LastName"],
                    )
                )
        else:
            for name in PERSON_ONLY_FIELDS:
                if changes.get(name) is not None:
                    errors.append(
                        sf_error(
                            "INVALID_FIELD", f"{name}: only Person Accounts have this field", [name]
                        )
                    )
                merged.pop(name, None)
            if not merged.get("Name"):
                errors.append(
                    sf_error(
                        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", ["Name"]
                    )
                )
        for name in PICKLIST_FIELDS:
            value = changes.get(name)
            if value is not None and value not in self.config.picklists[name]:
                errors.append(
                    sf_error(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"bad value for restricted picklist field: {value}",
                        [name],
                    )
                )
        errors += _email_errors(changes, "PersonEmail")
        if merged.get("BillingCountry") in POSTAL_CODE_COUNTRIES and not merged.get(
            "BillingPostalCode"
        ):
            errors.append(
                sf_error(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION", POSTAL_CODE_RULE, ["BillingPostalCode"]
                )
            )
        return errors

    def _owner_errors(self, sobject: str, changes: dict[str, str | None]) -> list[dict[str, Any]]:
        if "OwnerId" not in changes:
            return []
        owner_id = changes["OwnerId"]
        if owner_id is None:
            return [
                sf_error(
                    "INVALID_CROSS_REFERENCE_KEY", "Owner ID: owner cannot be blank", ["OwnerId"]
                )
            ]
        user = self._users.get(owner_id)
        if user is None:
            return [
                sf_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"])
            ]
        if not user.active:
            return [
                sf_error(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{owner_id}] as owner of {sobject.lower()}",
                )
            ]
        return []

    def _store(
        self,
        sobject: str,
        external_id: str,
        fields: dict[str, str],
        created: datetime,
        last_modified: datetime,
    ) -> StoredRecord:
        self._counters[sobject] += 1
        # 18 characters, the object's key prefix first, like a real Salesforce id.
        record_id = f"{ID_PREFIXES[sobject]}Sb{self._counters[sobject]:010d}AAA"
        record = StoredRecord(sobject, record_id, external_id, fields, created, last_modified)
        self._records[sobject][external_id] = record
        self._by_id[record_id] = record
        return record


def _email_errors(changes: dict[str, str | None], name: str) -> list[dict[str, Any]]:
    value = changes.get(name)
    if value is None or EMAIL_RE.fullmatch(value):
        return []
    return [sf_error("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {value}", [name])]
