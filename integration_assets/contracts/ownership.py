"""The ownership registry (ownership.yaml): which system wins for each attribute, and who answers for it.

It is a file the code reads, not a wiki page: the customer golden record takes its precedence from it,
escalations of failed or held writes take their owner from it, and a test fails when an attribute has
no system or owner. The loader is strict for the same reason: a typo (an unknown system, an owner key
that does not exist) would otherwise silently change who wins a merge or who gets paged, so it fails
with the file and the path inside it (`entities.customer.attributes.email.owner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.contracts.location import contract_file
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

OWNERSHIP_FILE = CONTRACTS_DIR / "ownership.yaml"


class OwnershipError(ValueError):
    """An ownership file that does not say what it must; the message names the file and the path."""


class UnknownOwnershipEntry(KeyError):
    """A lookup of an entity, attribute or delivery the registry does not define."""

    def __str__(self) -> str:
        # KeyError quotes its message; this one is a sentence for an operator.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Owner:
    key: str
    name: str
    email: str
    slack: str


@dataclass(frozen=True)
class Attribute:
    name: str
    system: str
    owner: Owner
    fallback: tuple[str, ...]
    description: str
    # The columns that hold the attribute; an address is one attribute over several columns, all taken
    # from the same system so that a street from one system never meets a city from another.
    columns: tuple[str, ...]

    @property
    def precedence(self) -> tuple[str, ...]:
        return (self.system, *self.fallback)


@dataclass(frozen=True)
class Entity:
    name: str
    owner: Owner
    description: str
    key: tuple[str, ...]
    attributes: Mapping[str, Attribute]
    tables: tuple[str, ...] = ()  # the core tables whose rows are this entity (core.orders_current)

    def columns(self) -> tuple[str, ...]:
        return tuple(
            column for attribute in self.attributes.values() for column in attribute.columns
        )


# `values_from: golden_record`: each value from the system core.customers.attribute_sources names.
GOLDEN_RECORD = "golden_record"


@dataclass(frozen=True)
class DeliveryField:
    """One payload field of a write, and the registry attributes whose values it carries."""

    name: str
    carries: tuple[tuple[str, str], ...]  # (entity, attribute)
    values_from: str  # a system, or GOLDEN_RECORD
    derived: str | None  # how the value is computed from the attribute(s); None: it is the value

    def describe(self) -> str:
        return ", ".join(f"{entity}.{attribute}" for entity, attribute in self.carries)


@dataclass(frozen=True)
class Delivery:
    """What one outbox (target, entity) writes: its registry entity, and every field it may carry."""

    target: str  # the outbox target (wms)
    system: str  # the registry system it is (warehouse)
    outbox_entity: str
    entity: str
    values_from: str
    fields: Mapping[str, DeliveryField]

    @property
    def where(self) -> str:
        return f"deliveries.{self.target}.{self.outbox_entity}"


@dataclass(frozen=True)
class OwnershipRegistry:
    source: Path
    owners: Mapping[str, Owner]
    systems: tuple[str, ...]
    entities: Mapping[str, Entity]
    deliveries: Mapping[tuple[str, str], str]
    delivery_specs: Mapping[tuple[str, str], Delivery]
    lineage_columns: Mapping[str, str]  # column -> what it records
    target_systems: Mapping[str, str]  # outbox target (wms) -> registry system (warehouse)
    # system -> who answers for the connection to it (credential, API version, endpoints)
    system_owners: Mapping[str, Owner]

    def entity(self, entity: str) -> Entity:
        try:
            return self.entities[entity]
        except KeyError:
            raise UnknownOwnershipEntry(
                f"{self.source}: no entity {entity!r} (known: {', '.join(self.entities)})"
            ) from None

    def attribute(self, entity: str, attribute: str) -> Attribute:
        found = self.entity(entity).attributes.get(attribute)
        if found is None:
            raise UnknownOwnershipEntry(
                f"{self.source}: entity {entity!r} has no attribute {attribute!r} "
                f"(known: {', '.join(self.entity(entity).attributes)})"
            )
        return found

    def attributes(self, entity: str) -> tuple[str, ...]:
        """The entity's attribute names, in file order."""
        return tuple(self.entity(entity).attributes)

    def columns(self, entity: str) -> tuple[str, ...]:
        """Every column the entity's attributes span, in file order."""
        return tuple(
            column
            for attribute in self.entity(entity).attributes.values()
            for column in attribute.columns
        )

    def attribute_of_column(self, entity: str, column: str) -> Attribute:
        for attribute in self.entity(entity).attributes.values():
            if column in attribute.columns:
                return attribute
        raise UnknownOwnershipEntry(
            f"{self.source}: no attribute of {entity!r} holds the column {column!r}"
        )

    def system_of_target(self, target: str) -> str:
        """The registry system an outbox target writes into (wms -> warehouse)."""
        return self.target_systems.get(target, target)

    def system_owner(self, system: str) -> Owner:
        """Who answers for the connection to `system` (a registry system, or an outbox target or
        audit-trail name such as wms); UnknownOwnershipEntry for a system the registry lacks."""
        found = self.system_owners.get(self.system_of_target(system))
        if found is None:
            raise UnknownOwnershipEntry(
                f"{self.source}: no system {system!r} (known: {', '.join(self.systems)})"
            )
        return found

    def system_of_record(self, entity: str, attribute: str) -> str:
        return self.attribute(entity, attribute).system

    def owner(self, entity: str, attribute: str) -> Owner:
        return self.attribute(entity, attribute).owner

    def precedence(self, entity: str, attribute: str) -> tuple[str, ...]:
        """The system of record first, then the fallbacks in the order they are tried."""
        return self.attribute(entity, attribute).precedence

    def entity_owner(self, entity: str) -> Owner:
        """The steward of an entity: who is escalated to when one of its records needs a person."""
        return self.entity(entity).owner

    def escalation_owner(self, target: str, entity: str) -> Owner:
        """Who answers for an outbox write (target, entity): the owner of the registry entity it delivers."""
        registry_entity = self.deliveries.get((target, entity))
        if registry_entity is None:
            known = ", ".join(f"{t}/{e}" for t, e in self.deliveries)
            raise UnknownOwnershipEntry(
                f"{self.source}: no delivery {target}/{entity} in `deliveries` (known: {known})"
            )
        return self.entity_owner(registry_entity)

    def delivery(self, target: str, entity: str) -> Delivery:
        """What a write to (target, entity) may carry; UnknownOwnershipEntry when it is not declared."""
        found = self.delivery_specs.get((target, entity))
        if found is None:
            known = ", ".join(f"{t}/{e}" for t, e in self.delivery_specs)
            raise UnknownOwnershipEntry(
                f"{self.source}: no delivery {target}/{entity} in `deliveries` (known: {known})"
            )
        return found

    def entity_of_table(self, table: str) -> Entity | None:
        for entity in self.entities.values():
            if table in entity.tables:
                return entity
        return None

    def coverage_gaps(self, tables: Mapping[str, Sequence[str]]) -> list[str]:
        """Each core column that no attribute holds (and is not lineage), each table no entity claims.

        `tables`: table name (`core.orders_current`) -> its columns, as the warehouse has them.
        An empty list means every core column has an attribute, hence a system of record and an owner.
        """
        gaps = []
        for table, columns in sorted(tables.items()):
            entity = self.entity_of_table(table)
            if entity is None:
                gaps.append(
                    f"{table}: no entity lists this table under `tables` in {self.source.name}"
                )
                continue
            held = set(entity.columns()) | set(self.lineage_columns)
            gaps.extend(
                f"{table}.{column}: no attribute of entity {entity.name!r} holds it, and it is "
                f"not a lineage column: add it to entities.{entity.name}.attributes (with its "
                f"system and owner) or to lineage_columns"
                for column in columns
                if column not in held
            )
        return gaps


