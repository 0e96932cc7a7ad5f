"""Strict reading of hand-written YAML (scenarios, the ownership registry, mapping tables).

Every accessor checks the type it expects and fails with `file: path: problem`, so a typo in a
config file is one clear sentence that names where to look, never a KeyError deep in the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def load_yaml_file(file: Path, error_class: type[Exception], what: str) -> Any:
    """The parsed YAML of `file`; a missing file or broken YAML is one `error_class` sentence
    naming the file (`what` says which kind of file was expected: "scenario", "ownership")."""
    try:
        # libyaml's safe loader when the wheel has it (it does on the platforms we lock): the same
        # safe subset as yaml.safe_load, several times faster on the 1,000-line ownership registry.
        return yaml.load(file.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise error_class(f"{file}: the {what} file does not exist") from None
    except yaml.YAMLError as error:
        raise error_class(f"{file}: not valid YAML: {error}") from None


class StrictYamlReader:
    """Typed access to parsed YAML; subclasses set `error_class` to their own ValueError."""

    error_class: type[ValueError] = ValueError

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, path: str, problem: str) -> ValueError:
        return self.error_class(f"{self.file}: {path or '<top level>'}: {problem}")

    def required(self, mapping: Mapping[str, Any], key: str, path: str) -> Any:
        """`mapping[key]`, which must be there and not null (`path.key: missing (required)`)."""
        if mapping.get(key) is None:
            raise self.fail(f"{path}.{key}" if path else key, "missing (required)")
        return mapping[key]

    def mapping(self, value: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__} {value!r:.80}")
        if allowed is not None:
            unknown = sorted(str(key) for key in value if key not in allowed)
            if unknown:
                raise self.fail(
                    f"{path}.{unknown[0]}" if path else unknown[0],
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )
        return value

    def listing(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be >= {minimum}, got {value}")
        return value

    def number(self, value: Any, path: str, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be >= {minimum}, got {value}")
        return float(value)
