"""Automation for tgstats. ``nox`` alone runs the test suite.

Sessions that need PostgreSQL and Redis expect them at the addresses in
``tests/conftest.py`` (``.ci/run`` starts them when they are not running).
Benchmarks are sessions of their own and never part of the default run.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PYTHON = ["3.11", "3.12", "3.13"]
DEV_REQUIREMENTS: list[str] = nox.project.load_toml(ROOT / "pyproject.toml")["project"][
    "optional-dependencies"
]["dev"]


def pinned(tool: str) -> str:
    """The dev extra's pinned requirement for ``tool`` (e.g. ``ruff==0.17.6``): one place."""
    return next(req for req in DEV_REQUIREMENTS if req.startswith(f"{tool}=="))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (unit, integration on real PostgreSQL/Redis, e2e in Chromium).

    Runs on the Python that runs nox; ``tests_matrix`` covers 3.11-3.13.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11", reuse_venv=False)
def example_plugin(session: nox.Session) -> None:
    """Build the example plugin and tgstats as wheels, install both into a fresh virtualenv, run
    the plugin's own tests there: the path a third-party plugin takes."""
    session.install(".[test]")
    session.install("./plugins/example_hello")
    session.chdir("plugins/example_hello")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHON)
def tests_matrix(session: nox.Session) -> None:
    """Run the unit tests on every supported Python (3.11, 3.12, 3.13) that is installed."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(pinned("ruff"))
    session.run("ruff", "check", "src", "plugins", "tests", "bench")
    session.run("ruff", "format", "--check", "src", "plugins", "tests", "bench")


LOCALE_DIR = "src/tgstats/i18n/locale"
MESSAGES_POT = f"{LOCALE_DIR}/tgstats.pot"


@nox.session(python="3.11")
def i18n(session: nox.Session) -> None:
    """Extract every message (Python, dashboard templates and scripts; ``babel.cfg``) into the
    template, merge it into each language's ``.po``, and compile the ``.mo`` files.

    Translate the new empty ``msgstr`` entries afterwards (``tests/unit/test_i18n.py`` fails
    until every message has a translation and every ``.mo`` matches its ``.po``), then run
    this again to compile. ``nox -s i18n -- init xx`` starts a new language.
    """
    session.install("babel>=2.14", "jinja2>=3.1")
    if session.posargs[:1] == ["init"]:
        language = session.posargs[1]
        session.run(
            "pybabel",
            "init",
            "-i",
            MESSAGES_POT,
            "-d",
            LOCALE_DIR,
            "-D",
            "tgstats",
            "-l",
            language,
            "--no-wrap",
        )
        return
    session.run(
        "pybabel",
        "extract",
        "-F",
        "babel.cfg",
        "--sort-output",
        "--add-location=file",
        "--no-wrap",
        "--project",
        "tgstats",
        "-o",
        MESSAGES_POT,
        ".",
    )
    session.run(
        "pybabel",
        "update",
        "-i",
        MESSAGES_POT,
        "-d",
        LOCALE_DIR,
        "-D",
        "tgstats",
        "--no-fuzzy-matching",
        "--ignore-obsolete",
        "--no-wrap",
    )
    session.run("pybabel", "compile", "-d", LOCALE_DIR, "-D", "tgstats", "--statistics")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy, strict on src/ and every plugin (see [tool.mypy])."""
    session.install("-e", ".[test]", pinned("mypy"))
    session.run("mypy")


@nox.session(python="3.11")
def metrics(session: nox.Session) -> None:
    """Scrape /metrics from a live app and run ``promtool check metrics`` on it.

    promtool comes from Debian's ``prometheus`` package.
    """
    if shutil.which("promtool") is None:
        session.error("promtool not found: apt-get install prometheus")
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/integration/test_metrics.py",
        *session.posargs,
        env={"TGSTATS_REQUIRE_PROMTOOL": "1"},
    )


