"""Where the embedded default keeps its state, and the environment a Dagster process needs for it."""

from __future__ import annotations

import os

from integration_assets.storage.resources import PROJECT_ROOT


def dagster_environment(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ plus DAGSTER_HOME (the folder of dagster.yaml, whose storage paths are relative to it)."""
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    env.update(overrides or {})
    return env


def apply_dagster_environment() -> None:
    """Set DAGSTER_HOME and work from the project root, where dagster.yaml's relative paths point."""
    os.environ.update(dagster_environment())
    if os.environ["DAGSTER_HOME"] == str(PROJECT_ROOT):
        os.chdir(PROJECT_ROOT)
