"""The saved model: a fitted pipeline that owns its labels, thresholds and preprocessing.

Training builds a ``TicketClassifier``; MLflow stores it inside a pyfunc model and
serving loads it back, so every consumer runs exactly the same feature code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from features.schema import INPUT_COLUMNS, TEXT_COLUMNS, TicketColumn

#: Output columns of ``TicketClassifier.predict_frame`` (and of the pyfunc model).
PREDICTION_COLUMNS = ("label", "confidence", "needs_review", "probabilities", "top_features", "truncated")


def normalize_tickets(frame: pd.DataFrame, max_text_chars: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The model's input columns in schema order, missing optional ones as None.

    Returns the frame and a per-row flag telling whether a text field was cut to
    ``max_text_chars`` (a very long ticket is truncated and flagged, never refused).
    """
    missing_text = [c for c in TEXT_COLUMNS if c not in frame.columns]
    if len(missing_text) == len(TEXT_COLUMNS):
        raise ValueError(f"tickets need at least one of the text columns {', '.join(TEXT_COLUMNS)}")
    columns: dict[str, np.ndarray] = {}
    truncated = np.zeros(len(frame), dtype=bool)
    for column in INPUT_COLUMNS:
        values = frame[column].to_numpy(dtype=object) if column in frame.columns else np.full(len(frame), None)
        if column in TEXT_COLUMNS:
            values = np.asarray([_text_or_empty(v) for v in values], dtype=object)
            if max_text_chars:
                long_rows = np.fromiter((len(v) > max_text_chars for v in values), dtype=bool, count=len(values))
                if long_rows.any():
                    values[long_rows] = [v[:max_text_chars] for v in values[long_rows]]
                    truncated |= long_rows
        columns[column] = values
    # One constructor call with object columns: per-column assignment costs
    # milliseconds per call, which matters when scoring one ticket at a time.
    return pd.DataFrame(columns, dtype=object, copy=False), truncated


def _text_or_empty(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


@dataclass
class TicketClassifier:
    """A fitted ticket classifier for one task.

    ``pipeline`` has two steps, ``features`` (a column transformer over the ticket
    columns) and ``classifier`` (anything with ``predict_proba``).
    ``thresholds`` maps a label to the confidence below which a prediction of that
    label needs human review.
    """

    task: str
    pipeline: Pipeline
    labels: tuple[str, ...]
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = 0.5
    max_text_chars: int = 20_000
    top_k_features: int = 5
    feature_names: np.ndarray | None = None

    def __post_init__(self):
        classes = tuple(str(c) for c in self.pipeline.classes_)
        if classes != tuple(self.labels):
            raise ValueError(f"pipeline classes {classes} differ from labels {self.labels}")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        tickets, _ = normalize_tickets(frame, self.max_text_chars)
        return self.pipeline.predict_proba(tickets)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per ticket: label, confidence, needs_review, class probabilities, top features, truncated."""
        tickets, truncated = normalize_tickets(frame, self.max_text_chars)
        features = transform_columns(self.pipeline.named_steps["features"], tickets)
        probabilities = self.pipeline.named_steps["classifier"].predict_proba(features)
        best = probabilities.argmax(axis=1)
        labels = [self.labels[i] for i in best]
        confidence = probabilities[np.arange(len(best)), best]
        return pd.DataFrame(
            {
                "label": labels,
                "confidence": confidence.astype(float),
                "needs_review": [c < self.threshold_for(lab) for c, lab in zip(confidence, labels)],
                "probabilities": [dict(zip(self.labels, map(float, row))) for row in probabilities],
                "top_features": self._explain(features, best),
                "truncated": truncated,
            }
        )

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)

    def _explain(self, features, predicted: np.ndarray) -> list[list[str]]:
        """The n-grams and metadata that pushed each ticket towards its predicted label."""
        weights = linear_weights(self.pipeline.named_steps["classifier"])
        if weights is None or self.feature_names is None:
            return [[] for _ in predicted]
        explanations = []
        for row, cls in enumerate(predicted):
            start, end = features.indptr[row], features.indptr[row + 1]
            columns, values = features.indices[start:end], features.data[start:end]
            contributions = values * weights[cls, columns]
            order = np.argsort(-contributions)[: self.top_k_features]
            explanations.append([str(self.feature_names[columns[i]]) for i in order if contributions[i] > 0])
        return explanations


def transform_columns(column_transformer, tickets: pd.DataFrame) -> sp.csr_matrix:
    """What the fitted ``ColumnTransformer.transform`` returns, as CSR, without its dispatch overhead.

    The column transformer runs its parts through joblib and re-validates the frame
    on every call, which costs several milliseconds: most of the time spent on a
    single ticket. Calling the fitted parts directly gives the same matrix.
    """
    blocks = [
        transformer.transform(tickets[columns])
        for _, transformer, columns in column_transformer.transformers_
        if transformer != "drop" and len(columns)
    ]
    return sp.hstack([sp.csr_matrix(b) for b in blocks], format="csr")


def linear_weights(classifier) -> np.ndarray | None:
    """Per-class feature weights of a linear classifier (possibly wrapped in calibration).

    Shape (n_classes, n_features); a binary model's single weight row is expanded
    so that each class has its own. None when the model is not linear.
    """
    if hasattr(classifier, "calibrated_classifiers_"):
        inner = [weights_of(c.estimator) for c in classifier.calibrated_classifiers_]
        if any(w is None for w in inner):
            return None
        coef = np.mean(inner, axis=0)
    else:
        coef = weights_of(classifier)
        if coef is None:
            return None
    if coef.shape[0] == 1:
        coef = np.vstack([-coef[0], coef[0]])
    return coef


def weights_of(estimator) -> np.ndarray | None:
    coef = getattr(estimator, "coef_", None)
    return None if coef is None else np.asarray(coef.toarray() if hasattr(coef, "toarray") else coef)


def readable_feature_names(names) -> np.ndarray:
    """Turn ``text__word:refund`` into ``refund`` and ``text__char: pw`` into ``"pw"`` for explanations."""
    readable = []
    for name in names:
        _, _, bare = str(name).partition("__")
        kind, _, term = bare.partition(":")
        if kind == "word":
            readable.append(term)
        elif kind == "char":
            readable.append(f'"{term.strip()}"')
        else:
            readable.append(bare or str(name))
    return np.asarray(readable, dtype=object)


def to_model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Tickets as the pyfunc model's input: every input column as text (ISO 8601 times), None when missing."""
    tickets, _ = normalize_tickets(frame)
    for column in INPUT_COLUMNS:
        if column == TicketColumn.CREATED_AT.value:
            tickets[column] = pd.Series([_iso_or_none(v) for v in tickets[column]], dtype=object)
        elif column not in TEXT_COLUMNS:
            tickets[column] = pd.Series([None if _is_blank(v) else str(v) for v in tickets[column]], dtype=object)
    return tickets


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT or value is pd.NA


def _iso_or_none(value) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, str):
        return value
    return pd.Timestamp(value).isoformat()
