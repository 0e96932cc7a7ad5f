"""Load a stream contract: fields, types, required, allowed values, keys, owners, batch rules, history.

A contract is versioned: `version` is the version in force and `history` lists every version with
its date, what changed and who reviewed it. A field can say where the source now sends it
(`source: total_price_amount`): staging then reads the value under that name (and still under the
contract's own name, for records from before the change), while raw keeps the payload verbatim.
`known_fields` lists top-level fields the source sends that staging does not type: reviewed and
expected, so they are not schema drift. Every file is read strictly: an unknown key, a wrong type or
a history that does not end at `version` is one ContractError naming the file and the path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from integration_assets.contracts.location import PACKAGED_DIR, contract_file
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

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
CONTRACT_KEYS = {
    "name",
    "version",
    "stream",
    "system_of_record",
    "owner",
    "key",
    "version_field",
    "fields",
    "line_item_fields",
    "batch_rules",
    "history",
    "known_fields",
}
REQUIRED_CONTRACT_KEYS = ("name", "version", "stream", "system_of_record", "owner", "key", "fields")
FIELD_KEYS = {
    "type",
    "required",
    "nullable",
    "allowed",
    "minimum",
    "pii",
    "prefix",
    "description",
    "source",
}
HISTORY_KEYS = {"version", "date", "change", "by"}


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
    # Where the source now sends this field (a rename the contract accepted); None: under `name`.
    source: str | None = None

    @property
    def source_names(self) -> tuple[str, ...]:
        """The payload keys this field is read from, the preferred one first."""
        return (self.source, self.name) if self.source else (self.name,)


@dataclass(frozen=True)
class ContractChange:
    version: int
    date: str
    change: str
    by: str


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
    history: tuple[ContractChange, ...] = ()
    known_fields: tuple[str, ...] = ()

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fields if rule.required)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def field_rule(self, name: str) -> FieldRule:
        return next(rule for rule in self.fields if rule.name == name)


class _ContractReader(StrictYamlReader):
    error_class = ContractError

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def field_rules(self, raw: Any, path: str) -> tuple[FieldRule, ...]:
        rules = []
        for name, spec in self.mapping(raw or {}, path).items():
            where = f"{path}.{name}"
            spec = self.mapping(spec or {}, where, FIELD_KEYS)
            field_type = spec.get("type")
            if field_type not in FIELD_TYPES:
                raise self.fail(
                    f"{where}.type", f"must be one of {sorted(FIELD_TYPES)}, got {field_type!r}"
                )
            required = self.boolean(spec.get("required", False), f"{where}.required")
            allowed = spec.get("allowed")
            minimum = spec.get("minimum")
            rules.append(
                FieldRule(
                    name=self.string(name, where),
                    type=field_type,
                    required=required,
                    nullable=self.boolean(spec.get("nullable", not required), f"{where}.nullable"),
                    allowed=None
                    if allowed is None
                    else tuple(self.listing(allowed, f"{where}.allowed")),
                    minimum=None if minimum is None else self.number(minimum, f"{where}.minimum"),
                    pii=self.boolean(spec.get("pii", False), f"{where}.pii"),
                    prefix=None
                    if spec.get("prefix") is None
                    else self.string(spec["prefix"], f"{where}.prefix"),
                    description=str(spec.get("description", "")),
                    source=None
                    if spec.get("source") is None
                    else self.string(spec["source"], f"{where}.source"),
                )
            )
        return tuple(rules)

    def history(self, raw: Any, version: int) -> tuple[ContractChange, ...]:
        changes = []
        for index, entry in enumerate(self.listing(raw, "history")):
            where = f"history[{index}]"
            entry = self.mapping(entry, where, HISTORY_KEYS)
            missing = sorted(HISTORY_KEYS - set(entry))
            if missing:
                raise self.fail(where, f"missing {', '.join(missing)}")
            changes.append(
                ContractChange(
                    version=self.integer(entry["version"], f"{where}.version", minimum=1),
                    date=str(entry["date"]),
                    change=self.string(entry["change"], f"{where}.change"),
                    by=self.string(entry["by"], f"{where}.by"),
                )
            )
        versions = [change.version for change in changes]
        if versions and (versions != sorted(set(versions)) or versions[-1] != version):
            raise self.fail(
                "history",
                f"versions must ascend and end at the contract's version {version}, got {versions}",
            )
        return tuple(changes)

    def contract(self, raw: Any) -> Contract:
        raw = self.mapping(raw, "", CONTRACT_KEYS)
        missing = [key for key in REQUIRED_CONTRACT_KEYS if key not in raw]
        if missing:
            raise self.fail("", f"missing keys {missing}")
        version = self.integer(raw["version"], "version", minimum=1)
        fields = self.field_rules(raw["fields"], "fields")
        sources = [rule.source for rule in fields if rule.source]
        clash = sorted(set(sources) & {rule.name for rule in fields})
        if clash or len(sources) != len(set(sources)):
            raise self.fail("fields", f"a source name is used twice or is another field: {clash}")
        batch_rules = self.mapping(raw.get("batch_rules") or {}, "batch_rules")
        return Contract(
            name=self.string(raw["name"], "name"),
            version=version,
            stream=self.string(raw["stream"], "stream"),
            system_of_record=self.string(raw["system_of_record"], "system_of_record"),
            owner=self.string(raw["owner"], "owner"),
            key=tuple(
                self.string(item, f"key[{i}]")
                for i, item in enumerate(self.listing(raw["key"], "key"))
            ),
            version_field=self.string(raw.get("version_field", "updated_at"), "version_field"),
            fields=fields,
            line_item_fields=self.field_rules(raw.get("line_item_fields"), "line_item_fields"),
            batch_rules={
                str(k): self.number(v, f"batch_rules.{k}") for k, v in batch_rules.items()
            },
            history=self.history(raw.get("history"), version),
            known_fields=tuple(
                self.string(item, f"known_fields[{i}]")
                for i, item in enumerate(self.listing(raw.get("known_fields"), "known_fields"))
            ),
        )


def load_contract(name: str) -> Contract:
    """The contract `name` as it stands now (the override directory's file if it holds one)."""
    path = contract_file(f"{name}.yaml")
    return _load_contract_file(path, path.stat().st_mtime_ns)


def load_contract_file(path: Path) -> Contract:
    """The contract in `path`, read strictly (tests and `integration-assets` checks of a new version)."""
    return _ContractReader(path).contract(load_yaml_file(path, ContractError, "contract"))


@cache
def _load_contract_file(path: Path, _mtime_ns: int) -> Contract:
    return load_contract_file(path)
