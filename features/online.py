"""Online scoring: a handful of tickets through several task models, with the same answers as ``predict_frame``.

``TicketClassifier.predict_frame`` is built for batches: it runs the fitted
scikit-learn pipeline as it is, so one ticket pays per-call costs that dwarf
the arithmetic (data frames per column block, input validation in every step,
one sparse matrix per step, and the same text analysed once per task). A
service answering one ticket at a time with three task models pays them three
times per request. ``OnlinePredictor`` runs the same fitted objects with those
costs taken out:

- the ticket texts are joined, masked and cleaned with the same
  ``join_ticket_text``, and analysed into terms with each vectorizer's own
  scikit-learn analyzer, once per request for all tasks that analyse alike
  (from ``BATCH_COUNTING_MIN_TICKETS`` tickets on, the vectorizer's own batch
  counting does it, sharing the n-grams of the batch);
- TF-IDF is applied to the counts with the vectorizer's fitted ``idf_`` and
  scikit-learn's own l2 row normalisation, in the same order as
  ``TfidfTransformer.transform`` (same dtypes, so the same floats);
- every other block (metadata one-hots, local time) is the fitted transformer
  itself, fed plain rows; rows it has seen are answered from a bounded memo,
  which is exact because a fitted transformer maps each row on its own;
- the blocks are joined into one CSR matrix in ``ColumnTransformer`` order and
  handed to the fitted classifier's ``predict_proba`` (for the default model's
  shape, its steps without their per-call checks: ``calibrated_probabilities``)
  and the model's own explanation code.

A pipeline of another shape gets ``None`` from ``OnlinePredictor.build`` and the
caller uses ``predict_frame``. Tests pin the answers to ``predict_frame``'s,
value for value (tests/unit/serving/test_scoring.py).
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV, _TemperatureScaling
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from features.predictor import (
    TicketClassifier,
    _is_blank,
    _iso_or_none,
    _text_or_empty,
    linear_weights,
    normalize_tickets,
    top_contributions,
    to_model_input,
    transform_columns,
)
from features.schema import INPUT_COLUMNS, TEXT_COLUMNS, TicketColumn
from features.transformers import FastCountingTfidfVectorizer, LocalTimeFeatures, TicketTextFeatures, join_ticket_text

#: Vectorizer parameters that decide how a text is split into terms (not which terms are kept).
_ANALYSIS_PARAMS = ("input", "encoding", "decode_error", "strip_accents", "lowercase", "preprocessor",
                    "tokenizer", "stop_words", "token_pattern", "ngram_range", "analyzer")
#: Tickets whose features ``OnlinePredictor.build`` compares with the pipeline's.
PROBE_TICKETS = [
    {"subject": "Refund for order 123456", "body": "Card 4111 1111 1111 1111 charged twice!! Mail a.b@example.com",
     "channel": "email", "customer_tier": "enterprise", "language": "en",
     "created_at": "2026-01-05T02:08:17+01:00", "customer_timezone": "Europe/Berlin"},
    {"subject": "", "body": "<p>App crashes on login — déjà vu 😡 https://example.com/x?y=1</p>",
     "channel": "chat", "customer_tier": None, "language": None, "created_at": None, "customer_timezone": None},
    {"subject": "Question", "body": "how do I export invoices", "channel": "unknown-channel",
     "customer_tier": "free", "language": "de", "created_at": "2026-07-11T23:59:00+00:00",
     "customer_timezone": "America/New_York"},
]
#: Smallest batch whose texts are counted together (``FastCountingTfidfVectorizer.fitted_counts``)
#: rather than one by one: the same counts either way, and from about 32 tickets on the
#: shared counting is cheaper (three default models, us/ticket one by one vs together, one
#: run: 1,110 vs 1,190 at 16, 880 vs 810 at 32, 670 vs 440 at 128, 650 vs 330 at 500).
BATCH_COUNTING_MIN_TICKETS = 32
#: Distinct rows remembered per non-text block before the memo starts afresh.
MEMO_ROWS = 4096

# One block's answer for some rows: CSR parts (data, indices, indptr) and its width.
_Block = tuple[np.ndarray, np.ndarray, np.ndarray, int]


class _Tfidf:
    """A fitted ``TfidfVectorizer`` (word or char_wb, l2, idf) applied to analysed texts."""

    def __init__(self, vectorizer):
        # Batches are counted by the vectorizer's own shared, vectorised counting (features.transformers):
        # n-grams a batch shares are made and looked up once. A few texts are analysed one by one.
        self.count_batch = vectorizer.fitted_counts if isinstance(vectorizer, FastCountingTfidfVectorizer) else None
        self.vocabulary = vectorizer.vocabulary_
        self.analyze = vectorizer.build_analyzer()
        self.key = tuple(repr(getattr(vectorizer, name)) for name in _ANALYSIS_PARAMS)
        self.dtype = vectorizer.dtype
        self.sublinear_tf = vectorizer.sublinear_tf
        self.idf = vectorizer.idf_
        self.width = len(self.vocabulary)

    @staticmethod
    def supports(vectorizer) -> bool:
        return (
            hasattr(vectorizer, "vocabulary_")
            and hasattr(vectorizer, "idf_")
            and hasattr(vectorizer, "build_analyzer")
            and getattr(vectorizer, "norm", None) == "l2"
            and getattr(vectorizer, "use_idf", False)
            and not getattr(vectorizer, "binary", True)
            and getattr(vectorizer, "input", None) == "content"
            and getattr(vectorizer, "analyzer", None) in ("word", "char", "char_wb")
        )

    def transform(self, texts: Sequence[str], shared: dict) -> _Block:
        if self.count_batch is not None and len(texts) >= BATCH_COUNTING_MIN_TICKETS:
            return self._tfidf(self.count_batch(list(texts)))
        key = ("terms", self.key)
        analysed = shared.get(key)
        if analysed is None:
            analysed = shared[key] = [_distinct_terms(self.analyze(text)) for text in texts]
        indptr, indices, counts = [0], [], []
        for terms, term_counts in analysed:
            # CountVectorizer's counts for a fixed vocabulary, columns ascending (it sorts them too).
            columns = np.fromiter(map(self.vocabulary.get, terms, repeat(-1)), dtype=np.int64, count=len(terms))
            known = np.flatnonzero(columns >= 0)
            order = known[np.argsort(columns[known])]
            indices.append(columns[order])
            counts.append(term_counts[order])
            indptr.append(indptr[-1] + len(order))
        data = np.concatenate(counts).astype(self.dtype) if counts else np.zeros(0, dtype=self.dtype)
        matrix = sp.csr_matrix((data, np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
                                np.asarray(indptr, dtype=np.int32)), shape=(len(analysed), self.width))
        return self._tfidf(matrix)

    def _tfidf(self, matrix: sp.csr_matrix) -> _Block:
        """Counts (columns sorted within rows, in ``dtype``) to TF-IDF, in place:
        ``TfidfTransformer.transform``, step for step."""
        if self.sublinear_tf:
            np.log(matrix.data, matrix.data)
            matrix.data += 1.0
        matrix.data *= self.idf[matrix.indices]
        inplace_csr_row_normalize_l2(matrix)
        return matrix.data, matrix.indices, matrix.indptr, self.width


def _distinct_terms(terms: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct terms of one document and how often each occurs."""
    counted = Counter(terms)
    return list(counted), np.fromiter(counted.values(), dtype=np.intc, count=len(counted))


