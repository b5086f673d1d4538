"""README's exit-code table, docs/cli-json.md's kinds and the JSON Schema say what agencystack/errors.py does."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agencystack.errors import EXIT_CODES, KINDS

ROOT = Path(__file__).parents[1]


def rows(text: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell is a number or a `kind`."""
    found = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells and re.fullmatch(r"\d+|`\w+`", cells[0]):
            found.append(cells)
    return found


def test_readme_exit_code_table_is_the_codes_and_kinds_of_errors_py():
    table = {int(cells[0]): re.findall(r"`(\w+)`", cells[1]) for cells in rows((ROOT / "README.md").read_text())}
    assert set(table) == set(EXIT_CODES)
    for code, kinds in table.items():
        assert all(KINDS[kind] == code for kind in kinds), (code, kinds)
    named = {kind for kinds in table.values() for kind in kinds}
    assert named == set(KINDS) - {"error"}  # the base class's kind is never raised as itself by the core


def test_cli_json_doc_lists_every_kind_with_its_exit_code():
    table = {cells[0].strip("`"): int(cells[1]) for cells in rows((ROOT / "docs" / "cli-json.md").read_text())
             if cells[0].startswith("`") and cells[1].isdigit()}
    assert table == KINDS


def test_the_schema_names_the_same_kinds_and_exit_codes():
    schema = json.loads((ROOT / "docs" / "cli-json.schema.json").read_text())
    failure = schema["$defs"]["failure"]["properties"]
    assert set(failure["error"]["properties"]["kind"]["enum"]) == set(KINDS)
    assert set(failure["exit_code"]["enum"]) == set(EXIT_CODES) - {0}
