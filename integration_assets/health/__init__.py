"""Integration health: success metrics per source stream and per target, judged against the targets
in contracts/health.yaml (`measures` reads the warehouse, `judge` is pure)."""
