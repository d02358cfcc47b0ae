"""Shared fixtures: generated tickets, an isolated NIGHTDESK_HOME and a trained registry.

Everything MLflow writes goes to pytest's temporary folders; no test touches
``./.nightdesk``, a developer's ``.env`` or a tracking server from the environment.
"""

from __future__ import annotations

import os

# Before anything imports mlflow: no telemetry calls and no git probe in tests.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from postgres_databases import fresh_postgres_database  # noqa: E402

from features.schema import TASKS  # noqa: E402
from training.sample import generate_tickets, write_tickets  # noqa: E402

#: Settings variables that would point a test at state outside its temporary folder.
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "NIGHTDESK_TRACKING_URI", "NIGHTDESK_REGISTRY_URI",
              "NIGHTDESK_DATABASE_URL")

SAMPLE_ROWS = 1500
SAMPLE_SEED = 7


@pytest.fixture(scope="session")
def tickets() -> pd.DataFrame:
    """1,500 synthetic labelled tickets (shared: copy before changing)."""
    return generate_tickets(SAMPLE_ROWS, seed=SAMPLE_SEED)


@pytest.fixture
def nightdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty NIGHTDESK_HOME; MLflow defaults to a SQLite store inside it.

    The working directory moves to ``tmp_path`` too, so a ``.env`` in the
    repository cannot leak settings into the test.
    """
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NIGHTDESK_HOME", str(home))
    for name in MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema but nothing in it (creating one takes seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("empty-mlflow") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    assert path.is_file()
    return path


@pytest.fixture
def mlflow_home(nightdesk_home: Path, empty_mlflow_db: Path) -> Path:
    """``nightdesk_home`` with an empty, ready MLflow store: for tests that train or look up models."""
    nightdesk_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_mlflow_db, nightdesk_home / "mlflow.db")
    return nightdesk_home


@dataclass
class TrainedRegistry:
    """A NIGHTDESK_HOME with all three tasks trained and promoted through the CLI."""

    home: Path
    data: Path  # the generated sample, as CSV (what the CLI read)
    train_output: dict[str, str] = field(default_factory=dict)  # task -> stdout of `nightdesk train`
    promote_output: dict[str, str] = field(default_factory=dict)  # task -> stdout of `nightdesk promote`

    def settings(self):
        from training.settings import NightdeskSettings

        # Explicit Nones: the environment's tracking server must not win over this home.
        return NightdeskSettings(_env_file=None, home=self.home, MLFLOW_TRACKING_URI=None, MLFLOW_REGISTRY_URI=None)

    def copy_to(self, folder: Path) -> TrainedRegistry:
        """A private copy to change (train, promote) without affecting other tests.

        Only the database is copied: existing artifacts stay where they are (their
        locations are absolute), and new runs add new folders next to them.
        """
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.home / "mlflow.db", folder / "mlflow.db")
        return replace(self, home=folder)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point the environment (and the working directory) at this registry."""
        monkeypatch.chdir(self.home)
        monkeypatch.setenv("NIGHTDESK_HOME", str(self.home))
        for name in MLFLOW_ENV:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory, tickets: pd.DataFrame) -> TrainedRegistry:
    """Train urgency, category and sentiment once per session with `nightdesk train`, then promote each.

    About 15-25 s in all. Read-only: every task has exactly one version (1), which is
    both ``candidate`` and ``champion``. A test that trains or promotes again works on
    ``trained_registry.copy_to(tmp_path)`` instead.
    """
    from click.testing import CliRunner

    from training.cli import main

    home = tmp_path_factory.mktemp("registry")
    data = home / "tickets.csv"
    write_tickets(tickets, data)
    registry = TrainedRegistry(home=home, data=data)
    with pytest.MonkeyPatch.context() as monkeypatch:
        registry.env(monkeypatch)
        runner = CliRunner()
        for task in TASKS:
            trained = runner.invoke(main, ["train", "--task", task, "--data", str(data)])
            assert trained.exit_code == 0, f"nightdesk train --task {task} failed:\n{trained.output}\n{trained.exception!r}"
            registry.train_output[task] = trained.stdout
            promoted = runner.invoke(main, ["promote", "--task", task])
            assert promoted.exit_code == 0, f"nightdesk promote --task {task} failed:\n{promoted.output}"
            registry.promote_output[task] = promoted.stdout
    return registry


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store database: a SQLite file, or a fresh PostgreSQL database
    (skipped unless NIGHTDESK_TEST_POSTGRES_URL is set)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from fresh_postgres_database()
