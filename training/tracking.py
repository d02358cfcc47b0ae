"""MLflow at the edge: experiments, runs, model logging, registry and aliases."""

from __future__ import annotations

import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Map, Schema

from features.predictor import TicketClassifier, to_model_input
from features.schema import INPUT_COLUMNS, TEXT_COLUMNS
from training.pyfunc import CLASSIFIER_ARTIFACT, NETWORK_ARTIFACT, TicketPyfuncModel
from training.settings import NightdeskSettings

CANDIDATE = "candidate"
CHAMPION = "champion"

#: What a logged model needs at load time. Listed explicitly: inferred requirements
#: would drag in everything imported in the training process (torch, pytest, ...).
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "cloudpickle")


def connect(settings: NightdeskSettings) -> MlflowClient:
    """Point MLflow at the configured tracking and registry stores (creating the home folder)."""
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    # We pickle our own PythonModel on purpose; MLflow's advice to log it from code does not apply.
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def ensure_experiment(settings: NightdeskSettings, task: str) -> str:
    """The task's experiment id, created with artifacts under NIGHTDESK_HOME when new."""
    name = settings.experiment_name(task)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if settings.tracking_uri.startswith("sqlite:"):
        location = (settings.artifact_root / task).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def pinned_requirements(extra: tuple[str, ...] = ()) -> list[str]:
    return [f"{name}=={_pip_version(name)}" for name in (*MODEL_REQUIREMENTS, *extra)]


def _pip_version(name: str) -> str:
    # A local build tag (torch's "+cpu") is not on PyPI: pin the public release.
    return importlib.metadata.version(name).split("+")[0]


def runtime_params(classifier) -> dict[str, str]:
    """How a transformer model runs (ONNX or PyTorch, and why); nothing for the TF-IDF kind."""
    model = getattr(classifier, "transformer", classifier)
    if not hasattr(model, "backend"):
        return {}
    params = {"backend": model.backend, "backend_note": model.backend_note[:500],
              "temperature": f"{getattr(classifier, 'temperature', model.temperature):.4f}"}
    if hasattr(classifier, "weight"):
        params["ensemble_transformer_weight"] = f"{classifier.weight:.2f}"
    return params


def model_signature() -> ModelSignature:
    inputs = Schema(
        [ColSpec(DataType.string, column, required=column in TEXT_COLUMNS) for column in INPUT_COLUMNS]
    )
    outputs = Schema(
        [
            ColSpec(DataType.string, "label"),
            ColSpec(DataType.double, "confidence"),
            ColSpec(DataType.boolean, "needs_review"),
            ColSpec(Map(DataType.double), "probabilities"),
            ColSpec(Array(DataType.string), "top_features"),
            ColSpec(DataType.boolean, "truncated"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str
    registered_name: str
    version: str


def log_classifier(
    classifier: TicketClassifier, example: pd.DataFrame, settings: NightdeskSettings
) -> LoggedModel:
    """Log the classifier as a pyfunc model in the active run and register it as ``nightdesk-<task>``."""
    name = settings.model_name(classifier.task)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "classifier.joblib"
        joblib.dump(classifier, path, compress=3)
        artifacts = {CLASSIFIER_ARTIFACT: str(path)}
        extra_requirements: tuple[str, ...] = ()
        if hasattr(classifier, "save_artifacts"):  # transformer kinds: weights and tokenizer as files
            artifacts[NETWORK_ARTIFACT] = str(classifier.save_artifacts(Path(folder) / NETWORK_ARTIFACT))
            extra_requirements = tuple(classifier.requirements())
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=TicketPyfuncModel(),
            artifacts=artifacts,
            signature=model_signature(),
            input_example=to_model_input(example.head(3)),
            pip_requirements=pinned_requirements(extra_requirements),
            registered_model_name=name,
        )
    return LoggedModel(model_uri=info.model_uri, registered_name=name, version=str(info.registered_model_version))


def set_alias(client: MlflowClient, settings: NightdeskSettings, task: str, alias: str, version: str) -> None:
    client.set_registered_model_alias(settings.model_name(task), alias, version)


def version_by_alias(client: MlflowClient, settings: NightdeskSettings, task: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(settings.model_name(task), alias)
    except MlflowException:
        return None


def alias_uri(settings: NightdeskSettings, task: str, alias: str) -> str:
    return f"models:/{settings.model_name(task)}@{alias}"


def load_classifier(model_uri: str) -> TicketClassifier:
    """The classifier inside a logged pyfunc model (for in-process scoring).

    A ``TicketClassifier`` or, for transformer kinds, an object with the same
    interface (``features.transformer_predictor``), its network already loaded.
    """
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().classifier
