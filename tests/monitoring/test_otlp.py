"""OTLP push to a real OpenTelemetry collector (rotel), over HTTP and gRPC.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, ``tgstats serve`` pushes the same instruments it
serves at ``/metrics`` to the collector; ``/metrics`` stays on. rotel (a collector in a
PyPI wheel) receives OTLP on both transports and, with ``--debug-log metrics``, logs every
metric it got; the test reads the names from that log.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.monitoring.service import running_service, workload
from tests.resilience.processes import free_port

SEED_METRICS = {
    "bot_messages_processed",
    "bot_commands_executed",
    "bot_reactions_tracked",
    "bot_request_duration_seconds",
    "bot_db_query_duration_seconds",
    "bot_active_chats",
    "bot_db_connections",
    "bot_errors",
}


def _rotel_binary() -> Path:
    import rotel

    return Path(rotel.__file__).parent / "rotel-agent"


def _received_names(log: Path) -> set[str]:
    return set(re.findall(r"-> Name: (\S+)", log.read_text(errors="replace")))


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_metrics_pushed_over_otlp_with_the_same_names(protocol: str) -> None:
    work_dir = Path(tempfile.mkdtemp(prefix="tgstats-otlp-"))
    grpc_port, http_port = free_port(), free_port()
    log = work_dir / "rotel.log"
    with log.open("wb") as out:
        collector = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [
                str(_rotel_binary()), "start",
                "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
                "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
                "--exporter", "blackhole",
                "--debug-log", "metrics", "--debug-log-verbosity", "detailed",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        port = grpc_port if protocol == "grpc" else http_port
        for _ in range(50):
            if "Starting Rotel" in log.read_text(errors="replace"):
                break
            await asyncio.sleep(0.1)
        async with running_service(
            work_dir,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_METRIC_EXPORT_INTERVAL="500",
        ) as service:
            await workload(service, rounds=2, work_dir=work_dir, with_import=False)
            for _ in range(60):  # pushed every 500 ms
                if SEED_METRICS <= _received_names(log):
                    break
                await asyncio.sleep(0.5)
            # the Prometheus endpoint is still served, with the same instruments
            async with httpx.AsyncClient(base_url=service.base_url) as client:
                scrape = await client.get("/metrics")
            assert scrape.status_code == 200
            assert "bot_messages_processed_total{" in scrape.text
        received = _received_names(log)
        assert SEED_METRICS <= received, SEED_METRICS - received
        text = log.read_text(errors="replace")
        assert "service.name: Str(tgstats)" in text
        assert "handler: Str(command:top)" in text
    finally:
        collector.terminate()
        collector.wait(10)
