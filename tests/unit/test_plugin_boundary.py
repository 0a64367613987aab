"""The plugin boundary, as a fact: plugins import only ``tgstats.plugin_api``, and the core
never imports a plugin (docs/architecture.md, "The plugin boundary").

Every import statement is read from the source (``ast``), including those under
``if TYPE_CHECKING:`` and inside functions, so a late import cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
SRC = ROOT / "src"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in a file; ``from a import b`` gives ``a.b``
    as well as ``a``, since ``b`` may be a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def plugin_packages() -> set[str]:
    """Top-level import names of the plugins under plugins/ (packages and their parents)."""
    names: set[str] = set()
    for init in PLUGINS.glob("*/__init__.py"):
        names.add(init.parent.name)
    for init in PLUGINS.glob("*/*/__init__.py"):  # a distribution folder with its package
        if init.parent.parent.name != "tests" and init.parent.name != "tests":
            names.add(init.parent.name)
    return names


def outside_plugin_api(module: str) -> bool:
    if module != "tgstats" and not module.startswith("tgstats."):
        return False
    if module == "tgstats":  # ``from tgstats import plugin_api`` names its module too
        return False
    return not (module == "tgstats.plugin_api" or module.startswith("tgstats.plugin_api."))


def boundary_violations() -> list[str]:
    problems: list[str] = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for line, module in imported_modules(path):
            if outside_plugin_api(module):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    plugins = plugin_packages()
    for path in sorted(SRC.rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in plugins:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports plugin {module}")
    return problems


def test_plugins_import_only_the_plugin_api_and_the_core_imports_no_plugin() -> None:
    assert boundary_violations() == []


def test_the_check_sees_what_it_guards(tmp_path: Path) -> None:
    # The same reading on small files: each kind of crossing is caught, allowed imports are not.
    plugin_file = tmp_path / "plugin.py"
    plugin_file.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import tgstats.plugin_api\n"
        "from tgstats.plugin_api.stats import summary\n"
        "from tgstats import plugin_api\n"
        "if TYPE_CHECKING:\n"
        "    from tgstats.settings import Settings\n"
        "def late():\n"
        "    import tgstats.stats.sources\n"
        "from tgstats import charts\n"
    )
    crossing = sorted(m for _, m in imported_modules(plugin_file) if outside_plugin_api(m))
    assert crossing == [
        "tgstats.charts",
        "tgstats.settings",
        "tgstats.settings.Settings",
        "tgstats.stats.sources",
    ]
    assert {"tgstats_cache", "tgstats_mtproto", "tgstats_statsbot", "tgstats_hello"} <= (
        plugin_packages()
    )