@nox.session(python="3.11")
def schemathesis(session: nox.Session) -> None:
    """Fuzz the HTTP API from its OpenAPI schema on a seeded database (schemathesis).

    Fails on any 5xx, any response that does not match the schema, and any
    ``/api/`` operation that answers without a valid token. Needs PostgreSQL
    (``TGSTATS_TEST_PG``). ``nox -s schemathesis -- --max-examples 100`` digs deeper.
    """
    # hypothesis-jsonschema 0.23 calls a Hypothesis helper that later 6.1xx releases dropped.
    session.install("-e", ".[test]", "schemathesis>=4.3", "hypothesis>=6.100,<6.141")
    session.run("python", "tests/http_security/run_schemathesis.py", *session.posargs)


@nox.session(python="3.11")
def resilience(session: nox.Session) -> None:
    """Run the whole service under faults, load and bad input (``tests/resilience``, a few minutes).

    Starts ``tgstats serve`` (granian) as a real process on a private embedded PostgreSQL
    and a private ``redis-server`` (the shared servers are never stopped), feeds raw
    MTProto updates through kurigram's dispatcher with the bot simulator, and checks the
    stored counts after each scenario: steady load, re-delivery, database faults, Redis
    faults, SIGTERM/SIGKILL, bad input; and `tgstats bot` over real MTProto against the local test
    data centre (tests/wire): login, reconnects, gaps, catch-up, "too long", FLOOD_WAIT.
    Each scenario prints one line; they are also
    written to ``test-artifacts/resilience.txt``. Needs ``redis-server`` on PATH.
    """
    if shutil.which("redis-server") is None:
        session.error("redis-server not found: apt-get install redis-server")
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/resilience",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"TGSTATS_RESILIENCE": "1"},
    )


@nox.session(python="3.11")
def monitoring(session: nox.Session) -> None:
    """A real Prometheus scraping a running tgstats (``tests/monitoring``, about a minute).

    Starts ``tgstats serve`` with the bot simulator and Debian's ``prometheus`` (1 s scrape
    interval, the chart's alert rules loaded), runs a scripted workload, then checks the
    seed's example queries and every panel of the chart's Grafana dashboard return series.
    Also: OTLP push to a real collector (rotel) over HTTP and gRPC, and an unhandled error
    reported through sentry-sdk to a local envelope endpoint. The alerts' own unit tests (``promtool test rules``) are in tests/deploy.
    """
    if shutil.which("prometheus") is None:
        session.error("prometheus not found: apt-get install prometheus")
    session.install("-e", ".[test,sentry]")
    session.run(
        "pytest", "tests/monitoring", "-p", "no:cacheprovider", *session.posargs,
        env={"TGSTATS_MONITORING": "1"},
    )  # fmt: skip


@nox.session(python="3.11")
def replica(session: nox.Session) -> None:
    """``DATABASE_READ_URL`` against a real streaming replica (``tests/replica``, under a minute).

    Makes a throwaway primary (``initdb``, ``wal_level=replica``) and a replica of it
    (``pg_basebackup -R``) with PostgreSQL's own binaries (``TGSTATS_PG_BIN``, default
    /usr/lib/postgresql/15/bin; as root they run as the ``postgres`` user), then checks
    where stats and settings are read and what a user sees while the replica lags
    (``pg_wal_replay_pause()``).
    """
    session.install("-e", ".[test]")
    session.run(
        "pytest", "tests/replica", "-p", "no:cacheprovider", *session.posargs,
        env={"TGSTATS_REPLICA": "1"},
    )  # fmt: skip


@nox.session(python="3.11")
def image(session: nox.Session) -> None:
    """Build the Containerfile with podman/buildah and run the image (``tests/image``).

    The base image the Containerfile expects (Debian bookworm's Python 3.11) is made here
    with ``mmdebstrap`` and ``podman import``, since no container registry is reachable;
    then ``migrate`` against the test PostgreSQL, ``serve`` read-only as uid 10001, the
    HEALTHCHECK, ``promtool check metrics``, ``podman stop``. Needs root, ``podman``,
    ``buildah``, ``mmdebstrap``, ``runc`` (Debian packages). Times and the image size are
    written to ``test-artifacts/image.txt``.
    """
    for tool in ("podman", "buildah", "mmdebstrap", "runc", "promtool"):
        if shutil.which(tool) is None:
            session.error(f"{tool} not found: apt-get install podman buildah mmdebstrap runc")
    session.install("-e", ".[test]")
    session.run(
        "pytest", "tests/image", "-p", "no:cacheprovider", *session.posargs,
        env={"TGSTATS_IMAGE": "1"},
    )  # fmt: skip


