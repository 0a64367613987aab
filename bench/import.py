"""Benchmark: importing a generated 1M-message Telegram Desktop export.

Variants, each run in its own subprocess so its peak RSS is its own:

- ``stream``: ``import_export`` (what ``tgstats import --dry-run`` runs) into a
  counting sink: read the file in 128 KiB windows, decode whole messages with
  msgspec (``importer/splitter.py``; the stdlib scanner for the header, the tail
  and anything msgspec refuses), map every message to events and compute its
  text features (words, links, mentions, hashtags, emoji); no database.
- ``baseline``: ``json.load`` of the whole file, then the same mapper (and text
  features) into the same counting sink, with the same garbage-collector
  treatment (the heap before the import frozen, see ``importer/runner.py``).
- ``stream-db``: the importer into PostgreSQL through the bulk path
  (``pipeline.bulk.BulkImportSink``, what ``tgstats import`` writes with; a fresh
  database per run), every stored row checked afterwards. Like ``stream`` it reads the
  file once: ``tgstats import`` reads it once more before writing (the check that a bad
  file writes nothing), which ``--precheck`` adds here.
- ``live-db`` (``--live-db``): the same through the live writer (``EventPipeline``), the
  path imports took before the bulk one, for comparison.

Targets: >= 50k msgs/s and <= 300 MB peak RSS at 1M messages, for
``stream`` (wall clock; also printed per CPU-second of the importer process,
which is steadier on a shared machine), and for ``stream-db`` >= 50k msgs/s and
>= 70% of ``stream`` in the same run (``db_vs_stream``). The variants run interleaved,
so load drifts hit each alike. The last output line is one JSON object
(medians over ``--repeat`` runs); ``msgs_per_s`` counts regular messages (service
and unsupported records are read and mapped too but not counted).

    python bench/import.py              # 1M messages, 3 interleaved runs of each variant
    python bench/import.py --quick      # 100k messages, quick look
    python bench/import.py --no-db      # skip the PostgreSQL variant
"""

from __future__ import annotations

import sys

