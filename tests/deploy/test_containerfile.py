"""The Containerfile stays in step with the project.

No container engine runs here, so the file is parsed (``dockerfile-parse``) and checked
against what it builds: pyproject's console script, the default port in settings.py, the
health routes the app serves, the lock file and what the wheel contains.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.support import HEALTH_PATHS, REPO_ROOT
from tgstats.settings import ENV_VARS

CONTAINERFILE = REPO_ROOT / "Containerfile"
LOCK_FILE = REPO_ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def parse() -> DockerfileParser:
    # The parser reads its file object lazily, so hand it one that stays open.
    return DockerfileParser(fileobj=io.BytesIO(CONTAINERFILE.read_bytes()))


PARSED = parse()
INSTRUCTIONS: list[dict[str, Any]] = [i for i in PARSED.structure if i["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    result: list[list[dict[str, Any]]] = []
    for instruction in INSTRUCTIONS:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final_stage(name: str) -> list[dict[str, Any]]:
    return [i for i in stages()[-1] if i["instruction"] == name]


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"use the exec (JSON) form, not {value!r}"
    return [str(part) for part in parsed]


def env_default(name: str) -> str:
    (var,) = [v for v in ENV_VARS if v.name == name]
    return var.default


# --------------------------------------------------------------------------- image shape


def test_base_image_is_pinned_to_a_python_311_patch_release() -> None:
    image = PARSED.args.get("PYTHON_IMAGE") or PARSED.baseimage
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image
    ), image
    froms = [i["value"] for i in INSTRUCTIONS if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    assert all(f.startswith("${PYTHON_IMAGE} AS ") for f in froms)


def test_locked_dependencies_install_before_the_source_is_copied() -> None:
    build = stages()[0]
    steps = [(i["instruction"], i["value"]) for i in build]
    lock_install = next(
        n for n, (kind, value) in enumerate(steps) if kind == "RUN" and "--require-hashes" in value
    )
    assert "-r /tmp/requirements.lock" in steps[lock_install][1]
    assert "--no-deps" in steps[lock_install][1]
    lock_copy = next(
        n
        for n, (kind, value) in enumerate(steps)
        if kind == "COPY" and "requirements.lock" in value
    )
    first_source = next(
        n for n, (kind, value) in enumerate(steps) if kind == "COPY" and value.startswith("src/")
    )
    assert lock_copy < lock_install < first_source
    # The project install must not pull unlocked dependencies.
    project_install = next(
        value for kind, value in steps[first_source:] if kind == "RUN" and "pip install" in value
    )
    assert "--no-deps" in project_install


def test_build_copies_everything_the_wheel_is_built_from() -> None:
    copied = {
        shlex.split(i["value"])[0].rstrip("/") for i in stages()[0] if i["instruction"] == "COPY"
    } | {
        part.rstrip("/")
        for i in stages()[0]
        if i["instruction"] == "COPY"
        for part in shlex.split(i["value"])[:-1]
    }
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    needed |= {p.split("/")[0] for p in wheel["packages"]}
    needed |= {p.split("/")[0] for p in wheel.get("force-include", {})}
    assert needed <= copied, f"not copied into the build stage: {sorted(needed - copied)}"


def test_runtime_stage_holds_only_the_installed_environment() -> None:
    runtime = stages()[-1]
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert copies and all(c.startswith("--from=build ") for c in copies), copies


def test_entrypoint_is_tini_then_the_tgstats_console_script() -> None:
    (entrypoint,) = final_stage("ENTRYPOINT")
    command = exec_form(entrypoint["value"])
    assert command[:2] == ["/usr/bin/tini", "--"]
    assert command[2:] == ["tgstats"]
    assert "tgstats" in PYPROJECT["project"]["scripts"]
    assert any(
        "apt-get install" in i["value"] and " tini" in i["value"] for i in final_stage("RUN")
    )
    (cmd,) = final_stage("CMD")
    assert exec_form(cmd["value"]) == ["serve"]


def test_console_script_has_every_subcommand_the_deployments_use() -> None:
    from tgstats.cli import build_parser

    parser = build_parser()
    for argv in (["serve", "--no-migrate"], ["bot", "--no-migrate"], ["migrate"], ["version"]):
        parser.parse_args(argv)


def test_exposed_port_is_the_default_setting() -> None:
    (expose,) = final_stage("EXPOSE")
    assert expose["value"].split() == [env_default("TGSTATS_PORT")]
    assert PARSED.envs["TGSTATS_PORT"] == env_default("TGSTATS_PORT")


def test_runs_as_a_numeric_non_root_user() -> None:
    (user,) = final_stage("USER")
    uid, _, gid = user["value"].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes can check runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    from tests.deploy.support import CHART_DIR, load_values_file

    chart_values = load_values_file(CHART_DIR / "values.yaml")
    assert chart_values["podSecurityContext"]["runAsUser"] == int(uid)
    assert chart_values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_stops_with_sigterm_and_writes_only_to_tmp_and_the_data_dir() -> None:
    (signal,) = final_stage("STOPSIGNAL")
    assert signal["value"] == "SIGTERM"
    assert PARSED.envs["TMPDIR"] == "/tmp"
    assert PARSED.envs["TGSTATS_DATA_DIR"].startswith("/var/lib/tgstats")


def test_healthcheck_asks_the_app_for_a_health_path() -> None:
    (healthcheck,) = final_stage("HEALTHCHECK")
    options, _, command = healthcheck["value"].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    paths = re.findall(r"/health[/\w]*", argv[2])
    assert paths == ["/health/live"]
    assert set(paths) <= HEALTH_PATHS
    assert "TGSTATS_PORT" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


# --------------------------------------------------------------------------- what gets installed


def locked_versions() -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", LOCK_FILE.read_text(encoding="utf-8"), re.M
    )
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_file_satisfies_pyproject() -> None:
    locked = locked_versions()
    wanted = list(PYPROJECT["project"]["dependencies"])
    wanted += PYPROJECT["project"]["optional-dependencies"]["sentry"]
    problems = []
    for line in wanted:
        requirement = Requirement(line)
        version = locked.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement.name} is not in requirements.lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(
                f"{requirement.name}=={version} does not satisfy {requirement.specifier}"
            )
    assert problems == [], "regenerate requirements.lock (command at its top)"


def test_every_lock_entry_is_hash_pinned() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK_FILE.read_text(encoding="utf-8"))
    for entry in entries:
        if entry.startswith("#") or not entry.strip():
            continue
        assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry.splitlines()[0]


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel the image installs (hatchling, fetched by pip like `pip install .`)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(REPO_ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("tgstats-*.whl")
    return wheel


def test_wheel_ships_migrations_plugins_and_the_console_script(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = wheel.read(entry_points_file).decode()
    # `tgstats migrate` in the image finds Alembic here (tgstats.db.engine.alembic_config).
    assert "tgstats/_alembic/env.py" in names
    revisions = sorted(p.name for p in (REPO_ROOT / "alembic" / "versions").glob("*.py"))
    assert revisions
    for revision in revisions:
        assert f"tgstats/_alembic/versions/{revision}" in names
    assert re.search(r"^tgstats = tgstats\.cli:main$", entry_points, re.M)
    plugins = PYPROJECT["project"]["entry-points"]["tgstats.plugins"]
    for target in plugins.values():
        module = target.split(":")[0]
        assert f"{module.replace('.', '/')}/__init__.py" in names, (
            f"{module} missing from the wheel"
        )
    # The compiled catalogs: an installed tgstats speaks every supported language.
    for catalog in (REPO_ROOT / "src/tgstats/i18n/locale").glob("*/LC_MESSAGES/tgstats.mo"):
        relative = catalog.relative_to(REPO_ROOT / "src")
        assert relative.as_posix() in names, f"{relative} missing from the wheel"
        with zipfile.ZipFile(built_wheel) as wheel:
            assert wheel.read(relative.as_posix()) == catalog.read_bytes()
