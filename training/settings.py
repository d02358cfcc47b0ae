"""Settings of the training side (CLI, notebooks): one typed object from the environment or ``.env``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NightdeskSettings(BaseSettings):
    """Where Nightdesk keeps its state and which MLflow it talks to.

    ``NIGHTDESK_HOME`` is the working folder (SQLite stores, artifacts, keys);
    ``MLFLOW_TRACKING_URI`` overrides the default SQLite tracking store inside it.
    """

    model_config = SettingsConfigDict(env_prefix="NIGHTDESK_", env_file=".env", extra="ignore")

    home: Path = Path(".nightdesk")
    tracking_uri_override: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "NIGHTDESK_TRACKING_URI")
    )
    registry_uri_override: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_REGISTRY_URI", "NIGHTDESK_REGISTRY_URI")
    )
    database_url_override: str | None = Field(default=None, validation_alias="NIGHTDESK_DATABASE_URL")
    model_prefix: str = "nightdesk"

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        return self.tracking_uri_override or f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return self.registry_uri_override or self.tracking_uri

    @property
    def artifact_root(self) -> Path:
        return self.home_dir / "mlartifacts"

    @property
    def database_url(self) -> str:
        return self.database_url_override or f"sqlite:///{self.home_dir / 'nightdesk.db'}"

    def model_name(self, task: str) -> str:
        return f"{self.model_prefix}-{task}"

    def experiment_name(self, task: str) -> str:
        return f"{self.model_prefix}-{task}"


def quiet_mlflow() -> None:
    """No telemetry calls (Nightdesk may run with no network), no git probe, warnings only.

    Call at an edge (CLI, service, notebook) before MLflow is imported: MLflow reads
    its logging level from the environment when it is imported.
    """
    for name, value in (
        ("MLFLOW_DISABLE_TELEMETRY", "true"),
        ("MLFLOW_LOGGING_LEVEL", "WARNING"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        ("GIT_PYTHON_REFRESH", "quiet"),
    ):
        os.environ.setdefault(name, value)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