@nox.session(python="3.11")
def bench_ingest(session: nox.Session) -> None:
    """Benchmark ingestion: the batch writer against one transaction per message and raw
    COPY, and end to end through kurigram's dispatcher against a no-op handler
    (``bench/ingest.py``; pass ``-- --quick`` for a run under a minute)."""
    session.install("-e", ".[test]")
    session.run("python", "bench/ingest.py", *session.posargs)


LOCUST = "locust==2.47.0"


@nox.session(python="3.11")
def load(session: nox.Session) -> None:
    """Load test: locust (``bench/locustfile.py``) against a ``tgstats demo`` it starts
    (``bench/load.py``): sign-in, chat list, a chat's page and its API calls, CSV; 20 users
    for 60 s by default (``-- --users 10 --seconds 30``). Prints p50/p95/p99 and the error
    count; fails on any failed request or 5xx. Needs PostgreSQL (``TGSTATS_TEST_PG``)."""
    session.install("-e", ".", LOCUST)
    session.run("python", "bench/load.py", *session.posargs)


@nox.session(python="3.11")
def scale(session: nox.Session) -> None:
    """Benchmark one deployment with 100,000 chats through the API: chat list pages, search,
    stats, the metrics scrape, one retention pass and one digest run over every chat
    (``bench/scale.py``; pass ``-- --chats 20000 --rounds 1`` for a shorter run)."""
    session.install("-e", ".[test]")
    session.run("python", "bench/scale.py", *session.posargs)


@nox.session(python="3.11")
def chart(session: nox.Session) -> None:
    """Check the Helm chart and the Containerfile (tests/deploy); no helm binary or cluster needed.

    Helm's Go SDK (``helm-python-sdk``) lints and renders the chart for the default values
    and every value set in ``charts/tgstats/ci/``; every rendered manifest is validated with
    ``kubernetes-validate`` in strict mode; the Containerfile is parsed and checked against
    pyproject, settings and the app's health routes; the chart README's values table must
    match ``values.yaml``.
    """
    session.install("-e", ".[test]")
    session.run("python", "tests/deploy/values_docs.py", "--check")
    session.run("pytest", "tests/deploy", *session.posargs)


CHECKOV = "checkov==3.3.30"


@nox.session(python="3.11")
def chart_scan(session: nox.Session) -> None:
    """The rendered chart against the checkov Kubernetes policies (``tests/deploy/scan``).

    Every value set in ``charts/tgstats/ci/`` is rendered with Helm's Go SDK and scanned;
    a failed check fails the run unless the test names it with the reason it does not apply,
    and a named check that no longer fails fails it too.
    """
    session.install("-e", ".[test]", CHECKOV)
    session.run(
        "pytest", "tests/deploy/scan", "-p", "no:cacheprovider", *session.posargs,
        env={"TGSTATS_CHART_SCAN": "1"},
    )  # fmt: skip


@nox.session(python="3.11")
def precommit(session: nox.Session) -> None:
    """Run every pre-commit hook on every file: ruff, mypy, YAML/TOML/JSON and whitespace checks."""
    session.install("-e", ".[dev]")
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure", *session.posargs)


@nox.session(python="3.11")
def lock(session: nox.Session) -> None:
    """Regenerate requirements.lock (the Containerfile's hash-checked dependencies)."""
    lock_file = ROOT / "requirements.lock"
    # Keep the explanatory comment block at the top of the file.
    lines = lock_file.read_text(encoding="utf-8").splitlines()
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
    session.install("uv>=0.5")
    session.run(
        "uv", "pip", "compile", "pyproject.toml", "--extra", "sentry",
        "--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28",
        "--generate-hashes", "--no-header", "--annotation-style", "line",
        "--output-file", str(lock_file),
    )  # fmt: skip
    lock_file.write_text(header + "\n" + lock_file.read_text(encoding="utf-8"), encoding="utf-8")
