"""What the sandbox CRM starts with: its OAuth client, users, picklists, seed accounts and faults.

`parse_crm(reader, raw)` reads the scenario's `crm:` section with the scenario's strict reader, so a
typo names the file and the path (`crm.accounts[2].Industry: ...`) instead of surfacing as a
puzzling 400 in the middle of a test. Seed accounts use Salesforce's own field names (`Name`,
`BillingCity`, `Customer_Segment__c`...), plus `external_id`, `owner` (a user id) and
`last_modified` (a scenario TIME).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from integration_assets.sandbox.crm_schema import DEFAULT_PICKLISTS, PICKLIST_FIELDS
from integration_assets.sandbox.request_faults import parse_request_faults
from integration_assets.sandbox.scenario import Fault, _Reader

CRM_FAULT_KINDS = {
    # 503 SERVER_UNAVAILABLE (or UNKNOWN_EXCEPTION for a 500): retryable.
    "server_error": ({"after_requests"}, {"count", "status"}),
    # Salesforce answers a concurrent-request burst with 503 SERVER_UNAVAILABLE too.
    "rate_limit_burst": ({"after_requests"}, {"count"}),
    # The org's 24-hour API allowance is spent: 403 REQUEST_LIMIT_EXCEEDED, not worth retrying now.
    "daily_limit": ({"after_requests"}, {"count"}),
    # Every session issued so far dies before request after_requests + 1 (once).
    "expire_sessions": ({"after_requests"}, set()),
    "slow_response": ({"after_requests", "delay_seconds"}, {"count"}),
}
SEED_ACCOUNT_FIELDS = (
    "Name",
    "FirstName",
    "LastName",
    "PersonEmail",
    "Phone",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "Industry",
    "Customer_Segment__c",
)


@dataclass(frozen=True)
class CrmUser:
    id: str
    name: str
    email: str
    active: bool = True


INTEGRATION_USER = CrmUser("005Sb0000000001AAA", "Integration User", "integration@example.com")


@dataclass(frozen=True)
class CrmSeedAccount:
    """An Account the CRM already holds. A `LastName` makes it a person account, a `Name` a business one."""

    external_id: str
    fields: dict[str, str]
    owner: str | None = None  # None: the default owner
    last_modified: datetime | None = None  # None: the clock's now when the CRM starts


@dataclass(frozen=True)
class CrmConfig:
    client_id: str = "crm_sandbox_client"
    client_secret: str = "crm_sandbox_secret_not_a_secret"
    session_ttl_seconds: float | None = None  # None: sessions live until expire_sessions
    users: tuple[CrmUser, ...] = (INTEGRATION_USER,)
    default_owner: str = INTEGRATION_USER.id  # the API user: owner of what it creates
    picklists: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PICKLISTS))
    accounts: tuple[CrmSeedAccount, ...] = ()
    faults: tuple[Fault, ...] = ()

    def user(self, user_id: str) -> CrmUser | None:
        return next((user for user in self.users if user.id == user_id), None)


def parse_crm(reader: _Reader, raw: Any, path: str = "crm") -> CrmConfig:
    """The `crm:` section; every key is optional (see CrmConfig's defaults)."""
    data = reader.mapping(
        raw or {},
        path,
        {
            "client_id",
            "client_secret",
            "session_ttl_seconds",
            "users",
            "default_owner",
            "picklists",
            "accounts",
            "faults",
        },
    )
    defaults = CrmConfig()
    users = _parse_users(reader, data.get("users"), f"{path}.users") or defaults.users
    by_id = {user.id: user for user in users}
    # Without a default_owner, the first active user is the API user (owner of what it creates).
    first_active = next((user.id for user in users if user.active), users[0].id)
    default_owner = reader.string(data.get("default_owner", first_active), f"{path}.default_owner")
    if default_owner not in by_id:
        raise reader.fail(f"{path}.default_owner", f"{default_owner!r} is not one of the users")
    if not by_id[default_owner].active:
        raise reader.fail(f"{path}.default_owner", f"user {default_owner!r} is not active")
    ttl = data.get("session_ttl_seconds")
    picklists = _parse_picklists(reader, data.get("picklists"), f"{path}.picklists")
    return CrmConfig(
        client_id=reader.string(data.get("client_id", defaults.client_id), f"{path}.client_id"),
        client_secret=reader.string(
            data.get("client_secret", defaults.client_secret), f"{path}.client_secret"
        ),
        session_ttl_seconds=None
        if ttl is None
        else _positive(reader, ttl, f"{path}.session_ttl_seconds"),
        users=users,
        default_owner=default_owner,
        picklists=picklists,
        accounts=_parse_accounts(
            reader, data.get("accounts"), f"{path}.accounts", by_id, picklists
        ),
        faults=parse_request_faults(reader, data.get("faults"), f"{path}.faults", CRM_FAULT_KINDS),
    )


def _positive(reader: _Reader, value: Any, path: str) -> float:
    number = reader.number(value, path, 0)
    if number == 0:
        raise reader.fail(path, "must be > 0 (leave it out for sessions that do not expire)")
    return number


def _parse_users(reader: _Reader, raw: Any, path: str) -> tuple[CrmUser, ...]:
    users = []
    for index, entry in enumerate(reader.listing(raw, path)):
        where = f"{path}[{index}]"
        item = reader.mapping(entry, where, {"id", "name", "email", "active"})
        for key in ("id", "name", "email"):
            if key not in item:
                raise reader.fail(f"{where}.{key}", "required")
        active = item.get("active", True)
        if not isinstance(active, bool):
            raise reader.fail(f"{where}.active", f"expected true or false, got {active!r}")
        user_id = reader.string(item["id"], f"{where}.id")
        if any(user.id == user_id for user in users):
            raise reader.fail(f"{where}.id", f"duplicate user id {user_id!r}")
        users.append(
            CrmUser(
                id=user_id,
                name=reader.string(item["name"], f"{where}.name"),
                email=reader.string(item["email"], f"{where}.email"),
                active=active,
            )
        )
    return tuple(users)


def _parse_picklists(reader: _Reader, raw: Any, path: str) -> dict[str, tuple[str, ...]]:
    data = reader.mapping(raw or {}, path, set(PICKLIST_FIELDS))
    picklists = dict(DEFAULT_PICKLISTS)
    for name, values in data.items():
        listed = tuple(
            reader.string(value, f"{path}.{name}[{index}]")
            for index, value in enumerate(reader.listing(values, f"{path}.{name}"))
        )
        if not listed:
            raise reader.fail(f"{path}.{name}", "list at least one value")
        picklists[name] = listed
    return picklists


def _parse_accounts(
    reader: _Reader,
    raw: Any,
    path: str,
    users: dict[str, CrmUser],
    picklists: dict[str, tuple[str, ...]],
) -> tuple[CrmSeedAccount, ...]:
    accounts: list[CrmSeedAccount] = []
    for index, entry in enumerate(reader.listing(raw, path)):
        where = f"{path}[{index}]"
        item = reader.mapping(
            entry, where, {"external_id", "owner", "last_modified", *SEED_ACCOUNT_FIELDS}
        )
        if "external_id" not in item:
            raise reader.fail(f"{where}.external_id", "required")
        external_id = reader.string(item["external_id"], f"{where}.external_id")
        if any(account.external_id == external_id for account in accounts):
            raise reader.fail(f"{where}.external_id", f"duplicate external id {external_id!r}")
        fields = {
            name: reader.string(item[name], f"{where}.{name}")
            for name in SEED_ACCOUNT_FIELDS
            if item.get(name) is not None
        }
        if ("Name" in fields) == ("LastName" in fields):
            raise reader.fail(
                where, "give `Name` (a business account) or `LastName` (a person account)"
            )
        for name in PICKLIST_FIELDS:
            if name in fields and fields[name] not in picklists[name]:
                raise reader.fail(
                    f"{where}.{name}",
                    f"{fields[name]!r} is not in the {name} picklist ({', '.join(picklists[name])})",
                )
        owner = item.get("owner")
        if owner is not None and reader.string(owner, f"{where}.owner") not in users:
            raise reader.fail(f"{where}.owner", f"{owner!r} is not one of the users")
        last_modified = item.get("last_modified")
        accounts.append(
            CrmSeedAccount(
                external_id=external_id,
                fields=fields,
                owner=owner,
                last_modified=None
                if last_modified is None
                else reader.time(last_modified, f"{where}.last_modified"),
            )
        )
    return tuple(accounts)
