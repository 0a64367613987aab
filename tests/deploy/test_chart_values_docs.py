"""values.yaml is documented per value, values.schema.json knows every value, README is current."""

from __future__ import annotations

import json

import yaml

from tests.deploy import values_docs
from tests.deploy.support import CHART_DIR

VALUES_TEXT = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")


def test_every_value_has_a_param_comment() -> None:
    assert values_docs.problems(VALUES_TEXT) == []


def test_problems_are_found() -> None:
    text = "## @param a.b documented\na:\n  b: 1\n  c: 2\n## @param gone typo\n"
    assert values_docs.problems(text) == [
        "@param gone names no value in values.yaml",
        "a.c has no @param comment",
    ]


def test_readme_values_table_is_current() -> None:
    readme = (CHART_DIR / "README.md").read_text(encoding="utf-8")
    table = values_docs.render_table(VALUES_TEXT)
    assert values_docs.updated_readme(readme, table) == readme, (
        "run: python tests/deploy/values_docs.py --write"
    )
    assert "| `bot.sessionFile.enabled` |" in table


def test_schema_declares_every_top_level_section() -> None:
    """The schema refuses unknown top-level keys, so it must know every real one."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load(VALUES_TEXT)
    assert schema["additionalProperties"] is False
    assert set(values) == set(schema["properties"])
    for path in values_docs.leaf_paths(values):
        node = schema
        for part in path.split("."):
            props = node.get("properties", {})
            if part in props:
                node = props[part]
            elif node.get("additionalProperties") is False:
                raise AssertionError(f"values.schema.json refuses the default value {path}")
            else:
                break
