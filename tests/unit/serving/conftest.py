"""Serving fixtures: the BentoML app in-process (``to_asgi``) on a trained registry."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from features.schema import TICKET_COLUMNS


def ticket_payloads(frame: pd.DataFrame, count: int) -> list[dict]:
    """The first ``count`` tickets as JSON request bodies (missing values omitted)."""
    rows = frame[list(TICKET_COLUMNS)].head(count).to_dict("records")
    return [{k: _json_value(v) for k, v in row.items() if not pd.isna(v)} for row in rows]


def _json_value(value):
    return value.isoformat() if isinstance(value, pd.Timestamp) else value


def serving_client(home: Path, **env: str) -> Iterator:
    """A TestClient on a fresh ``Nightdesk`` ASGI app whose models load from ``home``."""
    from starlette.testclient import TestClient

    from serving.service import Nightdesk

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(home)
        monkeypatch.setenv("NIGHTDESK_HOME", str(home))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "NIGHTDESK_TRACKING_URI", "NIGHTDESK_REGISTRY_URI"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # starlette's TestClient on httpx
            with TestClient(Nightdesk.to_asgi(), raise_server_exceptions=False) as client:
                yield client


@pytest.fixture(scope="session")
def _app_client(trained_registry):
    # One app per process: BentoML registers its Prometheus metrics once per app.
    yield from serving_client(trained_registry.home)


@pytest.fixture
def client(_app_client, service):
    """The in-process API; settings and models a test swaps are put back afterwards."""
    settings, models = service.settings, service.models
    yield _app_client
    service.settings, service.models = settings, models


@pytest.fixture
def service(_app_client):
    import bentoml

    return bentoml.get_current_service()




@pytest.fixture(scope="session")
def sentiment_missing_home(trained_registry, tmp_path_factory) -> Path:
    """A copy of the registry whose sentiment model has no champion (artifacts stay shared)."""
    from mlflow import MlflowClient

    home = tmp_path_factory.mktemp("no_sentiment")
    shutil.copy(trained_registry.home / "mlflow.db", home / "mlflow.db")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).delete_registered_model_alias("nightdesk-sentiment", "champion")
    return home


@pytest.fixture(scope="session")
def payloads(tickets) -> list[dict]:
    return ticket_payloads(tickets, 40)
