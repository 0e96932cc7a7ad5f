"""CRM client: Salesforce's REST API (v60.0) with the OAuth client-credentials flow.

The token answer's `instance_url` is where every API call goes (the token host is `base_url`).
`upsert` PATCHes `sobjects/{Account|Contact}/External_Id__c/{id}` and turns the answer into a
`WriteOutcome`: delivered (201 created / 200 updated), rejected (Salesforce's `errorCode: message
(fields)` joined), missing_reference (a Contact whose Account external id is not there yet: retry
after the account lands), or unavailable. `SERVER_UNAVAILABLE` 503s are retried by the shared loop;
a 403 `REQUEST_LIMIT_EXCEEDED` (the org's daily allowance is spent) is `unavailable`/`rate_limited`
at once, since retrying within the run cannot help. An expired session (401 `INVALID_SESSION_ID`)
gets one fresh token; credentials the CRM refuses fail the run naming CRM_CLIENT_ID and
CRM_CLIENT_SECRET, never the secret. Reads: `describe` (cached for the resource's life, i.e. a
run), the owner lookup by email (SOQL-quoted) and the incremental Account read (`nextRecordsUrl`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import PrivateAttr

from integration_assets.systems.oauth import OAuthClientCredentialsResource
from integration_assets.systems.write_outcome import (
    TargetError,
    TargetUnavailableError,
    WriteOutcome,
)

ACCOUNT_QUERY_FIELDS = (
    "Id, External_Id__c, Name, BillingStreet, BillingCity, BillingState, BillingPostalCode, "
    "BillingCountry, Phone, Industry, Customer_Segment__c, OwnerId, Owner.Email, LastModifiedDate"
)
FOREIGN_KEY_NOT_FOUND = "Foreign key external ID:"
# SOQL string literal escapes (quote and backslash are the ones an injection needs).
_SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def soql_string(value: str) -> str:
    """`value` as a quoted SOQL string literal: `o'brien` -> `'o\\'brien'`."""
    return "'" + "".join(_SOQL_ESCAPES.get(char, char) for char in value) + "'"


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC): `2026-11-20T14:00:00Z`."""
    if moment.tzinfo is None:
        raise ValueError("a SOQL datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def salesforce_errors_message(errors: list[dict[str, Any]]) -> str:
    """`INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: bad value for ...: Mining (Industry); ...`."""
    parts = []
    for error in errors:
        text = f"{error.get('errorCode') or 'UNKNOWN'}: {error.get('message') or ''}".rstrip()
        fields = [str(name) for name in error.get("fields") or []]
        parts.append(f"{text} ({', '.join(fields)})" if fields else text)
    return "; ".join(parts)


class CrmClient(OAuthClientCredentialsResource):
    """The CRM (Salesforce REST): upsert Accounts and Contacts, describe, owner lookup, Account changes."""

    system_name: ClassVar[str] = "crm"
    client_id_env_var: ClassVar[str] = "CRM_CLIENT_ID"
    client_secret_env_var: ClassVar[str] = "CRM_CLIENT_SECRET"

    base_url: (
        str  # where the token comes from: https://login.salesforce.com, My Domain, the sandbox
    )
    api_version: str = "v60.0"
    query_batch_size: int = 2000  # Sforce-Query-Options batchSize (Salesforce takes 200..2000)
    # The User who owns accounts whose account manager is unknown (CRM_DEFAULT_OWNER_ID).
    default_owner_id: str = ""

    _instance_url: str | None = PrivateAttr(default=None)
    _describes: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    # ---- OAuth hooks ----------------------------------------------------------------------------
    def _token_endpoint(self) -> str:
        return self.token_url or f"{self.base_url.rstrip('/')}/services/oauth2/token"

    def _parse_token_response(self, body: Any) -> tuple[str, float | None]:
        """Salesforce says where the org lives (`instance_url`) and nothing about expiry."""
        token, expires_in = super()._parse_token_response(body)
        instance_url = body.get("instance_url")
        if not isinstance(instance_url, str) or not instance_url.startswith(
            ("http://", "https://")
        ):
            raise TargetError("the crm token endpoint answered 200 without an instance_url")
        self._instance_url = instance_url.rstrip("/")
        return token, expires_in

    def _auth_error(self, path: str, status: int, response_text: str | None = None) -> Exception:
        # A Salesforce 403 is either a spent daily API allowance or a refused permission: the body says.
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in _error_codes(response_text):
            return TargetUnavailableError(
                f"{path} answered 403 REQUEST_LIMIT_EXCEEDED: the CRM org's API request "
                "allowance is spent; not retrying in this run",
                error_class="rate_limited",
                http_status=403,
            )
        return super()._auth_error(path, status, response_text)

    # ---- URLs -----------------------------------------------------------------------------------
    def data_url(self, path: str) -> str:
        """`{instance_url}/services/data/{api_version}/{path}` (fetches a token to learn the instance)."""
        if self._instance_url is None:
            self._current_token()
        return f"{self._instance_url}/services/data/{self.api_version}/{path}"

    # ---- writes ---------------------------------------------------------------------------------
    def upsert(
        self, sobject: str, external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> WriteOutcome:
        """Create or update `sobject` by `External_Id__c`; the outcome says what the CRM made of it.

        Raises `TargetAuthError` when the CRM refuses the credentials, `TargetError` for answers
        no write outcome describes (an unknown sObject, a wrong URL).
        """
        if not external_id:
            raise ValueError("a CRM upsert needs a non-empty external id")
        url = self.data_url(f"sobjects/{sobject}/External_Id__c/{quote(external_id, safe='')}")
        return self.write(
            "PATCH",
            url,
            json_body=fields,
            idempotency_key=idempotency_key,
            read_answer=lambda response, body: self._upsert_outcome(
                sobject, external_id, url, response, body
            ),
            unknown_answer_hint="check the sObject name and the CRM URL",
        )

    def _upsert_outcome(
        self, sobject: str, external_id: str, url: str, response: requests.Response, body: Any
    ) -> WriteOutcome | None:
        status = response.status_code
        if status in (200, 201):
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise TargetError(f"PATCH {urlsplit(url).path} answered {status} without an id")
            created = bool(body.get("created", status == 201))
            message = f"{'created' if created else 'updated'} {sobject} {body['id']}"
            return WriteOutcome.delivered(status, message, body["id"], created)
        errors = (
            [entry for entry in body or [] if isinstance(entry, dict)]
            if isinstance(body, list)
            else []
        )
        if status == 400 and errors:
            missing = all(
                entry.get("errorCode") == "INVALID_FIELD"
                and str(entry.get("message", "")).startswith(FOREIGN_KEY_NOT_FOUND)
                for entry in errors
            )
            return WriteOutcome.refused(
                "missing_reference" if missing else "rejected",
                status,
                self._scrub(salesforce_errors_message(errors)),
            )
        if status == 300:  # the external id matches several records: a human must merge them
            return WriteOutcome.refused(
                "conflict", status, f"several {sobject} records have External_Id__c {external_id}"
            )
        return None

    # ---- reads ----------------------------------------------------------------------------------
    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe; fetched once per resource (per run), since it rarely changes."""
        if sobject not in self._describes:
            self._describes[sobject] = self._get_json(self.data_url(f"sobjects/{sobject}/describe"))
        return self._describes[sobject]

    def picklist_values(self, sobject: str, field: str) -> set[str]:
        """The active values of a picklist field (what an upsert may send)."""
        for entry in self.describe(sobject).get("fields") or []:
            if entry.get("name") == field:
                return {
                    str(value["value"])
                    for value in entry.get("picklistValues") or []
                    if value.get("active", True)
                }
        raise TargetError(f"the CRM's {sobject} has no field {field!r}")

    def record_type_ids(self, sobject: str) -> dict[str, str]:
        """Record type name -> id (e.g. "Person Account" -> "012..."), active ones only."""
        return {
            str(info["name"]): str(info["recordTypeId"])
            for info in self.describe(sobject).get("recordTypeInfos") or []
            if info.get("active", True) and info.get("available", True)
        }

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """Users with this email (none, one, or several: the caller decides what several means)."""
        soql = f"SELECT Id, Name, Email, IsActive FROM User WHERE Email = {soql_string(email)}"
        return [
            {key: value for key, value in record.items() if key != "attributes"}
            for page in self._query(soql)
            for record in page
        ]

    def iter_accounts(self, modified_after: datetime) -> Iterator[list[dict[str, Any]]]:
        """Accounts modified after `modified_after`, a page (up to `query_batch_size`) at a time."""
        soql = (
            f"SELECT {ACCOUNT_QUERY_FIELDS} FROM Account "
            f"WHERE LastModifiedDate > {soql_datetime(modified_after)}"
        )
        yield from self._query(soql)

    def _query(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Run a query and follow `nextRecordsUrl` until `done`; yields non-empty pages."""
        headers = {"Sforce-Query-Options": f"batchSize={self.query_batch_size}"}
        body = self._get_json(self.data_url("query"), params={"q": soql}, headers=headers)
        while True:
            records = body.get("records")
            if not isinstance(records, list):
                raise TargetError(f"the CRM's query answer has no records list: {str(body)[:200]}")
            if records:
                yield records
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            if self._instance_url is None:  # the token was dropped and not fetched again yet
                self._current_token()
            body = self._get_json(f"{self._instance_url}{next_url}", headers=headers)

    def _get_json(
        self,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.json_object(url, self.send("GET", url, params=params, headers=headers))


def _error_codes(text: str | None) -> set[str]:
    """The errorCodes of a Salesforce error list (an empty set for anything else)."""
    try:
        body = json.loads(text or "")
    except ValueError:
        return set()
    if not isinstance(body, list):
        return set()
    return {str(entry.get("errorCode")) for entry in body if isinstance(entry, dict)}
