"""The timing definitions (timing.yaml): when an order is confirmed, its revenue recognised, its
fulfilment activated.

Strict for the same reason as the ownership registry: a typo in a moment would silently change when
invoices are written or stock is held, so anything the loader does not know fails, naming the file,
the key and the allowed values. Read through `contract_file`, so an override directory
(`INTEGRATION_ASSETS_CONTRACTS_DIR`) can try a changed definition before it is committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration_assets.contracts.location import contract_file
from integration_assets.contracts.ownership import Owner, named_owner, registry_owners
from integration_assets.streams.timing import CHOICES, MOMENTS, Timing
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

TIMING_FILENAME = "timing.yaml"


class TimingError(ValueError):
    """A timing file that does not say what it must; the message names the file and the key."""


@dataclass(frozen=True)
class TimingDefinition:
    name: str  # order_confirmed, revenue_recognised, fulfilment_activated
    moment: str
    owner: Owner
    description: str

    @property
    def moment_description(self) -> str:
        return MOMENTS[self.moment]


@dataclass(frozen=True)
class TimingDefinitions:
    source: Path
    version: int
    order_confirmed: TimingDefinition
    revenue_recognised: TimingDefinition
    fulfilment_activated: TimingDefinition

    @property
    def timing(self) -> Timing:
        """The chosen moments, as the pure functions in streams/timing.py take them."""
        return Timing(
            order_confirmed=self.order_confirmed.moment,
            revenue_recognised=self.revenue_recognised.moment,
            fulfilment_activated=self.fulfilment_activated.moment,
        )

    def as_metadata(self) -> dict[str, str | int]:
        """Which definitions were applied, for asset metadata (plain str/int values)."""
        metadata: dict[str, str | int] = {"timing_version": self.version}
        for name, moment in self.timing.as_dict().items():
            metadata[f"timing/{name}"] = moment
        return metadata


class _TimingReader(StrictYamlReader):
    error_class = TimingError


def load_timing(
    path: str | Path | None = None, owners: Mapping[str, Owner] | None = None
) -> TimingDefinitions:
    """Read and validate a timing file (default: `contract_file("timing.yaml")`).

    Owners are the ownership registry's (`contract_file("ownership.yaml")` unless given). Raises
    TimingError naming the file and the key.
    """
    file = Path(path) if path is not None else contract_file(TIMING_FILENAME)
    raw = load_yaml_file(file, TimingError, "timing")
    if owners is None:
        owners = registry_owners(file, TimingError)
    reader = _TimingReader(file)
    top = reader.mapping(raw, "", {"version", "definitions"})
    version = reader.integer(reader.required(top, "version", ""), "version", minimum=1)
    specs = reader.mapping(reader.required(top, "definitions", ""), "definitions", set(CHOICES))
    definitions = {
        name: _definition(reader, name, reader.required(specs, name, "definitions"), owners)
        for name in CHOICES
    }
    return TimingDefinitions(source=file, version=version, **definitions)


def _definition(
    reader: _TimingReader, name: str, raw: Any, owners: Mapping[str, Owner]
) -> TimingDefinition:
    path = f"definitions.{name}"
    spec = reader.mapping(raw, path, {"moment", "owner", "description"})
    moment = reader.string(reader.required(spec, "moment", path), f"{path}.moment")
    if moment not in CHOICES[name]:
        raise reader.fail(
            f"{path}.moment", f"unknown moment {moment!r} (allowed: {', '.join(CHOICES[name])})"
        )
    owner = named_owner(reader, spec, path, owners)
    return TimingDefinition(
        name=name,
        moment=moment,
        owner=owner,
        description=reader.string(
            reader.required(spec, "description", path), f"{path}.description"
        ),
    )