class _TextBlock:
    """``TicketTextFeatures``: word then character TF-IDF of the joined, masked, cleaned text."""

    def __init__(self, features: TicketTextFeatures, positions: tuple[int, ...]):
        self.positions = list(positions)
        self.mask = features.mask_pii
        self.mask_mentions = features.mask_mentions
        self.parts = [_Tfidf(features.word_vectorizer_), _Tfidf(features.char_vectorizer_)]

    @staticmethod
    def supports(transformer) -> bool:
        return (
            type(transformer) is TicketTextFeatures
            and hasattr(transformer, "word_vectorizer_")
            and _Tfidf.supports(transformer.word_vectorizer_)
            and _Tfidf.supports(transformer.char_vectorizer_)
        )

    def transform(self, values: np.ndarray, shared: dict) -> list[_Block]:
        """The word block then the character block (joined once, with the other blocks, by the caller)."""
        key = ("texts", self.mask, self.mask_mentions, tuple(self.positions))
        texts = shared.get(key)
        if texts is None:
            texts = shared[key] = [
                join_ticket_text(row, mask=self.mask, mask_mentions=self.mask_mentions)
                for row in values[:, self.positions]
            ]
        return [part.transform(texts, shared) for part in self.parts]


class _RowBlock:
    """Any other fitted transformer of some columns, with a memo of the rows it has answered."""

    def __init__(self, transformer, positions: tuple[int, ...]):
        self.transformer = transformer
        self.positions = list(positions)
        self.width: int | None = None
        self._memo: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._direct = _direct_transform(transformer)

    def transform(self, values: np.ndarray, shared: dict) -> list[_Block]:
        rows = values[:, self.positions]
        keys = [tuple(row) for row in rows.tolist()]
        with self._lock:  # one scoring thread at a time reads, fills and clears the memo
            known = {key: self._memo[key] for key in keys if key in self._memo}
            missing = [i for i, key in enumerate(keys) if key not in known]
            if missing:
                known.update(self._remember([keys[i] for i in missing], rows[missing]))
        answers = [known[key] for key in keys]
        data = np.concatenate([d for d, _ in answers])
        indices = np.concatenate([i for _, i in answers])
        return [(data, indices, np.concatenate(([0], np.cumsum([len(i) for _, i in answers]))), self.width)]

    def _remember(self, keys: list[tuple], rows: np.ndarray) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
        """The transformer's rows for ``keys`` (each distinct row once), also kept in the memo."""
        first_rows = {key: n for n, key in reversed(list(enumerate(keys)))}
        distinct = rows[list(first_rows.values())]
        if self._direct is not None:
            output = sp.csr_matrix(self._direct(distinct))
        else:
            with warnings.catch_warnings():
                # Fitted on a data frame, fed the same columns in the same order as an array.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                output = sp.csr_matrix(self.transformer.transform(distinct))
        answers = {}
        for n, key in enumerate(first_rows):
            start, end = output.indptr[n], output.indptr[n + 1]
            answers[key] = (output.data[start:end], output.indices[start:end])
        if len(self._memo) + len(answers) > MEMO_ROWS:
            self._memo.clear()
        self._memo.update(answers)
        self.width = output.shape[1]
        return answers


