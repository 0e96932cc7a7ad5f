"""The shared vocabulary (glossary.yaml): the words departments use differently, each defined once.

The marts' column descriptions in the Dagster UI come from it (`column_schema`), and
docs/glossary.md is rendered from it (`python -m integration_assets.contracts.glossary` writes it;
a test holds the two equal). Strict like the other contracts: an unknown key, an unknown owner or
timing definition, or a column claimed by two terms fails, naming the file and the key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from integration_assets.contracts.location import contract_file
from integration_assets.contracts.ownership import Owner, named_owner, registry_owners
from integration_assets.contracts.timing import TimingDefinitions, load_timing
from integration_assets.strict_yaml import StrictYamlReader, load_yaml_file

GLOSSARY_FILENAME = "glossary.yaml"
DEPARTMENTS = ("sales", "finance", "operations")
DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "glossary.md"


class GlossaryError(ValueError):
    """A glossary that does not say what it must; the message names the file and the key."""


@dataclass(frozen=True)
class Term:
    term: str
    meaning: str
    owner: Owner
    departments: tuple[tuple[str, str], ...] = ()
    timing: str | None = None  # a timing definition's name; its chosen moment completes the meaning
    columns: tuple[str, ...] = ()  # schema.table.column


@dataclass(frozen=True)
class Glossary:
    source: Path
    version: int
    terms: tuple[Term, ...]
    timing: TimingDefinitions

    def term_of(self, table: str, column: str) -> Term | None:
        """The term whose columns include `table.column` (table as schema.table)."""
        wanted = f"{table}.{column}"
        return next((term for term in self.terms if wanted in term.columns), None)

    def meaning(self, term: Term) -> str:
        """The term's meaning, with the moment its timing definition chooses, when it has one."""
        if term.timing is None:
            return term.meaning
        definition = getattr(self.timing, term.timing)
        return (
            f"{term.meaning} Now: {definition.moment_description} "
            f"(timing.yaml v{self.timing.version}, {term.timing} = {definition.moment})."
        )

    def describe(self, table: str, column: str) -> str | None:
        term = self.term_of(table, column)
        return None if term is None else f"{term.term}: {self.meaning(term)}"


class _GlossaryReader(StrictYamlReader):
    error_class = GlossaryError


def load_glossary(
    path: str | Path | None = None,
    owners: Mapping[str, Owner] | None = None,
    timing: TimingDefinitions | None = None,
) -> Glossary:
    """Read and validate a glossary file (default: `contract_file("glossary.yaml")`)."""
    file = Path(path) if path is not None else contract_file(GLOSSARY_FILENAME)
    raw = load_yaml_file(file, GlossaryError, "glossary")
    if owners is None:
        owners = registry_owners(file, GlossaryError)
    timing = timing if timing is not None else load_timing(owners=owners)
    reader = _GlossaryReader(file)
    top = reader.mapping(raw, "", {"version", "terms"})
    version = reader.integer(reader.required(top, "version", ""), "version", minimum=1)
    terms = []
    claimed: dict[str, str] = {}
    for index, entry in enumerate(reader.listing(reader.required(top, "terms", ""), "terms")):
        term = _term(reader, f"terms[{index}]", entry, owners)
        for column in term.columns:
            if column in claimed:
                raise reader.fail(
                    f"terms[{index}].columns",
                    f"{column} is already described by the term {claimed[column]!r}",
                )
            claimed[column] = term.term
        terms.append(term)
    names = [term.term for term in terms]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise reader.fail("terms", f"the term {twice[0]!r} is defined twice")
    return Glossary(source=file, version=version, terms=tuple(terms), timing=timing)


def _term(reader: _GlossaryReader, path: str, raw: Any, owners: Mapping[str, Owner]) -> Term:
    spec = reader.mapping(
        raw, path, {"term", "meaning", "departments", "timing", "owner", "columns"}
    )
    owner = named_owner(reader, spec, path, owners)
    departments = reader.mapping(
        spec.get("departments") or {}, f"{path}.departments", set(DEPARTMENTS)
    )
    timing = spec.get("timing")
    if timing is not None and timing not in (
        "order_confirmed",
        "revenue_recognised",
        "fulfilment_activated",
    ):
        raise reader.fail(
            f"{path}.timing",
            f"unknown timing definition {timing!r} (order_confirmed, revenue_recognised, fulfilment_activated)",
        )
    columns = tuple(
        reader.string(column, f"{path}.columns[{i}]")
        for i, column in enumerate(reader.listing(spec.get("columns") or [], f"{path}.columns"))
    )
    for i, column in enumerate(columns):
        if column.count(".") != 2:
            raise reader.fail(f"{path}.columns[{i}]", f"{column!r} is not schema.table.column")
    return Term(
        term=reader.string(reader.required(spec, "term", path), f"{path}.term"),
        meaning=reader.string(reader.required(spec, "meaning", path), f"{path}.meaning"),
        owner=owner,
        departments=tuple(
            (name, reader.string(text, f"{path}.departments.{name}"))
            for name, text in departments.items()
        ),
        timing=timing,
        columns=columns,
    )


@cache
def default_glossary() -> Glossary:
    return load_glossary()


def column_schema(con: duckdb.DuckDBPyConnection, table: str, glossary: Glossary) -> dg.TableSchema:
    """`table`'s columns as the warehouse has them, each described by its glossary term."""
    schema, name = table.split(".")
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(column, data_type, description=glossary.describe(table, column))
            for column, data_type in columns
        ]
    )


def render_markdown(glossary: Glossary) -> str:
    """docs/glossary.md."""
    lines = [
        "# Glossary",
        "",
        "<!-- Generated from integration_assets/contracts/glossary.yaml by",
        "     `python -m integration_assets.contracts.glossary`; edit the YAML, not this file. -->",
        "",
        "The words that sales, finance and operations use differently, each defined once, with the",
        "owner who answers for the definition. The reporting marts' column descriptions in the Dagster",
        "UI are these definitions. A moment decided by the timing definitions (`timing.yaml`) says which",
        "moment is chosen now.",
        "",
        "| term | owner | columns |",
        "|---|---|---|",
    ]
    for term in glossary.terms:
        columns = ", ".join(f"`{column}`" for column in term.columns) or "(none: see below)"
        lines.append(
            f"| [{term.term}](#{term.term.replace(' ', '-')}) | {term.owner.name} | {columns} |"
        )
    for term in glossary.terms:
        lines += ["", f"## {term.term}", "", glossary.meaning(term)]
        if term.departments:
            lines += ["", "| department | when it says it, it means |", "|---|---|"]
            lines += [f"| {name} | {text} |" for name, text in term.departments]
        lines += ["", f"Owner: {term.owner.name} ({term.owner.email})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/glossary.md (or the path given) from the glossary."""
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else DOCS_PATH
    target.write_text(render_markdown(load_glossary()))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
