"""How the batch jobs execute: a process per step, forked from a server that imported the project once.

Dagster's multiprocess executor starts each step in a new process. With the default `spawn`, every
step imports Dagster, pandas, DuckDB and the project again (seconds each; a gate step also imports
Great Expectations, seconds more): on two cores that start-up, not the work, dominated an hourly run.
With `forkserver` and `preload_modules`, the run's forkserver imports them once and each step is a
fork of it (measured: a three-step warehouse_file_sync run 40-48 s -> 25-30 s from the CLI). The
steps remain separate processes (a crash stays in its step; pools and retries work as before).

The jobs take it as their default run config, which the launchpad can still change. Runs that the
automation sensor or the webhook sensor request use Dagster's default executor (the webhook runs
choose the in-process one: names.RUN_CONFIG).
"""

PRELOADED_MODULES = ["integration_assets.definitions"]
# The gates run Great Expectations: worth importing once for a job with several gate steps.
PRELOADED_WITH_GATES = [*PRELOADED_MODULES, "great_expectations"]


def forkserver_execution(preload_modules: list[str]) -> dict:
    """A job's default run config: the multiprocess executor forking steps from a preloaded server."""
    return {
        "execution": {
            "config": {
                "multiprocess": {
                    "start_method": {"forkserver": {"preload_modules": list(preload_modules)}}
                }
            }
        }
    }
