"""The shared vocabulary: loaded strictly and rendered into docs/glossary.md (the marts' column
descriptions: reporting/test_mart_glossary.py)."""

from pathlib import Path

import pytest
import yaml

from integration_assets.contracts.glossary import (
    DOCS_PATH,
    GlossaryError,
    load_glossary,
    render_markdown,
)
from integration_assets.contracts.location import contract_file


def test_docs_glossary_is_generated_from_the_contract():
    """docs/glossary.md is what the glossary renders: edit the YAML, then
    `python -m integration_assets.contracts.glossary`."""
    assert DOCS_PATH.read_text() == render_markdown(load_glossary())


def test_terms_that_differ_by_department_say_each_meaning_and_the_timing_terms_name_the_moment():
    glossary = load_glossary()
    status = next(term for term in glossary.terms if term.term == "customer status")
    assert [name for name, _ in status.departments] == ["sales", "finance", "operations"]
    assert status.owner.key == "sales_ops" and not status.columns
    confirmed = next(term for term in glossary.terms if term.term == "order confirmed")
    moment = glossary.timing.order_confirmed.moment
    assert f"order_confirmed = {moment}" in glossary.meaning(confirmed)
    assert glossary.describe("reporting.order_lifecycle", "confirmed_at").startswith(
        "order confirmed: The order is accepted"
    )
    assert glossary.describe("reporting.order_lifecycle", "no_such_column") is None


def broken(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(contract_file("glossary.yaml").read_text())
    change(raw)
    path = tmp_path / "glossary.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: raw["terms"][0].update(owner="nobody"),
            r"terms\[0\].owner: unknown owner 'nobody'",
        ),
        (lambda raw: raw["terms"][0].update(meening="x"), r"terms\[0\].meening: unknown key"),
        (
            lambda raw: raw["terms"][1].update(columns=["reporting.order_lifecycle.order_id"]),
            "already described by the term 'order'",
        ),
        (
            lambda raw: raw["terms"][1].update(columns=["order_id"]),
            r"'order_id' is not schema.table.column",
        ),
        (
            lambda raw: raw["terms"][4].update(timing="order_shipped"),
            "unknown timing definition 'order_shipped'",
        ),
        (
            lambda raw: raw["terms"][4].update(departments={"marketing": "x"}),
            r"terms\[4\].departments.marketing: unknown key",
        ),
        (
            lambda raw: raw["terms"].append(dict(raw["terms"][0], columns=[])),
            "the term 'order' is defined twice",
        ),
        (lambda raw: raw["terms"][0].pop("meaning"), r"terms\[0\].meaning: missing"),
    ],
)
def test_a_glossary_that_does_not_say_what_it_must_is_refused_naming_the_key(
    tmp_path, change, message
):
    with pytest.raises(GlossaryError, match=message):
        load_glossary(broken(tmp_path, change))
