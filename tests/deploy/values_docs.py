"""The chart's values documentation: `## @param` comments -> the README values table.

values.yaml documents each value Bitnami-style::

    ## @section Web parameters
    ## @param web.replicaCount Web replicas when the autoscaler is off

A `@param` on an object (e.g. ``podSecurityContext``) documents everything under it.
This module checks that every value is documented and that every `@param` names a
real value, and writes the table between the markers in charts/tgstats/README.md::

    python tests/deploy/values_docs.py --write   # regenerate the table
    python tests/deploy/values_docs.py --check   # exit 1 when README.md is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "tgstats"
TABLE_START = "<!-- values-table:start -->"
TABLE_END = "<!-- values-table:end -->"

_PARAM = re.compile(r"^\s*##\s*@param\s+(?P<name>\S+)\s+(?P<help>.+?)\s*$")
_SECTION = re.compile(r"^\s*##\s*@section\s+(?P<title>.+?)\s*$")


@dataclass(frozen=True)
class Param:
    name: str
    help: str
    section: str


def parse_params(values_text: str) -> list[Param]:
    params: list[Param] = []
    section = ""
    for line in values_text.splitlines():
        if match := _SECTION.match(line):
            section = match["title"]
        elif match := _PARAM.match(line):
            params.append(Param(match["name"], match["help"], section))
    return params


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every value; lists and empty mappings count as one value."""
    if isinstance(values, dict) and values:
        paths: list[str] = []
        for key, child in values.items():
            paths.extend(leaf_paths(child, f"{prefix}.{key}" if prefix else str(key)))
        return paths
    return [prefix]


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def problems(values_text: str) -> list[str]:
    """What is wrong with the documentation of values.yaml (empty when all is well)."""
    values = yaml.safe_load(values_text)
    params = parse_params(values_text)
    names = [p.name for p in params]
    found: list[str] = []
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"@param {name} appears more than once")
    for name in names:
        try:
            lookup(values, name)
        except KeyError:
            found.append(f"@param {name} names no value in values.yaml")
    documented = set(names)
    for path in leaf_paths(values):
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if not ancestors & documented:
            found.append(f"{path} has no @param comment")
    return found


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f'"{value}"'
    if len(text) > 60:
        text = text[:57] + "..."
    return "`" + text.replace("|", "\\|") + "`"


def render_table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    out: list[str] = []
    section = None
    for param in parse_params(values_text):
        if param.section != section:
            section = param.section
            out += [
                "",
                f"### {section}",
                "",
                "| Name | Description | Default |",
                "| --- | --- | --- |",
            ]
        default = lookup(values, param.name)
        help_text = param.help.replace("|", "\\|")
        out.append(f"| `{param.name}` | {help_text} | {_cell(default)} |")
    return "\n".join(out).strip() + "\n"


def updated_readme(readme: str, table: str) -> str:
    start, end = readme.index(TABLE_START), readme.index(TABLE_END)
    return readme[: start + len(TABLE_START)] + "\n\n" + table + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the README values table")
    mode.add_argument("--check", action="store_true", help="fail when the table is stale")
    args = parser.parse_args(argv)
    values_text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    readme_path = CHART_DIR / "README.md"
    issues = problems(values_text)
    for issue in issues:
        print(f"values.yaml: {issue}", file=sys.stderr)
    readme = readme_path.read_text(encoding="utf-8")
    wanted = updated_readme(readme, render_table(values_text))
    if args.write:
        readme_path.write_text(wanted, encoding="utf-8")
    elif wanted != readme:
        print(f"{readme_path}: values table is stale; run {__file__} --write", file=sys.stderr)
        return 1
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
