"""Where contract files are read from: the packaged directory, or an override directory on top of it.

`INTEGRATION_ASSETS_CONTRACTS_DIR` names a directory whose files replace the packaged files of the
same name (a reviewed new contract version, or a changed timing definition, tried before it is
committed); files it does not hold are read from the package. Tests use it to upgrade a contract or
change a timing definition without touching the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED_DIR = Path(__file__).parent
CONTRACTS_DIR_ENV = "INTEGRATION_ASSETS_CONTRACTS_DIR"


def override_dir() -> Path | None:
    value = os.environ.get(CONTRACTS_DIR_ENV, "").strip()
    return Path(value) if value else None


def contract_file(filename: str) -> Path:
    """The file to read for `filename` (e.g. "storefront_orders.yaml"): the override's, else the package's."""
    override = override_dir()
    if override is not None and (override / filename).is_file():
        return override / filename
    return PACKAGED_DIR / filename
