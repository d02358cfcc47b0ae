"""Build and fit the default model of a task: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.svm import LinearSVC

from features.predictor import TicketClassifier, normalize_tickets, readable_feature_names
from features.schema import TEXT_COLUMNS, TicketColumn
from features.transformers import LocalTimeFeatures, TicketTextFeatures, fill_missing_category
from training.config import ModelConfig, TrainConfig, load_config

CATEGORICAL_COLUMNS = [TicketColumn.CHANNEL.value, TicketColumn.CUSTOMER_TIER.value]
TIME_COLUMNS = [TicketColumn.CREATED_AT.value, TicketColumn.CUSTOMER_TIMEZONE.value]


def build_features(config: TrainConfig) -> ColumnTransformer:
    f = config.features
    parts = [
        (
            "text",
            TicketTextFeatures(
                word_ngram_range=f.word_ngram_range,
                char_ngram_range=f.char_ngram_range,
                min_df=f.min_df,
                max_word_features=f.max_word_features,
                max_char_features=f.max_char_features,
                sublinear_tf=f.sublinear_tf,
                mask_mentions=f.mask_mentions,
            ),
            list(TEXT_COLUMNS),
        )
    ]
    if f.metadata:
        # The weight is a step of each block (not ColumnTransformer's
        # transformer_weights) so that every consumer of the fitted parts,
        # including TicketClassifier's direct transform, sees the same values.
        weight = _weight_step(f.metadata_weight)
        categories = make_pipeline(
            FunctionTransformer(fill_missing_category, feature_names_out="one-to-one"),
            OneHotEncoder(handle_unknown="ignore", min_frequency=5),
            weight,
        )
        clock = make_pipeline(LocalTimeFeatures(f.business_start_hour, f.business_end_hour), weight)
        parts += [("meta", categories, CATEGORICAL_COLUMNS), ("time", clock, TIME_COLUMNS)]
    # Always sparse, so explanations can walk each row's non-zero features.
    return ColumnTransformer(parts, sparse_threshold=1.0)


def scale_block(X, weight: float):
    """``X`` times a constant; module-level so that fitted pipelines pickle."""
    return X * weight


def _weight_step(weight: float) -> FunctionTransformer:
    return FunctionTransformer(
        scale_block, kw_args={"weight": weight}, accept_sparse=True, feature_names_out="one-to-one"
    )


def build_classifier(config: TrainConfig):
    m = config.model
    if m.kind == "logistic_regression":
        return LogisticRegression(
            C=m.C, class_weight=m.class_weight, max_iter=m.max_iter, tol=m.tol, random_state=config.seed
        )
    svm = LinearSVC(
        C=m.C,
        class_weight=m.class_weight,
        multi_class=m.multi_class,
        max_iter=m.max_iter,
        tol=m.tol,
        random_state=config.seed,
    )
    # ensemble=False: one SVM fitted on all the data (its weights explain predictions),
    # calibrated on cross-validated decision values so probabilities are honest.
    # fit_classifier switches large training sets to a held-out slice (calibration_split).
    return CalibratedClassifierCV(svm, method=m.calibration_method, cv=m.calibration_folds, ensemble=False)


def build_pipeline(task: str, config: TrainConfig) -> Pipeline:
    """The untrained pipeline for ``task``: ticket columns in, class probabilities out."""
    del task  # every task shares the default architecture; configs differ per task
    return Pipeline([("features", build_features(config)), ("classifier", build_classifier(config))])


def calibration_folds(labels: pd.Series, wanted: int) -> int:
    """Fewer folds when the rarest class is too small for ``wanted`` stratified folds."""
    smallest = int(labels.value_counts().min())
    if smallest < 2:
        raise ValueError(
            f"every class needs at least 2 training examples; the rarest has {smallest} "
            f"({labels.value_counts().idxmin()!r})"
        )
    return min(wanted, smallest)


def calibration_split(labels: pd.Series, model: ModelConfig, seed: int) -> dict:
    """How the calibrator gets decision values it has not been trained on.

    Up to ``calibration_cv_max_rows`` tickets: cross-validation, then one SVM on all
    the data (every ticket counts on small data). Beyond: one stratified held-out
    slice; the SVM is fitted once, on the rest, because each fold would cost a
    full fit on data that is already plentiful.
    """
    if len(labels) <= model.calibration_cv_max_rows:
        return {"cv": calibration_folds(labels, model.calibration_folds), "ensemble": False}
    calibration_folds(labels, 2)  # the same check: every class needs two examples
    rows = min(model.calibration_holdout_rows, len(labels) // model.calibration_folds)
    holdout = StratifiedShuffleSplit(n_splits=1, test_size=rows, random_state=seed)
    return {"cv": holdout, "ensemble": True}


def fit_classifier(
    train: pd.DataFrame,
    task: str,
    config: TrainConfig,
    *,
    sample_weight: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
) -> TicketClassifier:
    """Fit the task's pipeline on ``train`` (ticket columns plus the task's label column)."""
    labels = train[task].astype(str)
    if labels.nunique() < 2:
        raise ValueError(f"{task}: training data has a single class ({labels.iloc[0]!r}); need at least two")
    pipeline = build_pipeline(task, config)
    classifier = pipeline.named_steps["classifier"]
    if isinstance(classifier, CalibratedClassifierCV):
        classifier.set_params(**calibration_split(labels, config.model, config.seed))
    tickets, _ = normalize_tickets(train, config.max_text_chars)
    fit_params = {} if sample_weight is None else {"classifier__sample_weight": sample_weight}
    pipeline.fit(tickets, labels.to_numpy(), **fit_params)
    return TicketClassifier(
        task=task,
        pipeline=pipeline,
        labels=tuple(str(c) for c in pipeline.classes_),
        thresholds=dict(thresholds or {}),
        max_text_chars=config.max_text_chars,
        feature_names=readable_feature_names(pipeline.named_steps["features"].get_feature_names_out()),
    )


def fit_classifiers(
    train: pd.DataFrame,
    tasks: Sequence[str],
    configs: Mapping[str, TrainConfig] | None = None,
    *,
    n_jobs: int = 2,
) -> dict[str, TicketClassifier]:
    """Fit several tasks' models on the same tickets, in parallel processes.

    Each fit is single-threaded (text features in Python, liblinear), so the
    tasks themselves are spread over ``n_jobs`` worker processes. ``configs``
    defaults to each task's packaged config.
    """
    configs = {task: (configs or {}).get(task) or load_config(task) for task in tasks}
    fitted = Parallel(n_jobs=min(n_jobs, len(tasks)))(
        delayed(fit_classifier)(train, task, configs[task]) for task in tasks
    )
    return dict(zip(tasks, fitted))


def _fit_transformer_kind(train: pd.DataFrame, task: str, config: TrainConfig, *,
                          sample_weight: np.ndarray | None = None):
    # Imported here: torch and transformers load only when a transformer kind is trained.
    from training.transformer import fit_transformer_model

    return fit_transformer_model(train, task, config, sample_weight=sample_weight)


#: How each ``model_type`` is fitted. Every kind returns an object with the
#: TicketClassifier interface (labels, predict_proba, predict_frame, thresholds).
MODEL_KINDS = {
    "tfidf": fit_classifier,
    "embedding": _fit_transformer_kind,
    "finetune": _fit_transformer_kind,
    "ensemble": _fit_transformer_kind,
}


def fit_model(train: pd.DataFrame, task: str, config: TrainConfig, *, sample_weight: np.ndarray | None = None):
    """Fit the kind of model ``config.model_type`` names (``tfidf`` is the default)."""
    return MODEL_KINDS[config.model_type](train, task, config, sample_weight=sample_weight)
