"""Run Great Expectations 1.x expectations on a pandas DataFrame with an ephemeral context.

GX is imported lazily (it takes seconds to import) and one ephemeral context is reused per process,
with analytics and progress bars off so that check logs stay readable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    observed: dict[str, Any]

    def describe(self) -> str:
        where = f" on '{self.column}'" if self.column else ""
        unexpected = self.observed.get("unexpected_count")
        if unexpected is not None:
            return f"{self.expectation}{where}: {unexpected} of {self.observed.get('element_count')} unexpected"
        return f"{self.expectation}{where}: observed {self.observed.get('observed_value')}"


@cache
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("integration_assets")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    return batch_definition


def expectations():
    """The `great_expectations.expectations` module, imported on first use."""
    import great_expectations.expectations as gxe

    return gxe


# Counts (element_count, unexpected_count) and the observed value are what the checks report;
# SUMMARY would add value counts and index lists, which cost about as much again to compute.
RESULT_FORMAT = "BASIC"


def validate(frame: pd.DataFrame, suite: list[Any]) -> list[ExpectationOutcome]:
    """Every expectation of `suite` on `frame`, in one validation (one validator and one metric
    graph for the whole suite, rather than one per expectation); outcomes in the suite's order (an
    expectation GX could not even evaluate is reported first, failed)."""
    if not suite:
        return []
    from great_expectations.core import ExpectationSuite

    batch = _context().get_batch(batch_parameters={"dataframe": frame})
    # Copies, so that the suite leaves the caller's expectations as they were.
    checked = ExpectationSuite(
        name="integration_assets", expectations=[expectation.copy() for expectation in suite]
    )
    results = batch.validate(checked, result_format=RESULT_FORMAT).results
    outcomes = []
    for result in results:
        config = result.expectation_config
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=config.kwargs.get("column"),
                success=bool(result.success),
                observed={
                    k: v for k, v in dict(result.result).items() if not k.startswith("partial")
                },
            )
        )
    return outcomes