class _OwnershipReader(StrictYamlReader):
    """The scenario file's strict reader, failing with OwnershipError instead of ScenarioError."""

    def fail(self, path: str, problem: str) -> OwnershipError:
        return OwnershipError(f"{self.file}: {path or '<top level>'}: {problem}")

    def key_name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"names must be non-empty strings, got {value!r}")
        return value


def registry_owners(file: Path, error_class: type[ValueError]) -> Mapping[str, Owner]:
    """The registry's owners, for a definitions file (`file`) that names them; a registry that does
    not load is `error_class`, naming `file`."""
    try:
        return load_ownership(contract_file("ownership.yaml")).owners
    except OwnershipError as error:
        raise error_class(f"{file}: the owners cannot be read: {error}") from None


def named_owner(
    reader: StrictYamlReader, spec: Mapping[str, Any], path: str, owners: Mapping[str, Owner]
) -> Owner:
    """The owner `spec` names under `owner` (a key of the registry's owners), required."""
    key = reader.string(reader.required(spec, "owner", path), f"{path}.owner")
    if key not in owners:
        raise reader.fail(
            f"{path}.owner",
            f"unknown owner {key!r} (the ownership registry's owners: {', '.join(owners)})",
        )
    return owners[key]


def load_ownership(path: str | Path | None = None) -> OwnershipRegistry:
    """Read and validate an ownership file (default: the registry in force, see contracts/location.py).

    Raises OwnershipError naming the file and the path inside it.
    """
    file = Path(path) if path is not None else contract_file("ownership.yaml")
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise OwnershipError(f"{file}: the ownership file does not exist") from None
    # Every delivery asset and planner asks for the registry on every run: parse each version once.
    return _load_ownership_file(file, stat.st_mtime_ns, stat.st_size)


