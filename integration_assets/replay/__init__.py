"""Replay: rebuild every core and delivery-intended state from the raw log alone, and prove it.

- `rebuild.replay(raw_dir, into)` materializes the project's own assets and checks (staging, gates,
  core, reporting) against a FRESH DuckDB file, reading the existing raw log read-only;
- `digest.state_digest(warehouse, intended)` is a sha256 per table and per delivery (target,
  entity) over what does not depend on when or in which run it was computed;
- `intended.plan_everything(...)` runs every delivery planner on a scratch copy (nothing enqueued);
- `dry_run.compare(...)` lists, per target, the documents a changed transformation would add or
  change compared with what the live outbox last intended, and those it would stop intending;
- `against_live.replay_against_live(...)` does all of it for `integration-assets replay`.

Nothing here writes into the raw log, the live warehouse or a target.
"""
