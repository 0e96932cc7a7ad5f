"""Asset key, check name and job of the source watch (ops/source_signals)."""

from datetime import timedelta

import dagster as dg

SOURCE_SIGNALS = dg.AssetKey(["ops", "source_signals"])
CHECK_NO_OPEN_SOURCE_SIGNALS = "no_open_source_signals"
WATCH_JOB = "watch_sources"
# How far back the audit trail is read for each endpoint's latest answer: an endpoint not called
# in that long has no say (a signal on it clears).
LOOKBACK = timedelta(days=7)
# The direction and methods of the audit lines the watch writes for its own signals.
RAISED = "RAISED"
CLEARED = "CLEARED"