@cache
def _load_ownership_file(file: Path, _mtime_ns: int, _size: int) -> OwnershipRegistry:
    raw = load_yaml_file(file, OwnershipError, "ownership")
    reader = _OwnershipReader(file)
    top = reader.mapping(
        raw, "", {"version", "owners", "systems", "entities", "deliveries", "lineage_columns"}
    )
    reader.integer(reader.required(top, "version", ""), "version", minimum=1)
    owners = _owners(reader, reader.required(top, "owners", ""))
    systems, target_systems, system_owners = _systems(
        reader, reader.required(top, "systems", ""), owners
    )
    entities = _entities(reader, reader.required(top, "entities", ""), owners, systems)
    specs = _deliveries(
        reader, reader.required(top, "deliveries", ""), entities, systems, target_systems
    )
    lineage = {
        reader.key_name(column, "lineage_columns"): reader.string(
            description, f"lineage_columns.{column}"
        )
        for column, description in reader.mapping(
            top.get("lineage_columns") or {}, "lineage_columns"
        ).items()
    }
    return OwnershipRegistry(
        source=file,
        owners=MappingProxyType(owners),
        systems=systems,
        entities=MappingProxyType(entities),
        deliveries=MappingProxyType({pair: spec.entity for pair, spec in specs.items()}),
        delivery_specs=MappingProxyType(specs),
        lineage_columns=MappingProxyType(lineage),
        target_systems=MappingProxyType(target_systems),
        system_owners=MappingProxyType(system_owners),
    )


def _owners(reader: _OwnershipReader, raw: Any) -> dict[str, Owner]:
    owners = {}
    for key, spec in reader.mapping(raw, "owners").items():
        path = f"owners.{reader.key_name(key, 'owners')}"
        spec = reader.mapping(spec, path, {"name", "email", "slack"})
        email = reader.string(reader.required(spec, "email", path), f"{path}.email")
        if "@" not in email.strip("@"):
            raise reader.fail(f"{path}.email", f"not an email address: {email!r}")
        owners[key] = Owner(
            key=key,
            name=reader.string(reader.required(spec, "name", path), f"{path}.name"),
            email=email,
            slack=reader.string(reader.required(spec, "slack", path), f"{path}.slack"),
        )
    if not owners:
        raise reader.fail("owners", "at least one owner is required")
    return owners


