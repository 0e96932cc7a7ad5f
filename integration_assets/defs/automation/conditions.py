"""When an asset rebuilds by itself: after its upstream changed, and only if upstream passed its gates.

`eager()` alone looks at whether a dependency updated, not at whether that update passed its blocking
checks: a staged batch whose gate failed in one run would still be followed in the next evaluation.
`all_deps_blocking_checks_passed()` closes that gap across runs (within one run, Dagster already skips
the steps downstream of a failed blocking check).

Applied on the assets' decorators (`automation_condition=`) of the derived layers only: core tables
and reporting marts. Raw extracts stay on the hourly schedule and the sensors; staging runs with its
raw batch; the delivery assets that write into the ERP, CRM and WMS stay on the hourly job on purpose
(friction, and human approval for the high-stakes writes).
"""

import dagster as dg

FOLLOW_UPSTREAM = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, once upstream blocking checks passed")

# The checks of a followed asset run with it (requested in the same run), so a blocking check on a
# core table gates what follows it the same way the staging gates do, and no result goes stale.
CHECK_WITH_ITS_ASSET = dg.AutomationCondition.eager()
