"""Versioned data contracts per source stream (YAML beside this file)."""

from integration_assets.contracts.loader import Contract, FieldRule, load_contract

__all__ = ["Contract", "FieldRule", "load_contract"]