def _systems(
    reader: _OwnershipReader, raw: Any, owners: dict[str, Owner]
) -> tuple[tuple[str, ...], dict[str, str], dict[str, Owner]]:
    """The systems, outbox target name -> system (a system is its own target unless it says), and
    system -> the owner who answers for the connection to it (required)."""
    systems = []
    targets = {}
    system_owners = {}
    for name, spec in reader.mapping(raw, "systems").items():
        path = f"systems.{reader.key_name(name, 'systems')}"
        spec = reader.mapping(spec, path, {"description", "outbox_target", "owner"})
        reader.string(reader.required(spec, "description", path), f"{path}.description")
        owner_key = _known(
            reader, reader.required(spec, "owner", path), f"{path}.owner", owners, "owner"
        )
        system_owners[name] = owners[owner_key]
        systems.append(name)
        target = spec.get("outbox_target")
        targets[name if target is None else reader.string(target, f"{path}.outbox_target")] = name
    if not systems:
        raise reader.fail("systems", "at least one system is required")
    return tuple(systems), targets, system_owners


def _known(reader: _OwnershipReader, value: Any, path: str, known: Mapping | tuple, what: str):
    name = reader.string(value, path)
    if name not in known:
        raise reader.fail(path, f"unknown {what} {name!r} (known: {', '.join(known)})")
    return name


def _entities(
    reader: _OwnershipReader, raw: Any, owners: dict[str, Owner], systems: tuple[str, ...]
) -> dict[str, Entity]:
    entities = {}
    table_entity: dict[str, str] = {}
    for name, spec in reader.mapping(raw, "entities").items():
        path = f"entities.{reader.key_name(name, 'entities')}"
        spec = reader.mapping(spec, path, {"owner", "description", "key", "attributes", "tables"})
        owner_key = _known(
            reader, reader.required(spec, "owner", path), f"{path}.owner", owners, "owner"
        )
        attributes = _attributes(
            reader, reader.required(spec, "attributes", path), f"{path}.attributes", owners, systems
        )
        key = []
        for index, part in enumerate(
            reader.listing(reader.required(spec, "key", path), f"{path}.key")
        ):
            key.append(
                _known(reader, part, f"{path}.key[{index}]", tuple(attributes), "key attribute")
            )
        if not key:
            raise reader.fail(f"{path}.key", "name at least one key attribute")
        tables = []
        for index, table in enumerate(reader.listing(spec.get("tables"), f"{path}.tables")):
            where = f"{path}.tables[{index}]"
            table = reader.string(table, where)
            if not table.startswith("core.") or table in table_entity:
                problem = (
                    f"already listed by entity {table_entity[table]!r}"
                    if table in table_entity
                    else "name a core table, like core.orders_current"
                )
                raise reader.fail(where, f"{table!r}: {problem}")
            table_entity[table] = name
            tables.append(table)
        entities[name] = Entity(
            name=name,
            owner=owners[owner_key],
            description=reader.string(
                reader.required(spec, "description", path), f"{path}.description"
            ),
            key=tuple(key),
            attributes=MappingProxyType(attributes),
            tables=tuple(tables),
        )
    if not entities:
        raise reader.fail("entities", "at least one entity is required")
    return entities


def _attributes(
    reader: _OwnershipReader,
    raw: Any,
    path: str,
    owners: dict[str, Owner],
    systems: tuple[str, ...],
) -> dict[str, Attribute]:
    attributes: dict[str, Attribute] = {}
    column_owner: dict[str, str] = {}
    for name, spec in reader.mapping(raw, path).items():
        where = f"{path}.{reader.key_name(name, path)}"
        spec = reader.mapping(
            spec, where, {"system", "owner", "fallback", "description", "columns"}
        )
        system = _known(
            reader, reader.required(spec, "system", where), f"{where}.system", systems, "system"
        )
        owner_key = _known(
            reader, reader.required(spec, "owner", where), f"{where}.owner", owners, "owner"
        )
        fallback: list[str] = []
        for index, value in enumerate(reader.listing(spec.get("fallback"), f"{where}.fallback")):
            item = _known(reader, value, f"{where}.fallback[{index}]", systems, "system")
            if item == system or item in fallback:
                raise reader.fail(
                    f"{where}.fallback[{index}]",
                    f"{item!r} is already in the precedence ({', '.join([system, *fallback])})",
                )
            fallback.append(item)
        columns = [
            reader.string(value, f"{where}.columns[{index}]")
            for index, value in enumerate(reader.listing(spec.get("columns"), f"{where}.columns"))
        ] or [name]
        for index, column in enumerate(columns):
            if column in column_owner:
                raise reader.fail(
                    f"{where}.columns[{index}]",
                    f"column {column!r} already belongs to attribute {column_owner[column]!r}",
                )
            column_owner[column] = name
        attributes[name] = Attribute(
            name=name,
            system=system,
            owner=owners[owner_key],
            fallback=tuple(fallback),
            description=reader.string(
                reader.required(spec, "description", where), f"{where}.description"
            ),
            columns=tuple(columns),
        )
    if not attributes:
        raise reader.fail(path, "at least one attribute is required")
    return attributes


