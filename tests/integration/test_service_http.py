"""The real server: `bentoml serve` on a free loopback port against champions trained on the sample.

BentoML puts each worker in a process group of its own: the server is stopped
through its arbiter (SIGTERM), and anything still alive after that is killed by PID.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest

from features.predictor import to_model_input
from features.schema import TASKS, TICKET_COLUMNS
from live_service import free_port, wait_ready

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
#: A stopped server must be gone within this many seconds, requests in flight or not.
SHUTDOWN_LIMIT_S = 10


@pytest.fixture(scope="module")
def running(trained_registry, tmp_path_factory):
    """The server process and a client on it (stopped at the end of the module if a test has not)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "NIGHTDESK_"))}
    env.update(NIGHTDESK_HOME=str(trained_registry.home), MLFLOW_DISABLE_TELEMETRY="true",
               BENTOML_HOME=str(tmp_path_factory.mktemp("bentoml")))
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w+")
    bentoml = Path(sys.executable).with_name("bentoml")
    process = subprocess.Popen(
        [str(bentoml), "serve", "serving.service:Nightdesk", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log)
        with httpx.Client(base_url=base, timeout=30) as client:
            yield process, client
    finally:
        if process.poll() is None:
            _stop(process)
        log.close()


@pytest.fixture
def server(running):
    return running[1]


def _stop(process: subprocess.Popen, timeout_s: float = 30) -> float:
    """SIGTERM to the arbiter; seconds until every process of the server is gone (killed after ``timeout_s``)."""
    import psutil

    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=timeout_s)
    for leftover in alive:
        leftover.kill()
    process.wait()
    return time.monotonic() - started



@pytest.fixture(scope="module")
def payloads(tickets) -> list[dict]:
    rows = tickets[list(TICKET_COLUMNS)].head(25).to_dict("records")
    return [{k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items() if not pd.isna(v)}
            for r in rows]


def _counted_predictions(metrics: str) -> dict[str, float]:
    """Per task, the sum of ``nightdesk_predictions_total`` over its labels."""
    counted: dict[str, float] = {}
    for labels, value in re.findall(r"^nightdesk_predictions_total{([^}]*)} ([0-9.e+]+)$", metrics, re.M):
        task = re.search(r'task="([^"]+)"', labels).group(1)
        counted[task] = counted.get(task, 0.0) + float(value)
    return counted


def test_every_endpoint_answers(server, payloads):
    assert server.get("/healthz").status_code == 200
    assert server.get("/readyz").status_code == 200
    counted_before = _counted_predictions(server.get("/metrics").text)
    single = server.post("/predict", json=payloads[0])
    assert single.status_code == 200 and set(single.json()["predictions"]) == set(TASKS)
    batch = server.post("/predict_batch", json={"tickets": payloads})
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == len(payloads)
    models = server.get("/models").json()["models"]
    assert [m["status"] for m in models] == ["loaded"] * 3
    assert {"/predict", "/predict_batch", "/models"} <= set(server.get("/docs.json").json()["paths"])
    metrics = server.get("/metrics").text
    assert "nightdesk_predictions_total" in metrics and "nightdesk_needs_review" in metrics
    counted = _counted_predictions(metrics)
    assert {task: counted[task] - counted_before.get(task, 0.0) for task in TASKS} == {
        task: 1 + len(payloads) for task in TASKS}
    assert "bentoml_service_request_duration_seconds_bucket" in metrics


def test_served_equals_in_process_prediction(server, payloads, trained_registry):
    served = server.post("/predict_batch", json={"tickets": payloads}).json()["predictions"]
    singles = [server.post("/predict", json=p).json() for p in payloads[:5]]
    mlflow.set_tracking_uri(trained_registry.settings().tracking_uri)
    mlflow.set_registry_uri(trained_registry.settings().registry_uri)
    frame = to_model_input(pd.DataFrame(payloads))
    for task in TASKS:
        expected = mlflow.pyfunc.load_model(f"models:/nightdesk-{task}@champion").predict(frame)
        rows = expected.to_dict(orient="records")
        for row, answer in zip(rows, served):
            got = answer["predictions"][task]
            assert (got["label"], got["probabilities"], got["needs_review"]) == (
                row["label"], row["probabilities"], row["needs_review"])
        for row, answer in zip(rows, singles):
            assert answer["predictions"][task]["probabilities"] == row["probabilities"]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b'{"id": "T-1", "body": "caf\xe9 \xff"}', 400, "json_invalid"),
        (b'{"id": "T-1", "body": "x", "customer_timezone": "Mars/Base"}', 400, "customer_timezone"),
        (b'{"id": "T-1", "body": "x", "created_at": "2026-01-05T02:08:17"}', 400, "created_at"),
        (b'{"id": "T-1", "body": "x", "extra": 1}', 400, "extra"),
        (b'{"id": "T-1", "body": "' + b"a" * (3 * 1024 * 1024) + b'"}', 400, "body"),
        (b'{"id": "T-1", "body": "' + b"a" * (17 * 1024 * 1024) + b'"}', 413, "limit"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field(server, body, status, named):
    response = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status and named in response.text


def test_batch_over_the_limit_is_refused(server, payloads):
    response = server.post("/predict_batch", json={"tickets": payloads[:1] * 1001})
    assert response.status_code == 400 and "the limit is 1000" in response.text
    assert server.post("/predict", json=payloads[0]).status_code == 200


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, payloads):
    sequential = {p["id"]: server.post("/predict", json=p).json()["predictions"] for p in payloads[:16]}

    async def burst():
        async with httpx.AsyncClient(base_url=str(server.base_url), timeout=30) as client:
            return await asyncio.gather(*(client.post("/predict", json=p) for p in payloads[:16] * 4))

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 64
    for answer, sent in zip(answers, payloads[:16] * 4):
        assert answer.json()["ticket_id"] == sent["id"]
        assert answer.json()["predictions"] == sequential[sent["id"]]
    calls = re.search(r"^nightdesk_scoring_batch_size_count(?:{[^}]*})? ([0-9.e+]+)$",
                      server.get("/metrics").text, re.M)
    scored = re.search(r"^nightdesk_scoring_batch_size_sum(?:{[^}]*})? ([0-9.e+]+)$",
                       server.get("/metrics").text, re.M)
    assert calls and scored and float(scored.group(1)) > float(calls.group(1))  # some calls held several tickets


def test_shutdown_is_prompt_with_requests_in_flight(running, payloads):
    """Last in the module: it stops the server."""
    process, server = running
    base = str(server.base_url)

    async def keep_sending(stop: asyncio.Event):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while not stop.is_set():
                try:
                    await client.post("/predict_batch", json={"tickets": payloads})
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)

    async def stop_while_busy() -> float:
        stop = asyncio.Event()
        senders = [asyncio.create_task(keep_sending(stop)) for _ in range(8)]
        await asyncio.sleep(1.0)
        took = await asyncio.to_thread(_stop, process, SHUTDOWN_LIMIT_S)
        stop.set()
        await asyncio.gather(*senders)
        return took

    assert asyncio.run(stop_while_busy()) < SHUTDOWN_LIMIT_S