def _direct_transform(transformer):
    """For the local-time block (``LocalTimeFeatures`` then a weight ``FunctionTransformer``), the same
    steps without scikit-learn's per-call validation, else None. Its rows hold a timestamp each, so
    they never repeat and the memo cannot spare the transformer; ``agrees_with_pipeline`` still checks it."""
    if type(transformer) is not Pipeline or len(transformer.steps) != 2:
        return None
    (_, clock), (_, scale) = transformer.steps
    if type(clock) is not LocalTimeFeatures or type(scale) is not FunctionTransformer:
        return None
    if scale.validate or scale.func is None:
        return None
    kw_args = scale.kw_args or {}
    return lambda rows: scale.func(clock.clock_features(rows), **kw_args)


def _join_blocks(blocks: Sequence[_Block]) -> _Block:
    """Blocks side by side (``scipy.sparse.hstack``, as the pipeline's ColumnTransformer joins them):
    each row's entries block after block."""
    if blocks and len(blocks[0][2]) == 2:  # one row: plain concatenation, without building matrices
        dtype = np.result_type(*[data.dtype for data, _, _, _ in blocks])
        offsets = np.cumsum([0] + [width for _, _, _, width in blocks])
        data = np.concatenate([d.astype(dtype, copy=False) for d, _, _, _ in blocks])
        indices = np.concatenate([i.astype(np.int64) + o for (_, i, _, _), o in zip(blocks, offsets)])
        return data, indices, np.asarray([0, len(data)]), int(offsets[-1])
    joined = sp.hstack([sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, width))
                        for data, indices, indptr, width in blocks], format="csr")
    return joined.data, joined.indices, joined.indptr, joined.shape[1]


