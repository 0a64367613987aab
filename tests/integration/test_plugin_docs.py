"""docs/plugins.md documents every hook and public name, and its code samples run."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import tgstats.plugin_api as plugin_api
from tgstats.plugin_api import Plugin

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
HOOKS = (
    "on_app_init", "lifespan", "commands", "on_events", "health", "dashboard_panels", "job_kinds",
)  # fmt: skip


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def test_every_hook_is_documented_with_a_heading_and_a_docstring() -> None:
    hooks = [
        name
        for name, member in vars(Plugin).items()
        if callable(member) and not name.startswith("_") and name not in {"describe"}
    ]
    assert set(HOOKS) <= set(hooks)
    for name in hooks:
        assert re.search(rf"^### `{name}\(", DOC, flags=re.M), f"hook {name} has no section"
        assert inspect.getdoc(getattr(Plugin, name)), f"hook {name} has no docstring"


def test_every_public_name_is_documented() -> None:
    for name in plugin_api.__all__:
        assert f"`{name}" in DOC or f"{name}(" in DOC or f" {name}," in DOC, name


def test_every_public_module_is_documented() -> None:
    for module in (
        "tgstats.plugin_api.stats",
        "tgstats.plugin_api.web",
        "tgstats.plugin_api.testing",
    ):
        assert module in DOC


async def test_code_samples_run(tgstats_settings) -> None:
    namespace: dict[str, object] = {"__name__": "docs_plugins_md"}
    blocks = _python_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        exec(compile(block, "docs/plugins.md", "exec"), namespace)
    demos = [
        v for k, v in namespace.items() if k.startswith("demo_") and inspect.iscoroutinefunction(v)
    ]
    assert demos, "the docs should end with a runnable test sample"
    for demo in demos:
        await demo(tgstats_settings())