def _deliveries(
    reader: _OwnershipReader,
    raw: Any,
    entities: dict[str, Entity],
    systems: tuple[str, ...],
    target_systems: dict[str, str],
) -> dict[tuple[str, str], Delivery]:
    deliveries = {}
    for target, by_entity in reader.mapping(raw, "deliveries").items():
        path = f"deliveries.{reader.key_name(target, 'deliveries')}"
        system = _known(reader, target, path, target_systems, "outbox target")
        for outbox_entity, spec in reader.mapping(by_entity, path).items():
            where = f"{path}.{reader.key_name(outbox_entity, path)}"
            spec = reader.mapping(spec, where, {"entity", "values_from", "fields"})
            entity = _known(
                reader,
                reader.required(spec, "entity", where),
                f"{where}.entity",
                entities,
                "entity",
            )
            values_from = _known(
                reader,
                reader.required(spec, "values_from", where),
                f"{where}.values_from",
                (GOLDEN_RECORD, *systems),
                "source",
            )
            fields = {}
            for field_name, field_spec in reader.mapping(
                reader.required(spec, "fields", where), f"{where}.fields"
            ).items():
                field_path = f"{where}.fields.{reader.key_name(field_name, where)}"
                fields[field_name] = _delivery_field(
                    reader, field_name, field_spec, field_path, values_from, entities, systems
                )
            if not fields:
                raise reader.fail(f"{where}.fields", "declare at least one field")
            deliveries[(target, outbox_entity)] = Delivery(
                target, system, outbox_entity, entity, values_from, MappingProxyType(fields)
            )
    return deliveries


def _delivery_field(
    reader: _OwnershipReader,
    name: str,
    spec: Any,
    path: str,
    values_from: str,
    entities: dict[str, Entity],
    systems: tuple[str, ...],
) -> DeliveryField:
    derived = None
    source = values_from
    carries_path = path
    if isinstance(spec, Mapping):
        spec = reader.mapping(spec, path, {"carries", "from", "derived"})
        if spec.get("from") is not None:
            source = _known(reader, spec["from"], f"{path}.from", systems, "system")
        if spec.get("derived") is not None:
            derived = reader.string(spec["derived"], f"{path}.derived")
        carries_path = f"{path}.carries"
        spec = reader.required(spec, "carries", path)
    references = [spec] if isinstance(spec, str) else reader.listing(spec, carries_path)
    carries = []
    for index, reference in enumerate(references):
        where = carries_path if isinstance(spec, str) else f"{carries_path}[{index}]"
        entity, _, attribute = reader.string(reference, where).partition(".")
        if entity not in entities or attribute not in entities[entity].attributes:
            raise reader.fail(
                where, f"{reference!r} is not a registry attribute (write entity.attribute)"
            )
        if source == GOLDEN_RECORD and entity != "customer":
            raise reader.fail(
                where,
                f"{reference!r}: the golden record (core.customers) holds customer attributes "
                "only; say where this value is read with `from:`",
            )
        carries.append((entity, attribute))
    if not carries:
        raise reader.fail(carries_path, "name the attribute(s) the field carries")
    return DeliveryField(name, tuple(carries), source, derived)