# Run as a script, bench/ would come first on sys.path, and bench/http.py would shadow
# the standard library's http package.
sys.path[:] = [p for p in sys.path if p != sys.path[0] or not p.endswith("bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- children


async def child_stream(path: Path) -> dict[str, Any]:
    from tgstats.importer import CountingSink, import_export

    sink = CountingSink()
    started, cpu = time.perf_counter(), time.process_time()
    summary = await import_export(path, sink)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary.error is None, summary.error
    return {
        "messages": summary.imported_messages,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "events": sink.count,
    }


async def child_baseline(path: Path) -> dict[str, Any]:
    from tgstats.importer import CountingSink
    from tgstats.importer.runner import _long_lived_heap_frozen

    sink = CountingSink()
    started, cpu = time.perf_counter(), time.process_time()
    # The same collector treatment as import_export (the heap before the import frozen),
    # so the ratio compares reading the file, not garbage collection settings.
    with _long_lived_heap_frozen():
        return await _baseline(path, sink, started, cpu)


async def _baseline(path: Path, sink: Any, started: float, cpu: float) -> dict[str, Any]:
    import zoneinfo

    from tgstats.events import Event
    from tgstats.importer.fields import CHAT_KINDS, bot_api_chat_id
    from tgstats.importer.mapper import ChatMapper

    with path.open("rb") as file:
        document = json.load(file)
    chat_type = CHAT_KINDS[document["type"]][0]
    mapper = ChatMapper(
        chat_id=bot_api_chat_id(document["id"], chat_type),
        chat_type=chat_type,
        title=document["name"],
        tz=zoneinfo.ZoneInfo("UTC"),
        label=document["name"],
    )
    await sink.put_many(mapper.start())
    messages = document["messages"]
    for start in range(0, len(messages), 256):
        out: list[Event] = []
        mapper.map_batch(messages[start : start + 256], out)
        await sink.put_many(out)
    await sink.put_many(mapper.finish())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "messages": mapper.stats.messages,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "events": sink.count,
    }


async def child_stream_db(
    path: Path, admin_url: str, *, live: bool = False, precheck: bool = False
) -> dict[str, Any]:
    import secrets
    from urllib.parse import urlsplit

    import asyncpg

    from tgstats.db.engine import open_database, run_migrations
    from tgstats.importer import import_export
    from tgstats.pipeline import EventPipeline
    from tgstats.pipeline.bulk import BulkImportSink
    from tgstats.settings import DatabaseSettings, PipelineSettings

    name = f"tgstats_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlsplit(admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    try:
        await run_migrations(url)
        database = open_database(url, DatabaseSettings(pool_size=4))
        factory = database.session_factory if precheck else None
        started, cpu = time.perf_counter(), time.process_time()
        if live:
            pipeline = EventPipeline(session_factory=database.session_factory,
                                     settings=PipelineSettings())  # fmt: skip
            await pipeline.start()
            try:
                summary = await import_export(path, pipeline.sink, session_factory=factory)
            finally:
                await pipeline.stop()
        else:
            sink = BulkImportSink(session_factory=database.session_factory)
            summary = await import_export(path, sink, session_factory=factory)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert summary.error is None, summary.error
        async with database.session_factory() as session:
            from sqlalchemy import text

            stored = (await session.execute(text("SELECT count(*) FROM messages"))).scalar_one()
            counted = (
                await session.execute(text("SELECT sum(messages) FROM chat_day_rollup"))
            ).scalar_one()
        await database.dispose()
        assert stored == summary.imported_messages, (stored, summary.imported_messages)
        assert counted == stored, (counted, stored)
        return {
            "messages": summary.imported_messages,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "stored": stored,
        }
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def run_child(args: argparse.Namespace) -> None:
    path = Path(args.export)
    if args.child == "stream":
        result = asyncio.run(child_stream(path))
    elif args.child == "baseline":
        result = asyncio.run(child_baseline(path))
    else:
        result = asyncio.run(
            child_stream_db(
                path, args.database_url, live=args.child == "live-db", precheck=args.precheck
            )
        )
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


# --------------------------------------------------------------------------- parent


def measure(
    variant: str, export: Path, database_url: str, precheck: bool = False
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--export",
        str(export),
        "--database-url",
        database_url,
        *(["--precheck"] if precheck else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["msgs_per_s"] = result["messages"] / result["seconds"]
    result["cpu_msgs_per_s"] = result["messages"] / result["cpu_seconds"]
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k messages instead of 1M")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    parser.add_argument("--no-db", action="store_true", help="skip the PostgreSQL variant")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the json.load baseline (saves time)"
    )
    parser.add_argument(
        "--live-db", action="store_true", help="also import through the live writer"
    )
    parser.add_argument(
        "--precheck", action="store_true",
        help="the DB variants read the file twice, as tgstats import does",
    )  # fmt: skip
    parser.add_argument("--export", default=None, help="reuse (or keep) the generated export here")
    parser.add_argument("--database-url", default=os.environ.get("TGSTATS_BENCH_PG", DEFAULT_DB))
    parser.add_argument(
        "--child", choices=("stream", "baseline", "stream-db", "live-db"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    messages = args.messages or (100_000 if args.quick else 1_000_000)
    repeat = 1 if args.quick and args.repeat == 3 else args.repeat
    with tempfile.TemporaryDirectory(prefix="tgstats-bench-") as tmp:
        export = Path(args.export) if args.export else Path(tmp) / "result.json"
        if not export.is_file():
            from tgstats.importer.synthetic import write_synthetic_export

            print(f"generating {messages:,} messages -> {export}", flush=True)
            write_synthetic_export(export, messages=messages, seed=42)
        size_mb = export.stat().st_size / 1024 / 1024
        print(f"export: {export} ({size_mb:,.0f} MiB), {os.cpu_count()} CPUs", flush=True)
        variants = [v for v in VARIANTS if v != "baseline" or not args.no_baseline]
        if not args.no_db:
            variants.append("stream-db")
        if args.live_db:
            variants.append("live-db")
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in ALL_VARIANTS}
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        for round_ in range(repeat):
            for variant in variants:  # interleaved: load drifts hit every variant alike
                run = measure(variant, export, args.database_url, args.precheck)
                results[variant].append(run)
                print(
                    f"  [{round_ + 1}/{repeat}] {variant:9s} {run['msgs_per_s']:>9,.0f} msgs/s "
                    f"(per CPU-second of the importer: {run['cpu_msgs_per_s']:>7,.0f})  "
                    f"peak RSS {run['peak_rss_mb']:6.0f} MB  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    print(report_lines(results, size_mb, repeat))


VARIANTS = ("stream", "baseline")
ALL_VARIANTS = (*VARIANTS, "stream-db", "live-db")


def report_lines(results: dict[str, list[dict[str, Any]]], size_mb: float, repeat: int) -> str:
    """The human summary, then the JSON line (medians)."""
    stream, base = results["stream"], results["baseline"]
    report: dict[str, Any] = {
        "messages": stream[0]["messages"],
        "export_mb": round(size_mb, 1),
        "runs": repeat,
        "msgs_per_s": round(median_of(stream, "msgs_per_s")),
        "peak_rss_mb": round(median_of(stream, "peak_rss_mb"), 1),
        "includes_db_write": False,
        "cpu_msgs_per_s": round(median_of(stream, "cpu_msgs_per_s")),
        "load_average": round(os.getloadavg()[0], 2),
    }
    if base:
        report["baseline_msgs_per_s"] = round(median_of(base, "msgs_per_s"))
        report["baseline_peak_rss_mb"] = round(median_of(base, "peak_rss_mb"), 1)
        report["baseline_cpu_msgs_per_s"] = round(median_of(base, "cpu_msgs_per_s"))
        report["speed_ratio"] = round(report["msgs_per_s"] / report["baseline_msgs_per_s"], 2)
        report["rss_ratio"] = round(report["baseline_peak_rss_mb"] / report["peak_rss_mb"], 2)
    if results["stream-db"]:
        report["db_msgs_per_s"] = round(median_of(results["stream-db"], "msgs_per_s"))
        report["db_peak_rss_mb"] = round(median_of(results["stream-db"], "peak_rss_mb"), 1)
        report["db_vs_stream"] = round(report["db_msgs_per_s"] / report["msgs_per_s"], 2)
    if results["live-db"]:
        report["live_db_msgs_per_s"] = round(median_of(results["live-db"], "msgs_per_s"))
        report["live_db_peak_rss_mb"] = round(median_of(results["live-db"], "peak_rss_mb"), 1)
    lines = [
        "",
        f"streaming (parse+map+features, no DB): {report['msgs_per_s']:,} msgs/s "
        f"({report['cpu_msgs_per_s']:,} per CPU-second), peak RSS "
        f"{report['peak_rss_mb']} MB   (targets: >= 50,000 msgs/s, <= 300 MB)",
    ]
    if base:
        lines += [
            f"baseline json.load:           {report['baseline_msgs_per_s']:,} msgs/s "
            f"({report['baseline_cpu_msgs_per_s']:,} per CPU-second), peak RSS "
            f"{report['baseline_peak_rss_mb']} MB",
            f"ratios: speed x{report['speed_ratio']} of baseline, baseline uses "
            f"x{report['rss_ratio']} the memory (load average {report['load_average']})",
        ]
    if "db_msgs_per_s" in report:
        lines.append(
            f"into PostgreSQL, bulk path:   {report['db_msgs_per_s']:,} msgs/s, peak RSS "
            f"{report['db_peak_rss_mb']} MB, x{report['db_vs_stream']} of streaming "
            "(targets: >= 50,000 msgs/s, >= x0.70)"
        )
    if "live_db_msgs_per_s" in report:
        lines.append(
            f"into PostgreSQL, live writer: {report['live_db_msgs_per_s']:,} msgs/s, peak RSS "
            f"{report['live_db_peak_rss_mb']} MB"
        )
    lines.append(json.dumps(report))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
