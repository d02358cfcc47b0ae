"""Workflow steps that touch the outside world: they compose the pure steps with MLflow.

The CLI and the notebooks call these; each returns plain data so callers decide
how to show it.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from features.masking import mask_pii
from features.predictor import TicketClassifier, to_model_input
from features.schema import TEXT_COLUMNS
from training.config import TrainConfig, config_to_yaml
from training.data import ValidationReport, prepare_training_frame, validate_tickets
from training.evaluate import (
    EvaluationReport,
    choose_thresholds,
    evaluate_probabilities,
    plot_confusion_matrix,
    plot_reliability,
    review_rate,
)
from training.pipelines import fit_model
from training.promote import PromotionDecision, decide_promotion
from training.settings import NightdeskSettings
from training.split import split_tickets
from training import tracking

Progress = Callable[[str], None]
VALIDATION_ARTIFACT = "evaluation/validation.parquet"


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    version: str
    report: EvaluationReport
    thresholds: dict[str, float]
    train_rows: int
    validation_rows: int


class DataError(ValueError):
    """Training data that cannot be used; carries the validation report."""

    def __init__(self, message: str, report: ValidationReport):
        super().__init__(message)
        self.report = report


def train_task(
    frame: pd.DataFrame,
    task: str,
    config: TrainConfig,
    settings: NightdeskSettings,
    *,
    source: str = "dataframe",
    progress: Progress = _quiet,
    tags: dict[str, str] | None = None,
    sample_weight_column: str | None = None,
    split: Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]] | None = None,
) -> TrainResult:
    """Validate, split, fit, evaluate, log and register a candidate model for ``task``.

    ``split`` turns the usable tickets into training and validation parts (default:
    ``config.split``); ``sample_weight_column`` names a column of per-ticket weights.
    """
    progress("validating data")
    validation = validate_tickets(frame, tasks=[task], category_labels=config.category_labels)
    if not validation.ok:
        raise DataError(f"{source}: the data cannot be used for {task}: " + "; ".join(validation.errors), validation)
    usable = prepare_training_frame(frame, task, validation)
    progress("splitting")
    train, held_out = split(usable) if split else split_tickets(usable, task, config.split, config.seed)
    progress(f"fitting on {len(train):,} tickets")
    weights = None if sample_weight_column is None else train[sample_weight_column].to_numpy(dtype=float)
    classifier = fit_model(train, task, config, sample_weight=weights)
    progress(f"evaluating on {len(held_out):,} tickets")
    probabilities = classifier.predict_proba(held_out)
    report = evaluate_probabilities(held_out[task], probabilities, classifier.labels, config.evaluation.calibration_bins)
    thresholds = choose_thresholds(
        held_out[task], probabilities, classifier.labels,
        config.evaluation.target_precision, config.evaluation.min_threshold,
    )
    classifier = replace(classifier, thresholds=thresholds)
    progress("logging to MLflow")
    client = tracking.connect(settings)
    experiment_id = tracking.ensure_experiment(settings, task)
    with mlflow.start_run(experiment_id=experiment_id, tags={"task": task, "source": source,
                                                                "model_type": config.model_type, **(tags or {})}) as run:
        _log_training_run(run.info.run_id, task, config, usable, train, held_out, validation, report, probabilities,
                          classifier, thresholds, source)
        mlflow.log_params(tracking.runtime_params(classifier))
        logged = tracking.log_classifier(classifier, train, settings)
    tracking.set_alias(client, settings, task, tracking.CANDIDATE, logged.version)
    client.set_model_version_tag(logged.registered_name, logged.version, "run_id", run.info.run_id)
    client.set_model_version_tag(logged.registered_name, logged.version, "model_type", config.model_type)
    return TrainResult(
        run_id=run.info.run_id,
        model_uri=f"models:/{logged.registered_name}/{logged.version}",
        version=logged.version,
        report=report,
        thresholds=thresholds,
        train_rows=len(train),
        validation_rows=len(held_out),
    )


def _log_training_run(run_id, task, config, usable, train, held_out, validation, report, probabilities,
                      classifier, thresholds, source) -> None:
    mlflow.log_params(_flat_params(config.model_dump(mode="json")))
    mlflow.log_params({"task": task, "train_rows": len(train), "validation_rows": len(held_out),
                       "n_classes": len(classifier.labels)})
    mlflow.log_metrics(report.flat_metrics())
    mlflow.log_metric("review_rate", review_rate(probabilities, classifier.labels, thresholds))
    mlflow.log_text(config_to_yaml(config), "config/resolved.yaml")
    mlflow.log_dict(report.to_dict(), "evaluation/report.json")
    mlflow.log_dict(thresholds, "evaluation/thresholds.json")
    mlflow.log_dict(data_profile(usable, train, held_out, task, validation), "data/profile.json")
    confidence = probabilities.max(axis=1)
    correct = np.asarray(classifier.labels, dtype=object)[probabilities.argmax(axis=1)] == held_out[task].astype(str).to_numpy()
    mlflow.log_figure(plot_confusion_matrix(report, f"{task}: confusion matrix"), "evaluation/confusion_matrix.png")
    mlflow.log_figure(plot_reliability(confidence, correct, config.evaluation.calibration_bins,
                                       f"{task}: reliability (ECE {report.expected_calibration_error:.3f})"),
                      "evaluation/reliability.png")
    with warnings.catch_warnings():
        # A local path is a valid source for several dataset source kinds; any of them will do.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(_loggable(mask_texts(usable)), source=source,
                                          name=f"{task}-training-data", targets=task)
    mlflow.log_input(dataset, context="training")
    _log_frame(mask_texts(held_out), VALIDATION_ARTIFACT)


def mask_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with personal data masked in the text columns: nothing unmasked is stored."""
    masked = frame.copy()
    for column in TEXT_COLUMNS:
        if column in masked.columns:
            masked[column] = [mask_pii(v) if isinstance(v, str) else v for v in masked[column]]
    return masked


