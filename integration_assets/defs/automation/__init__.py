"""Declarative automation: the derived layers follow their upstream, gated by its blocking checks."""

import dagster as dg

from integration_assets.defs.automation.sensors import follow_upstream_changes

defs = dg.Definitions(sensors=[follow_upstream_changes])
