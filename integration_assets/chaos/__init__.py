"""The chaos suite (`make chaos`, `integration-assets chaos`): faults injected into real sandbox systems.

Each case (`cases.py`) serves the chaos scenario (`scenario.py`) with one kind of fault, runs the
hourly sync in process against it as often as an operator would (re-running after a failure), then
checks the invariants (`invariants.py`) a trusted integration promises: every source record promoted
or quarantined exactly once, no document twice in the ERP or the CRM, every ledger balanced, no secret
anywhere it was written, forged deliveries refused without a trace, hostile strings kept verbatim.
`suite.py` runs the cases and prints the table; `soak.py` runs 24 simulated hours with faults mixed in.
"""