class OnlinePredictor:
    """One task model's ``predict_frame`` answers, computed per request with little overhead."""

    def __init__(self, classifier: TicketClassifier, blocks: list):
        self.classifier = classifier
        self._blocks = blocks
        # What _explain derives from the classifier on every call, once.
        self._weights = linear_weights(classifier.pipeline.named_steps["classifier"])

    @classmethod
    def build(cls, classifier: TicketClassifier) -> OnlinePredictor | None:
        """The online form of ``classifier``, or None when its pipeline has a shape this module does not know."""
        if not isinstance(classifier, TicketClassifier) or not isinstance(getattr(classifier, "pipeline", None), Pipeline):
            return None
        features = classifier.pipeline.named_steps.get("features")
        if (not hasattr(features, "transformers_") or getattr(features, "transformer_weights", None)
                or "classifier" not in classifier.pipeline.named_steps):
            return None
        columns = list(INPUT_COLUMNS)
        blocks: list = []
        for _, transformer, selected in features.transformers_:
            selected = list(selected) if not isinstance(selected, str) else [selected]
            if (isinstance(transformer, str) and transformer == "drop") or not selected:
                continue
            if isinstance(transformer, str) or not all(isinstance(c, str) and c in columns for c in selected):
                return None  # passthrough, or columns chosen by position, mask or callable
            positions = tuple(columns.index(c) for c in selected)
            blocks.append(_TextBlock(transformer, positions) if _TextBlock.supports(transformer)
                          else _RowBlock(transformer, positions))
        if not blocks:
            return None
        online = cls(classifier, blocks)
        return online if online.agrees_with_pipeline() else None

    def agrees_with_pipeline(self) -> bool:
        """Whether a few varied probe tickets get exactly the pipeline's own feature matrix.

        A guard against a feature step this module does not know about (a new
        transformer parameter, say): then the model is served with ``predict_frame``.
        """
        frame = to_model_input(pd.DataFrame(PROBE_TICKETS))
        tickets, _ = normalize_tickets(frame, self.classifier.max_text_chars)
        try:
            ours = self.features(tickets[list(INPUT_COLUMNS)].to_numpy(dtype=object), {})
        except Exception:
            return False
        theirs = transform_columns(self.classifier.pipeline.named_steps["features"], tickets)
        return (ours.shape == theirs.shape and ours.dtype == theirs.dtype
                and all(np.array_equal(getattr(ours, part), getattr(theirs, part))
                        for part in ("indptr", "indices", "data")))

    def features(self, values: np.ndarray, shared: dict) -> sp.csr_matrix:
        # Every block's parts joined in one go: joining the text parts first would copy them twice.
        data, indices, indptr, width = _join_blocks([part for block in self._blocks
                                                     for part in block.transform(values, shared)])
        return sp.csr_matrix((data, indices.astype(np.int32), indptr.astype(np.int32)), shape=(len(values), width))

    def predict_records(self, values: np.ndarray, truncated: np.ndarray, shared: dict) -> list[dict]:
        """``predict_frame(...).to_dict("records")`` for the normalised ticket rows ``values``."""
        model = self.classifier
        if not len(values):
            return []
        features = self.features(values, shared)
        probabilities = calibrated_probabilities(model.pipeline.named_steps["classifier"], features)
        best = probabilities.argmax(axis=1)
        explanations = self._explain(features, best)
        records = []
        for row, (column, scores) in enumerate(zip(best.tolist(), probabilities.astype(float).tolist())):
            label, confidence = model.labels[column], scores[column]
            records.append({
                "label": label,
                "confidence": confidence,
                "needs_review": confidence < model.threshold_for(label),
                "probabilities": dict(zip(model.labels, scores)),
                "top_features": list(explanations[row]),
                "truncated": bool(truncated[row]),
            })
        return records

    def _explain(self, features: sp.csr_matrix, best: np.ndarray) -> list[list[str]]:
        """``TicketClassifier._explain`` with the class weights worked out once."""
        model = self.classifier
        if self._weights is None or model.feature_names is None:
            return [[] for _ in best]
        columns, bounds = top_contributions(features, self._weights, best, model.top_k_features)
        names = list(map(str, model.feature_names[columns]))
        return [names[start:end] for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def calibrated_probabilities(classifier, features: sp.csr_matrix) -> np.ndarray:
    """``classifier.predict_proba(features)``, value for value; for the default model's shape (a linear
    model calibrated by temperature scaling, ``CalibratedClassifierCV(ensemble=False)``, 3+ classes)
    without scikit-learn's per-call checks, which cost more than the product itself for a few hundred
    tickets. The steps are scikit-learn's own: the decision function ``X @ coef_.T + intercept_``, the
    calibrator's ``predict``, the clip of values a hair above 1."""
    if type(classifier) is not CalibratedClassifierCV or len(classifier.calibrated_classifiers_) != 1:
        return classifier.predict_proba(features)
    calibrated = classifier.calibrated_classifiers_[0]
    linear = calibrated.estimator
    if (calibrated.method != "temperature" or len(classifier.classes_) < 3
            or getattr(linear, "coef_", None) is None or linear.coef_.shape[0] != len(classifier.classes_)
            or type(linear).decision_function is not LinearClassifierMixin.decision_function):
        return classifier.predict_proba(features)
    scores = features @ linear.coef_.T + linear.intercept_
    calibrator = calibrated.calibrators[0]
    if type(calibrator) is _TemperatureScaling and scores.dtype == np.float64 and np.isfinite(scores).all():
        proba = temperature_softmax(calibrator.beta_, scores)
    else:
        proba = np.asarray(calibrator.predict(scores), dtype=np.float64)
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba


def temperature_softmax(beta: float, scores: np.ndarray) -> np.ndarray:
    """``_TemperatureScaling.predict`` for finite float64 decision values of 3+ classes, value for value:
    its ``_convert_to_logits`` (which takes rows that look like probabilities for probabilities and
    their logs for logits) and ``softmax(beta * logits)``, without the input checks around them."""
    logits = scores
    if np.all((scores >= 0) & (scores <= 1)) and np.all(np.isclose(np.sum(scores, axis=1), 1.0)):
        logits = np.log(scores + 1e-12)
    proba = beta * logits
    proba -= np.max(proba, axis=1).reshape(-1, 1)
    np.exp(proba, out=proba)
    proba /= np.sum(proba, axis=1).reshape(-1, 1)
    return proba


def predict_tasks(predictors: Mapping[str, OnlinePredictor | Any],
                  frame: pd.DataFrame) -> dict[str, list[dict]]:
    """Each task's answers for the tickets of ``frame``: one record per ticket, in order.

    The records are ``predict_frame(frame).to_dict("records")`` with plain Python
    values. Tasks given as a plain ``TicketClassifier`` (no online form) go through
    ``predict_frame`` (so does any other model object with a ``predict_frame``);
    the others share the text analysis of this call.
    """
    if not all(isinstance(p, OnlinePredictor) for p in predictors.values()) or not len(frame):
        return _predict_tasks(predictors, frame, lambda limit: normalize_tickets(frame, limit))
    tickets, _ = normalize_tickets(frame)
    values = tickets[list(INPUT_COLUMNS)].to_numpy(dtype=object)
    return _predict_tasks(predictors, frame, lambda limit: _truncated(values, limit))


def predict_tasks_for_rows(predictors: Mapping[str, OnlinePredictor | Any],
                           rows: Sequence[Mapping]) -> dict[str, list[dict]]:
    """``predict_tasks`` for tickets given as mappings (column -> value), without building a data frame.

    The rows are read as ``to_model_input`` reads a frame of them: text fields as
    text ('' when missing), ``created_at`` as ISO 8601 text, other fields as text or None.
    """
    if not rows or not all(isinstance(p, OnlinePredictor) for p in predictors.values()):
        return predict_tasks(predictors, to_model_input(pd.DataFrame.from_records(list(rows))))
    values = np.empty((len(rows), len(INPUT_COLUMNS)), dtype=object)
    for j, column in enumerate(INPUT_COLUMNS):
        if column in TEXT_COLUMNS:
            read = _text_or_empty
        elif column == TicketColumn.CREATED_AT.value:
            read = _iso_or_none
        else:
            read = _text_or_none
        values[:, j] = [read(row.get(column)) for row in rows]
    return _predict_tasks(predictors, None, lambda limit: _truncated(values, limit))


def _text_or_none(value) -> str | None:
    return None if _is_blank(value) else str(value)


def _truncated(values: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``values`` with text fields cut to ``limit`` characters, and which rows were cut (as ``normalize_tickets``)."""
    cut = np.zeros(len(values), dtype=bool)
    if not limit:
        return values, cut
    text_positions = [INPUT_COLUMNS.index(c) for c in TEXT_COLUMNS]
    for j in text_positions:
        cut |= np.fromiter((len(v) > limit for v in values[:, j]), dtype=bool, count=len(values))
    if not cut.any():
        return values, cut
    values = values.copy()
    for j in text_positions:
        values[:, j] = [v[:limit] for v in values[:, j]]
    return values, cut


def _predict_tasks(predictors, frame, normalised_for) -> dict[str, list[dict]]:
    shared: dict = {}
    by_limit: dict = {}
    answers: dict[str, list[dict]] = {}
    for task, predictor in predictors.items():
        if not isinstance(predictor, OnlinePredictor):
            answers[task] = _frame_records(predictor.predict_frame(frame))
            continue
        limit = predictor.classifier.max_text_chars
        if limit not in by_limit:
            values, truncated = normalised_for(limit)
            if isinstance(values, pd.DataFrame):
                values = values[list(INPUT_COLUMNS)].to_numpy(dtype=object)
            by_limit[limit] = (values, truncated)
        values, truncated = by_limit[limit]
        answers[task] = predictor.predict_records(values, truncated, shared)
    return answers


def _frame_records(answers: pd.DataFrame) -> list[dict]:
    return [
        {**row, "needs_review": bool(row["needs_review"]), "truncated": bool(row["truncated"]),
         "top_features": list(row["top_features"])}
        for row in answers.to_dict("records")
    ]
