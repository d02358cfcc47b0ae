"""Helpers of the end-to-end tests: a real `bentoml serve` on loopback, and a fresh database per test.

Shared by test_feedback_loop.py and test_console.py (imported as a sibling module:
pytest puts this folder on sys.path).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from postgres_databases import fresh_postgres_database

PROJECT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120


def ticket_payloads(frame, count: int) -> list[dict]:
    """The first ``count`` tickets of a ticket frame as JSON request bodies (missing values left out)."""
    import pandas as pd

    rows = frame[["id", "subject", "body", "channel", "customer_tier", "language", "created_at",
                  "customer_timezone"]].head(count).to_dict("records")
    return [{k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items() if not pd.isna(v)}
            for row in rows]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_service(home: Path, database_url: str, logs: Path, **env: str) -> Iterator[str]:
    """`bentoml serve serving.service:Nightdesk` on a free loopback port; yields its base URL.

    The server reads only ``home`` (MLflow) and ``database_url`` (the store); it is
    stopped by PID, never by name (``stop_server_tree``).
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NIGHTDESK_"))}
    environment.update(NIGHTDESK_HOME=str(home), NIGHTDESK_DATABASE_URL=database_url,
                       MLFLOW_DISABLE_TELEMETRY="true", BENTOML_HOME=str(logs / "bentoml"), **env)
    log = (logs / "server.log").open("w+")
    bentoml = Path(sys.executable).with_name("bentoml")
    process = subprocess.Popen(
        [str(bentoml), "serve", "serving.service:Nightdesk", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log)
        yield base
    finally:
        stop_server_tree(process)
        log.close()


def stop_server_tree(process: subprocess.Popen, timeout_s: float = 20) -> bool:
    """SIGTERM to the server (its arbiter stops the workers); whatever of its process tree is
    still running after ``timeout_s`` is killed by PID. True when it stopped by itself.

    BentoML starts each worker in a process group of its own, so signalling the server's
    group alone would orphan the workers: the tree is listed (by PID) before the signal.
    """
    import psutil

    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _, alive = psutil.wait_procs(tree, timeout=timeout_s)
    for leftover in alive:
        try:
            leftover.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    process.wait()
    return not alive


def server_log(logs: Path) -> str:
    return (logs / "server.log").read_text(errors="replace")[-4000:]


def wait_ready(base: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"bentoml serve exited with {process.returncode}:\n{log.read()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    log.seek(0)
    pytest.fail(f"not ready within {READY_TIMEOUT_S} s:\n{log.read()[-3000:]}")


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty store database: a SQLite file in ``folder``, or a PostgreSQL database
    created for this test on the server of ``NIGHTDESK_TEST_POSTGRES_URL`` (skipped without it)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'nightdesk.db'}"
        return
    yield from fresh_postgres_database("nightdesk_e2e")
