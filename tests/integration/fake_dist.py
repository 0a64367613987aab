"""Write a tiny installed distribution (package + .dist-info with entry points) into a folder.

Putting that folder on ``sys.path`` is exactly how an installed plugin looks to
``importlib.metadata``: the host finds it through the ``tgstats.plugins`` group.
"""

from __future__ import annotations

from pathlib import Path


def write_distribution(
    root: Path, name: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
) -> None:
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines = ["[tgstats.plugins]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (dist_info / "RECORD").write_text("")