def _loggable(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain column types for MLflow's dataset schema (time zones and objects as text)."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype) or out[column].dtype == object:
            out[column] = out[column].astype("string")
    return out


def _log_frame(frame: pd.DataFrame, artifact_path: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(artifact_path).name
        _loggable(frame).to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(artifact_path).parent))


def _flat_params(values: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flat_params(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return flat


def data_profile(usable: pd.DataFrame, train: pd.DataFrame, held_out: pd.DataFrame, task: str,
                 validation: ValidationReport) -> dict:
    text_length = sum(usable[c].fillna("").astype(str).str.len() for c in TEXT_COLUMNS if c in usable.columns)
    profile = {
        "rows_usable": len(usable),
        "rows_train": len(train),
        "rows_validation": len(held_out),
        "dropped": dict(usable.attrs.get("dropped", {})),
        "labels_train": train[task].astype(str).value_counts().to_dict(),
        "labels_validation": held_out[task].astype(str).value_counts().to_dict(),
        "text_length": {q: float(text_length.quantile(p)) for q, p in (("p10", .1), ("median", .5), ("p90", .9))},
        "validation_report": validation.to_dict(),
    }
    for column in ("language", "channel", "customer_tier"):
        if column in usable.columns:
            profile[column] = usable[column].fillna("missing").astype(str).value_counts().head(20).to_dict()
    return profile


def predict_probabilities(model, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class probabilities from a pyfunc model's answer, in the model's own label order."""
    answer = model.predict(to_model_input(frame))
    labels = tuple(answer["probabilities"].iloc[0].keys())
    matrix = np.asarray([[row[label] for label in labels] for row in answer["probabilities"]], dtype=float)
    return matrix, labels


def evaluate_model(frame: pd.DataFrame, task: str, model_uri: str, settings: NightdeskSettings,
                   calibration_bins: int = 10) -> EvaluationReport:
    """Score labelled tickets with any logged model (through its pyfunc interface)."""
    tracking.connect(settings)
    labelled = frame[frame[task].notna()] if task in frame.columns else None
    if labelled is None or labelled.empty:
        raise ValueError(f"the data has no {task} labels to evaluate against")
    model = mlflow.pyfunc.load_model(model_uri)
    probabilities, labels = predict_probabilities(model, labelled)
    return evaluate_probabilities(labelled[task], probabilities, labels, calibration_bins)


@dataclass(frozen=True)
class PromotionOutcome:
    decision: PromotionDecision
    candidate_version: str
    champion_version: str | None
    candidate_report: EvaluationReport
    champion_report: EvaluationReport | None
    evaluation_rows: int


def promote_task(task: str, config: TrainConfig, settings: NightdeskSettings,
                 evaluation_frame: pd.DataFrame | None = None,
                 behaviour_checks: Callable[[TicketClassifier], list[str]] | None = None) -> PromotionOutcome:
    """Move ``champion`` to the candidate if it passes the gate on the same evaluation data.

    ``behaviour_checks`` adds conditions on the candidate's classifier (e.g. the behavioural
    checks of ``training.behaviour``): each reason it returns rejects the candidate.
    """
    client = tracking.connect(settings)
    candidate = tracking.version_by_alias(client, settings, task, tracking.CANDIDATE)
    if candidate is None:
        raise LookupError(f"{settings.model_name(task)} has no '{tracking.CANDIDATE}' version; train one first")
    champion = tracking.version_by_alias(client, settings, task, tracking.CHAMPION)
    if evaluation_frame is None:
        evaluation_frame = _candidate_validation_split(client, candidate)
    uri = f"models:/{settings.model_name(task)}/{{}}"
    candidate_report = evaluate_model(evaluation_frame, task, uri.format(candidate.version), settings,
                                      config.evaluation.calibration_bins)
    champion_report = None
    if champion is not None:
        champion_report = evaluate_model(evaluation_frame, task, uri.format(champion.version), settings,
                                         config.evaluation.calibration_bins)
    decision = decide_promotion(candidate_report, champion_report, config.promotion)
    if behaviour_checks is not None:
        failures = behaviour_checks(tracking.load_classifier(uri.format(candidate.version)))
        decision = PromotionDecision(decision.promote and not failures,
                                     [*decision.reasons, *(failures or ["behaviour: every check passed"])])
    # Version numbers come back as int from SQL stores and as str over REST: compare and report them as text.
    candidate_version, champion_version = str(candidate.version), (str(champion.version) if champion else None)
    if champion_version == candidate_version:
        decision = PromotionDecision(False, [f"version {candidate_version} is already the champion"])
    outcome = PromotionOutcome(decision, candidate_version, champion_version,
                               candidate_report, champion_report, len(evaluation_frame))
    _log_promotion(client, settings, task, outcome)
    if decision.promote:
        tracking.set_alias(client, settings, task, tracking.CHAMPION, candidate.version)
    return outcome


def _candidate_validation_split(client: MlflowClient, candidate) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        run_id = candidate.run_id or candidate.tags.get("run_id")
        path = client.download_artifacts(run_id, VALIDATION_ARTIFACT, folder)
        return pd.read_parquet(path)


def _log_promotion(client: MlflowClient, settings: NightdeskSettings, task: str, outcome: PromotionOutcome) -> None:
    """Record the gate's decision and reasons as a run of its own and on the model version."""
    experiment_id = tracking.ensure_experiment(settings, task)
    verdict = "promoted" if outcome.decision.promote else "rejected"
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"promote-v{outcome.candidate_version}",
                          tags={"task": task, "kind": "promotion", "decision": verdict}):
        mlflow.log_params({"candidate_version": outcome.candidate_version,
                           "champion_version": outcome.champion_version or "none",
                           "evaluation_rows": outcome.evaluation_rows})
        mlflow.log_metrics({f"candidate_{k}": v for k, v in outcome.candidate_report.flat_metrics().items()})
        if outcome.champion_report is not None:
            mlflow.log_metrics({f"champion_{k}": v for k, v in outcome.champion_report.flat_metrics().items()})
        mlflow.log_dict({"decision": verdict, "reasons": outcome.decision.reasons}, "promotion/decision.json")
    name = settings.model_name(task)
    client.set_model_version_tag(name, outcome.candidate_version, "promotion_decision", verdict)
    client.set_model_version_tag(name, outcome.candidate_version, "promotion_reasons",
                                 " | ".join(outcome.decision.reasons)[:4900])


def load_alias_classifier(task: str, settings: NightdeskSettings, alias: str = tracking.CHAMPION) -> TicketClassifier:
    tracking.connect(settings)
    return tracking.load_classifier(tracking.alias_uri(settings, task, alias))


@dataclass(frozen=True)
class RetrainOutcome:
    training: TrainResult
    promotion: PromotionOutcome
    corrections: dict  # the ledger: which corrections the candidate learnt from
    counts: dict[str, int]  # what applying the corrections did (overridden, added, duplicates dropped)


CORRECTIONS_ARTIFACT = "corrections/applied.json"


def retrain_task(history: pd.DataFrame, corrections: pd.DataFrame, task: str, config: TrainConfig,
                 settings: NightdeskSettings, *, source: str = "dataframe",
                 progress: Progress = _quiet) -> RetrainOutcome:
    """History plus agents' corrections -> weighted candidate -> gate with behavioural checks -> champion.

    The candidate trains on the history with the corrections applied (corrected
    tickets weigh ``config.retrain.correction_weight``) minus a time-ordered holdout
    of recent uncorrected tickets; candidate and champion are scored on that same
    holdout. The run and the model version record which corrections went in.
    """
    from training.behaviour import behaviour_failures
    from training.retrain import WEIGHT, build_training_set, correction_ledger, split_for_retraining

    progress("applying corrections")
    training_set = build_training_set(history, corrections, task, config.retrain.correction_weight)
    parts: dict[str, pd.DataFrame] = {}

    def split(usable: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        parts["train"], parts["holdout"] = split_for_retraining(
            usable, config.retrain.holdout_fraction, task, config.seed)
        return parts["train"], parts["holdout"]

    trained = train_task(training_set, task, config, settings, source=source, progress=progress,
                         tags={"kind": "retrain"}, sample_weight_column=WEIGHT, split=split)
    ledger = correction_ledger(corrections, parts["train"], task)
    client = tracking.connect(settings)
    for key, value in ledger.tags().items():
        client.set_tag(trained.run_id, key, value)
        client.set_model_version_tag(settings.model_name(task), trained.version, key, value)
    client.log_dict(trained.run_id, {**ledger.to_dict(), "counts": training_set.attrs["retrain"]},
                    CORRECTIONS_ARTIFACT)
    progress("promotion gate")
    checks = behaviour_failures if config.retrain.behaviour_checks else None
    promotion = promote_task(task, config, settings, parts["holdout"], behaviour_checks=checks)
    return RetrainOutcome(trained, promotion, ledger.to_dict(), dict(training_set.attrs["retrain"]))
