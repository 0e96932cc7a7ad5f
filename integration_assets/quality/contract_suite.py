"""Great Expectations suites generated from a stream contract, for the staged rows of a batch.

The contract is the one place a rule is written: each field the staged table holds (through
`columns`, contract field -> staged column) gets the expectations its rule implies:
- `required` (and not nullable) -> values not null;
- `allowed` -> values in the set (nulls are left to the rule above);
- `currency` -> an upper-case ISO 4217 code, `currency_lower` -> a lower-case one;
- `minimum` -> values at least the minimum;
- `prefix` -> values start with it;
and the staged key (the contract's key, its version field and the payload hash) is unique. The
contract's `line_item_fields` give expectations the same way, on a frame with a row per line item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from integration_assets.contracts import Contract, FieldRule
from integration_assets.quality import gx_runner

CURRENCY_PATTERNS = {"currency": r"^[A-Z]{3}$", "currency_lower": r"^[a-z]{3}$"}


def contract_suite(
    contract: Contract,
    columns: Mapping[str, str],
    key_columns: Sequence[str],
    line_item_columns: Mapping[str, str] | None = None,
) -> list[Any]:
    """The expectations `contract` implies for a staged frame with `columns` and `key_columns`; with
    `line_item_columns`, also those of its `line_item_fields` (a frame with one row per line item,
    such as a product's variants)."""
    gxe = gx_runner.expectations()
    suite: list[Any] = [
        gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key_columns))
        if len(key_columns) > 1
        else gxe.ExpectColumnValuesToBeUnique(column=key_columns[0])
    ]
    suite += rule_expectations(contract.fields, columns)
    if line_item_columns:
        suite += rule_expectations(contract.line_item_fields, line_item_columns)
    return suite


def rule_expectations(rules: Sequence[FieldRule], columns: Mapping[str, str]) -> list[Any]:
    """The expectations each rule implies on its staged column (rules without one are skipped)."""
    gxe = gx_runner.expectations()
    suite: list[Any] = []
    for rule in rules:
        column = columns.get(rule.name)
        if column is None:
            continue
        if rule.required and not rule.nullable:
            suite.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
        if rule.allowed is not None:
            suite.append(
                gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(rule.allowed))
            )
        if rule.type in CURRENCY_PATTERNS:
            suite.append(
                gxe.ExpectColumnValuesToMatchRegex(
                    column=column, regex=CURRENCY_PATTERNS[rule.type]
                )
            )
        if rule.minimum is not None:
            suite.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=rule.minimum))
        if rule.prefix is not None:
            suite.append(
                gxe.ExpectColumnValuesToMatchRegex(
                    column=column, regex=f"^{re.escape(rule.prefix)}"
                )
            )
    return suite
