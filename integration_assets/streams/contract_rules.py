"""Contract rules applied to one record: the first rule it breaks, named with its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integration_assets.contracts import Contract, FieldRule
from integration_assets.streams.money import MoneyFormatError, is_currency_code, to_minor_units
from integration_assets.streams.timestamps import TimestampFormatError, parse_utc


@dataclass(frozen=True)
class Violation:
    rule: str
    field: str
    message: str


class RuleBroken(Exception):
    def __init__(self, violation: Violation):
        super().__init__(violation.message)
        self.violation = violation


def break_rule(rule: str, field: str, message: str) -> None:
    raise RuleBroken(Violation(rule, field, message))


def check_field(record: dict, rule: FieldRule, currency: str | None, where: str = "") -> Any:
    label = f"{where}{rule.name}"
    # A contract that accepted a rename reads the new name first, then the old one (older records).
    for key in rule.source_names:
        if key in record:
            break
    else:
        key = None
    if key is None:
        if rule.required:
            break_rule("required_field_missing", label, f"required field '{label}' is missing")
        return None
    value = record[key]
    if value is None:
        if not rule.nullable:
            break_rule("required_field_null", label, f"required field '{label}' is null")
        return None
    if rule.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            break_rule("wrong_type", label, f"'{label}' must be an integer, got {value!r}")
        if rule.minimum is not None and value < rule.minimum:
            break_rule(
                "below_minimum", label, f"'{label}' must be >= {rule.minimum}, got {value!r}"
            )
    elif rule.type == "money":
        try:
            return to_minor_units(value, currency or "USD")
        except MoneyFormatError as error:
            break_rule("bad_money", label, f"'{label}': {error}")
    elif rule.type == "timestamp":
        try:
            return parse_utc(value)
        except TimestampFormatError as error:
            break_rule("bad_timestamp", label, f"'{label}': {error}")
    elif rule.type in ("minor_units", "unix_time"):
        if isinstance(value, bool) or not isinstance(value, int):
            break_rule(
                "wrong_type", label, f"'{label}' must be an integer ({rule.type}), got {value!r}"
            )
        if rule.type == "unix_time" and value < 0:
            break_rule("below_minimum", label, f"'{label}' must be a unix time, got {value!r}")
    elif rule.type == "currency_lower":
        if not (isinstance(value, str) and is_currency_code(value.upper()) and value.islower()):
            break_rule(
                "bad_currency", label, f"'{label}' must be a lowercase ISO 4217 code, got {value!r}"
            )
    elif rule.type == "currency":
        if not is_currency_code(value):
            break_rule("bad_currency", label, f"'{label}' must be an ISO 4217 code, got {value!r}")
    elif rule.type == "string" and not isinstance(value, str):
        break_rule("wrong_type", label, f"'{label}' must be a string, got {value!r}")
    elif rule.type == "list" and not isinstance(value, list):
        break_rule("wrong_type", label, f"'{label}' must be a list, got {type(value).__name__}")
    elif rule.type == "object" and not isinstance(value, dict):
        break_rule("wrong_type", label, f"'{label}' must be an object, got {type(value).__name__}")
    if rule.prefix is not None and not (isinstance(value, str) and value.startswith(rule.prefix)):
        break_rule(
            "wrong_prefix", label, f"'{label}' must start with '{rule.prefix}', got {value!r}"
        )
    if rule.allowed is not None and value not in rule.allowed:
        break_rule(
            "value_not_allowed", label, f"'{label}' = {value!r} is not one of {list(rule.allowed)}"
        )
    return value


def typed_fields(
    record: Any, contract: Contract, currency: str | None = None
) -> dict[str, Any] | Violation:
    """Every contract field of `record` typed (money in minor units, timestamps in UTC), or the rule it broke."""
    if not isinstance(record, dict):
        return Violation(
            "not_an_object", "", f"record must be a JSON object, got {type(record).__name__}"
        )
    try:
        return {rule.name: check_field(record, rule, currency) for rule in contract.fields}
    except RuleBroken as broken:
        return broken.violation
