"""Versioned data contracts per source stream (YAML beside this file)."""

from integration_assets.contracts.loader import (
    Contract,
    ContractChange,
    ContractError,
    FieldRule,
    load_contract,
)

__all__ = ["Contract", "ContractChange", "ContractError", "FieldRule", "load_contract"]
