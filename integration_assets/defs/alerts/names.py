"""Names of the alert sensors, the resource keys they need, and where they keep their state."""

RUN_FAILURE_SENSOR = "alert_on_run_failure"
FAILED_CHECKS_SENSOR = "alert_on_failed_checks"
DEAD_LETTERS_SENSOR = "alert_on_dead_letters"
SCHEMA_DRIFT_SENSOR = "alert_on_schema_drift"

# Resource keys the sensors take (bound in integration_assets/definitions.py).
ALERT_SINK = "alert_sink"
WAREHOUSE = "warehouse"

# The run-failure sensor's own cursor belongs to Dagster (which failed runs it has seen), so its
# flood-gate state lives in the instance's key-value store under this key.
RUN_FAILURE_FLOOD_STATE_KEY = "integration_assets/alerts/run_failure_flood_gate"

# A sensor tick must not wait two minutes for the DuckDB lock like a run does: try again next tick.
WAREHOUSE_LOCK_WAIT_SECONDS = 2.0

# Check evaluations read per run per tick; the rest are read on the next tick.
CHECK_EVENTS_PER_RUN = 500
