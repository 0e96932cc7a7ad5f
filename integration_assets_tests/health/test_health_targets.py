"""contracts/health.yaml: every metric has a target, overrides are per scope, mistakes are named."""

from __future__ import annotations

import pytest
import yaml

from integration_assets.contracts.health import HealthTargetsError, load_health_targets
from integration_assets.contracts.location import PACKAGED_DIR
from integration_assets.health.metrics import METRICS


def write(tmp_path, change) -> str:
    data = yaml.safe_load((PACKAGED_DIR / "health.yaml").read_text())
    change(data)
    path = tmp_path / "health.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_the_packaged_targets_cover_every_metric():
    targets = load_health_targets()
    assert set(targets.defaults) == set(METRICS)
    assert targets.target("freshness_hours", "source:storefront/orders").value == 2
    # Overrides: a number replaces the target there, null leaves it unjudged.
    assert targets.target("freshness_hours", "source:warehouse/files").value == 8
    assert targets.target("freshness_hours", "source:payments/disputes") is None
    assert targets.target("reconciliation_match_rate", "source:payments/charges").met(0.995)
    assert not targets.target("reconciliation_match_rate", "source:payments/charges").met(0.9)
    assert targets.target("dead_letters_open", "target:crm").met(0)
    assert not targets.target("dead_letters_open", "target:crm").met(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["metrics"].pop("error_rate"), "metrics.error_rate: missing"),
        (
            lambda d: d["metrics"].update(uptime={"max": 1, "description": "x"}),
            "metrics.uptime: unknown key",
        ),
        (
            lambda d: d["metrics"]["freshness_hours"].update(min=1),
            "metrics.freshness_hours.min: unknown key",
        ),
        (lambda d: d["metrics"]["error_rate"].update(max=5), "a rate is between 0 and 1"),
        (
            lambda d: d["overrides"].update({"warehouse": {"error_rate": 0.2}}),
            "a scope is source:<stream>",
        ),
        (
            lambda d: d["overrides"].update({"source:storefront/orders": {"dead_letters_open": 3}}),
            "overrides.source:storefront/orders.dead_letters_open: unknown key",
        ),
        (lambda d: d.update(window_hours=0), "window_hours: must be >= 1"),
    ],
)
def test_mistakes_fail_naming_the_key(tmp_path, change, message):
    path = write(tmp_path, change)
    with pytest.raises(HealthTargetsError) as raised:
        load_health_targets(path)
    assert message in str(raised.value)
    assert path in str(raised.value)
