"""Orders whose moments fall apart in time, added to the delivery tests' scenario (tiny + delivery).

Clock start 2026-11-20T09:00-05:00; the stacks are opened 12 hours in.
- PAID_NOT_SHIPPED: created +1h, paid +1h5m, shipped +20h (2026-11-21 local): paid but not shipped
  until the clock passes +20h.
- PENDING: created +2h, paid +16h: not paid when the stack opens.
"""

from pathlib import Path

import yaml

from integration_assets.contracts.location import PACKAGED_DIR

PAID_NOT_SHIPPED = 5200001000
PENDING = 5200002000
SHIPPED_LOCAL_DATE = "2026-11-21"
CREATED_LOCAL_DATE = "2026-11-20"

STORIES = [
    {
        "name": "paid_not_shipped",
        "id": PAID_NOT_SHIPPED,
        "customer": 207119551,
        "events": [
            {"at": "+1h", "type": "created", "lines": [{"sku": "IPOD2008RED", "quantity": 1}]},
            {"at": "+1h5m", "type": "paid"},
            {"at": "+20h", "type": "fulfilled"},
        ],
    },
    {
        "name": "pending",
        "id": PENDING,
        "customer": 300000002,
        "events": [
            {"at": "+2h", "type": "created", "lines": [{"sku": "CASE-SLIM", "quantity": 2}]},
            {"at": "+16h", "type": "paid"},
        ],
    },
]


def timing_scenario(folder: Path) -> Path:
    # Imported here: the delivery harness loads every Dagster definition, which the unit tests skip.
    from integration_assets_tests.delivery.conftest import delivery_scenario

    path = delivery_scenario(folder)
    raw = yaml.safe_load(path.read_text())
    raw["name"] = "timing"
    raw["stories"] += STORIES
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def write_timing(folder: Path, **moments: str) -> Path:
    """The packaged timing.yaml with some definitions' moments changed, written into `folder`."""
    raw = yaml.safe_load((PACKAGED_DIR / "timing.yaml").read_text())
    for name, moment in moments.items():
        raw["definitions"][name]["moment"] = moment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "timing.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
