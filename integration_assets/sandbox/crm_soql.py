"""The two SOQL queries the sandbox CRM answers, parsed strictly (anything else is MALFORMED_QUERY).

`SELECT Id, Name, Email, IsActive FROM User WHERE Email = '<literal>'` (owner lookup) and the
incremental Account read `SELECT <ACCOUNT_QUERY_FIELDS> FROM Account WHERE LastModifiedDate > <datetime>`.
String literals are read with SOQL's escapes (`\\'`, `\\\\`, `\\n`...), so a client that forgets to
escape a quote gets a malformed query, and one that escapes it finds the literal text, never more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

USER_FIELDS = ("Id", "Name", "Email", "IsActive")
ACCOUNT_QUERY_FIELDS = (
    "Id",
    "External_Id__c",
    "Name",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "Phone",
    "Industry",
    "Customer_Segment__c",
    "OwnerId",
    "Owner.Email",
    "LastModifiedDate",
)
_SELECT = re.compile(
    r"\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<sobject>\w+)\s+WHERE\s+(?P<where>.+?)\s*",
    re.IGNORECASE | re.DOTALL,
)
_EMAIL_CONDITION = re.compile(r"Email\s*=\s*(?P<literal>'.*)", re.IGNORECASE | re.DOTALL)
_MODIFIED_CONDITION = re.compile(
    r"LastModifiedDate\s*>\s*(?P<moment>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?"
    r"(?:Z|[+-]\d{2}:\d{2}))",
    re.IGNORECASE,
)
# SOQL's escape sequences inside a quoted string.
_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
}


class MalformedQuery(ValueError):
    """A query this CRM does not answer; the message is Salesforce-like and names the problem."""


@dataclass(frozen=True)
class UserByEmail:
    email: str


@dataclass(frozen=True)
class AccountsModifiedAfter:
    moment: datetime


def parse_query(query: str) -> UserByEmail | AccountsModifiedAfter:
    """One of the two supported queries, or MalformedQuery."""
    match = _SELECT.fullmatch(query)
    if match is None:
        raise MalformedQuery("unexpected token: expected SELECT ... FROM ... WHERE ...")
    fields = tuple(part.strip() for part in match["fields"].split(","))
    sobject = match["sobject"]
    where = match["where"]
    if sobject.lower() == "user":
        _expect_fields(fields, USER_FIELDS, "User")
        condition = _EMAIL_CONDITION.fullmatch(where)
        if condition is None:
            raise MalformedQuery("only WHERE Email = '<address>' is supported on User")
        return UserByEmail(read_string_literal(condition["literal"]))
    if sobject.lower() == "account":
        _expect_fields(fields, ACCOUNT_QUERY_FIELDS, "Account")
        condition = _MODIFIED_CONDITION.fullmatch(where)
        if condition is None:
            raise MalformedQuery(
                "only WHERE LastModifiedDate > <datetime like 2026-01-01T00:00:00Z> is supported on Account"
            )
        moment = datetime.fromisoformat(condition["moment"].replace("Z", "+00:00"))
        return AccountsModifiedAfter(moment.astimezone(UTC))
    raise MalformedQuery(f"sObject type '{sobject}' is not supported by this query endpoint")


def _expect_fields(fields: tuple[str, ...], expected: tuple[str, ...], sobject: str) -> None:
    if tuple(name.lower() for name in fields) != tuple(name.lower() for name in expected):
        raise MalformedQuery(f"select exactly {', '.join(expected)} from {sobject}")


def read_string_literal(text: str) -> str:
    """The value of a quoted SOQL string that must make up all of `text` (trailing blanks aside)."""
    if not text.startswith("'"):
        raise MalformedQuery("expected a quoted string")
    value: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in _ESCAPES:
                raise MalformedQuery(f"invalid escape sequence \\{escaped} in a string literal")
            value.append(_ESCAPES[escaped])
            index += 2
            continue
        if char == "'":
            rest = text[index + 1 :].strip()
            if rest:
                raise MalformedQuery(f"unexpected token: {rest.split()[0]!r}")
            return "".join(value)
        value.append(char)
        index += 1
    raise MalformedQuery("unterminated string literal")
