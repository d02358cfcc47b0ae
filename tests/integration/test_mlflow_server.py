"""Training and promotion against a real `mlflow server` on loopback (REST tracking, registry, proxied artifacts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.config import load_config
from training.settings import NightdeskSettings
from training.workflows import load_alias_classifier, promote_task, train_task

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 120  # seconds; a cold start creates the database schema
SHUTDOWN_TIMEOUT = 20


@dataclass(frozen=True)
class Server:
    url: str
    root: Path  # backend database and artifact destination live here
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no attempt"
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            pytest.fail(f"mlflow server exited with status {code} before it was healthy:\n{log_tail(server.log)}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = repr(error)
        time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {STARTUP_TIMEOUT}s (last: {last_error}):\n{log_tail(server.log)}")


def stop(process: subprocess.Popen) -> None:
    """Terminate the server's process group (it runs workers), then kill it if it does not go."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("wb") as output:
        # A session of its own: the server is the leader of a process group we can stop as a whole.
        process = subprocess.Popen(command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Server(url=f"http://127.0.0.1:{port}", root=root, process=process, log=log)
    try:
        wait_until_healthy(server)
        yield server
    finally:
        stop(process)
    assert process.poll() is not None, "mlflow server still running after teardown"


@pytest.fixture
def server_settings(mlflow_server, tmp_path, monkeypatch) -> NightdeskSettings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NIGHTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    for name in ("MLFLOW_REGISTRY_URI", "NIGHTDESK_TRACKING_URI", "NIGHTDESK_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    settings = NightdeskSettings(_env_file=None)
    assert settings.tracking_uri == settings.registry_uri == mlflow_server.url
    yield settings
    mlflow.set_tracking_uri(None)  # no later test may talk to a stopped server
    mlflow.set_registry_uri(None)


def test_train_and_promote_through_the_server(mlflow_server, server_settings, tickets):
    task = "sentiment"
    config = load_config(task)

    trained = train_task(tickets, task, config, server_settings, source="generated-sample")
    outcome = promote_task(task, config, server_settings)

    assert outcome.decision.promote, outcome.decision.reasons
    assert outcome.candidate_version == trained.version
    assert outcome.champion_version is None
    assert outcome.evaluation_rows == trained.validation_rows == 300

    # Everything is visible through the server's REST API.
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    model = client.get_registered_model("nightdesk-sentiment")
    assert model.name == "nightdesk-sentiment"
    assert {"champion", "candidate"} <= set(model.aliases)
    champion = client.get_model_version_by_alias("nightdesk-sentiment", "champion")
    assert str(champion.version) == trained.version
    assert champion.run_id == trained.run_id
    assert champion.tags["promotion_decision"] == "promoted"

    run = client.get_run(trained.run_id)
    assert run.data.tags["task"] == task
    assert run.data.metrics["macro_f1"] == pytest.approx(trained.report.macro_f1)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "nightdesk-sentiment"
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    promotions = client.search_runs([run.info.experiment_id], "tags.kind = 'promotion'")
    assert [r.data.tags["decision"] for r in promotions] == ["promoted"]

    # Artifacts were uploaded through the server into its artifacts destination.
    stored = {p.name for p in (mlflow_server.root / "artifacts").rglob("*") if p.is_file()}
    assert {"validation.parquet", "confusion_matrix.png", "MLmodel", "classifier.joblib"} <= stored

    # And the champion loads back through the server and scores tickets.
    classifier = load_alias_classifier(task, server_settings)
    answer = classifier.predict_frame(pd.DataFrame({"body": ["Thank you so much, great service!"]}))
    assert answer["label"].tolist() == ["positive"]


def test_server_process_is_up_while_tests_run(mlflow_server):
    assert mlflow_server.process.poll() is None
    with urllib.request.urlopen(f"{mlflow_server.url}/health", timeout=5) as response:
        assert response.status == 200
