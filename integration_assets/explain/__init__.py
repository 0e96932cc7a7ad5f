"""`integration-assets explain order|customer|sku ID`: one entity's whole story across every system.

Pure assembly (`timeline`, `describe`) over thin warehouse readers; each `explain_*` returns a plain
dict (the `--json` output) and `render_text` turns it into text for a person.
"""

from integration_assets.explain.customer import explain_customer
from integration_assets.explain.exceptions import open_exceptions
from integration_assets.explain.order import ExplainNotFound, explain_order
from integration_assets.explain.render import render_text
from integration_assets.explain.sku import explain_sku

EXPLAINERS = {"order": explain_order, "customer": explain_customer, "sku": explain_sku}

__all__ = [
    "EXPLAINERS",
    "ExplainNotFound",
    "explain_customer",
    "explain_order",
    "explain_sku",
    "open_exceptions",
    "render_text",
]
