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
            values = np.asarray([v if type(v) is str else _text_or_empty(v) for v in values], dtype=object)
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
        features = transform_columns(self.pipeline.named_steps["features"], tickets)
        return self.pipeline.named_steps["classifier"].predict_proba(features)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per ticket: label, confidence, needs_review, class probabilities, top features, truncated."""
        tickets, truncated = normalize_tickets(frame, self.max_text_chars)
        features = transform_columns(self.pipeline.named_steps["features"], tickets)
        probabilities = self.pipeline.named_steps["classifier"].predict_proba(features)
        best = probabilities.argmax(axis=1)
        confidence = probabilities[np.arange(len(best)), best].astype(float)
        thresholds = np.asarray([self.threshold_for(label) for label in self.labels], dtype=float)
        return pd.DataFrame(
            {
                "label": [self.labels[i] for i in best.tolist()],
                "confidence": confidence,
                "needs_review": confidence < thresholds[best],
                "probabilities": [dict(zip(self.labels, row)) for row in probabilities.astype(float).tolist()],
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
        columns, bounds = top_contributions(sp.csr_matrix(features), weights, np.asarray(predicted), self.top_k_features)
        names = list(map(str, self.feature_names[columns]))
        return [names[start:end] for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def top_contributions(
    features: sp.csr_matrix, weights: np.ndarray, predicted: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of its ``k`` largest positive contributions to its predicted class.

    A contribution is a feature value times the predicted class's weight for
    it. The columns come in one array, row after row, each row's in descending
    order of contribution, ties broken by the lower column; row ``i``'s are
    ``columns[bounds[i]:bounds[i + 1]]``. The result is that of sorting each
    row's contributions with a stable sort, one row at a time, but computed
    with a few array operations over all non-zeros at once (see
    ``_top_candidates``), which is many times faster for a batch.
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    flat_weights = np.ravel(weights)
    columns, kept_per_row = [], []
    # Blocks of rows with a bounded number of non-zeros keep the temporary
    # arrays in the CPU cache: one pass over a batch's millions of non-zeros
    # at once is several times slower.
    indptr, indices, data = features.indptr, features.indices, features.data
    for start, end in _row_blocks(indptr, _BLOCK_NONZEROS):
        first, last = indptr[start], indptr[end]
        block_columns, block_kept = _block_top_contributions(
            indptr[start : end + 1] - first,
            indices[first:last],
            data[first:last],
            flat_weights,
            predicted[start:end] * weights.shape[1],
            k,
        )
        columns.append(block_columns)
        kept_per_row.append(block_kept)
    kept = np.concatenate(kept_per_row) if kept_per_row else np.zeros(0, dtype=np.int64)
    return (
        np.concatenate(columns) if columns else np.zeros(0, dtype=features.indices.dtype),
        np.concatenate(([0], np.cumsum(kept))),
    )


#: Non-zeros per block of rows in ``top_contributions``.
_BLOCK_NONZEROS = 1 << 17


def _row_blocks(indptr: np.ndarray, nonzeros: int) -> list[tuple[int, int]]:
    """Consecutive row ranges of about ``nonzeros`` non-zeros each (at least one row each)."""
    n_rows = len(indptr) - 1
    ends = np.searchsorted(indptr, np.arange(nonzeros, indptr[-1], nonzeros), side="right") - 1
    cuts = np.unique(np.clip(np.concatenate(([0], ends, [n_rows])), 0, n_rows))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _block_top_contributions(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    flat_weights: np.ndarray,
    weight_offsets: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``top_contributions`` of one block of CSR rows: the columns and how many per row."""
    n_rows = len(indptr) - 1
    counts = np.diff(indptr)
    # weights[predicted class of the row, column] for every non-zero, as one flat gather.
    contributions = data * flat_weights.take(np.repeat(weight_offsets, counts) + indices)
    candidates = np.flatnonzero(_top_candidates(contributions, indptr, k))
    candidates = candidates[contributions[candidates] > 0]
    rows = np.searchsorted(indptr, candidates, side="right") - 1
    columns, contributions = indices[candidates], contributions[candidates]
    # Rows ascending, then contributions descending, then columns ascending.
    order = np.lexsort((columns, -contributions, rows))
    rows, columns = rows[order], columns[order]
    keep = np.arange(len(rows)) - np.searchsorted(rows, rows) < k
    return columns[keep], np.bincount(rows[keep], minlength=n_rows)


#: Buckets per row in ``_top_candidates``: more buckets, fewer candidates left to sort.
_CANDIDATE_BUCKETS = 32


def _top_candidates(values: np.ndarray, indptr: np.ndarray, k: int) -> np.ndarray:
    """A mask of the (finite) values that may be among their CSR row's ``k`` largest positive ones.

    Positive values are put in buckets 1 to B by their fraction of the row's
    maximum (bucket 0 holds the rest). The highest bucket with at least ``k``
    values at or above it holds the row's k-th largest value (k values in
    higher buckets would all exceed it), so everything below it can go. A
    superset found without sorting: what is left is a few values per row.
    When a row has fewer than ``k`` positive values, all its values are kept.
    """
    n_rows, buckets = len(indptr) - 1, _CANDIDATE_BUCKETS
    counts = np.diff(indptr)
    filled = counts > 0
    row_max = np.zeros(n_rows)
    row_max[filled] = np.maximum.reduceat(values, indptr[:-1][filled])
    divisor = np.where(row_max > 0, row_max, np.inf)
    # Dividing by a positive number and rounding up keep the order (equal
    # values share a bucket), which is all the bound above needs. A negative
    # value far below a tiny maximum may overflow to -inf: bucket 0 all the same.
    with np.errstate(over="ignore"):
        bucket = np.ceil(values / np.repeat(divisor, counts) * buckets)
    bucket = np.where(bucket > 0, np.minimum(bucket, buckets), 0).astype(np.int64)
    bucket += np.repeat(np.arange(n_rows) * (buckets + 1), counts)
    histogram = np.bincount(bucket, minlength=n_rows * (buckets + 1)).reshape(n_rows, buckets + 1)
    # Values in buckets >= b, for b = 1..B.
    at_or_above = np.cumsum(histogram[:, :0:-1], axis=1)[:, ::-1]
    lowest = (at_or_above >= k).sum(axis=1) + np.arange(n_rows) * (buckets + 1)
    return bucket >= np.repeat(lowest, counts)


def transform_columns(column_transformer, tickets: pd.DataFrame) -> sp.csr_matrix:
    """What the fitted ``ColumnTransformer.transform`` returns, as CSR, without its dispatch overhead.

    The column transformer runs its parts through joblib and re-validates the frame
    on every call, which costs several milliseconds: most of the time spent on a
    single ticket. Calling the fitted parts directly gives the same matrix.
    """
    blocks = []
    for _, transformer, columns in column_transformer.transformers_:
        if transformer == "drop" or not len(columns):
            continue
        # A transformer that can hand over its output as side-by-side blocks
        # (the text features: word and character n-grams) is stacked once, here.
        if hasattr(transformer, "transform_blocks"):
            blocks += transformer.transform_blocks(tickets[columns])
        else:
            blocks.append(transformer.transform(tickets[columns]))
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
