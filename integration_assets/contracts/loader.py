"""Load a stream contract: fields, types, required, allowed values, keys, owners, batch rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from integration_assets.contracts.location import PACKAGED_DIR, contract_file

CONTRACTS_DIR = PACKAGED_DIR
FIELD_TYPES = {
    "integer",
    "string",
    "timestamp",
    "money",
    "currency",
    "list",
    "object",
    "boolean",
    "minor_units",
    "currency_lower",
    "unix_time",
}


class ContractError(ValueError):
    """A contract file that does not say what it must."""


@dataclass(frozen=True)
class FieldRule:
    name: str
    type: str
    required: bool = False
    nullable: bool = True
    allowed: tuple[object, ...] | None = None
    minimum: float | None = None
    pii: bool = False
    prefix: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    stream: str
    system_of_record: str
    owner: str
    key: tuple[str, ...]
    version_field: str
    fields: tuple[FieldRule, ...]
    line_item_fields: tuple[FieldRule, ...]
    batch_rules: dict[str, float] = field(default_factory=dict)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fields if rule.required)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def _field_rules(raw: dict, where: str) -> tuple[FieldRule, ...]:
    rules = []
    for name, spec in (raw or {}).items():
        spec = spec or {}
        field_type = spec.get("type")
        if field_type not in FIELD_TYPES:
            raise ContractError(
                f"{where}.{name}: type must be one of {sorted(FIELD_TYPES)}, got {field_type!r}"
            )
        allowed = spec.get("allowed")
        rules.append(
            FieldRule(
                name=name,
                type=field_type,
                required=bool(spec.get("required", False)),
                nullable=bool(spec.get("nullable", not spec.get("required", False))),
                allowed=tuple(allowed) if allowed is not None else None,
                minimum=spec.get("minimum"),
                pii=bool(spec.get("pii", False)),
                prefix=spec.get("prefix"),
                description=str(spec.get("description", "")),
            )
        )
    return tuple(rules)


def load_contract(name: str) -> Contract:
    """The contract `name` as it stands now (the override directory's file if it holds one)."""
    path = contract_file(f"{name}.yaml")
    return _load_contract_file(path, path.stat().st_mtime_ns)


@cache
def _load_contract_file(path: Path, _mtime_ns: int) -> Contract:
    raw = yaml.safe_load(path.read_text())
    missing = [
        k
        for k in ("name", "version", "stream", "system_of_record", "owner", "key", "fields")
        if k not in raw
    ]
    if missing:
        raise ContractError(f"{path}: missing keys {missing}")
    return Contract(
        name=raw["name"],
        version=int(raw["version"]),
        stream=raw["stream"],
        system_of_record=raw["system_of_record"],
        owner=raw["owner"],
        key=tuple(raw["key"]),
        version_field=raw.get("version_field", "updated_at"),
        fields=_field_rules(raw["fields"], f"{path.name}:fields"),
        line_item_fields=_field_rules(
            raw.get("line_item_fields", {}), f"{path.name}:line_item_fields"
        ),
        batch_rules={k: float(v) for k, v in (raw.get("batch_rules") or {}).items()},
    )
