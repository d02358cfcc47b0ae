"""features.predictor: the saved TicketClassifier, fitted with training.pipelines.fit_classifier."""

from __future__ import annotations

import pickle
from dataclasses import replace

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import scipy.sparse as sp

import features.predictor as predictor
from features.predictor import (
    PREDICTION_COLUMNS,
    TicketClassifier,
    linear_weights,
    normalize_tickets,
    readable_feature_names,
    to_model_input,
    top_contributions,
    transform_columns,
)
from features.schema import INPUT_COLUMNS, URGENCY_LABELS
from training.config import load_config
from training.pipelines import fit_classifier


@pytest.fixture(scope="module")
def urgency_model(tickets) -> TicketClassifier:
    return fit_classifier(tickets.iloc[:1200], "urgency", load_config("urgency"))


@pytest.fixture(scope="module")
def held_out(tickets) -> pd.DataFrame:
    return tickets.iloc[1200:1400].reset_index(drop=True)


@pytest.fixture(scope="module")
def answer(urgency_model, held_out) -> pd.DataFrame:
    return urgency_model.predict_frame(held_out)


def test_labels_are_the_task_labels(urgency_model):
    assert set(urgency_model.labels) == set(URGENCY_LABELS)
    assert urgency_model.task == "urgency"
    assert len(urgency_model.feature_names) > 100


def test_predict_frame_columns_and_row_count(answer, held_out):
    assert tuple(answer.columns) == PREDICTION_COLUMNS
    assert len(answer) == len(held_out)


def test_probabilities_are_a_distribution_over_the_labels(answer, urgency_model):
    for probabilities in answer["probabilities"]:
        assert list(probabilities) == list(urgency_model.labels)
        assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for value in probabilities.values())
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-9)


def test_label_is_the_most_likely_and_confidence_is_its_probability(answer):
    for label, confidence, probabilities in zip(answer["label"], answer["confidence"], answer["probabilities"]):
        assert confidence == pytest.approx(max(probabilities.values()))
        assert probabilities[label] == pytest.approx(confidence)


def test_predictions_agree_with_predict_proba_and_predict_labels(urgency_model, held_out, answer):
    matrix = urgency_model.predict_proba(held_out)
    expected = np.asarray([[p[label] for label in urgency_model.labels] for p in answer["probabilities"]])
    np.testing.assert_allclose(matrix, expected)
    assert list(urgency_model.predict_labels(held_out)) == list(answer["label"])


def test_the_model_learned_something(answer, held_out):
    accuracy = (answer["label"] == held_out["urgency"]).mean()
    majority = held_out["urgency"].value_counts(normalize=True).max()
    assert accuracy > majority + 0.2, (accuracy, majority)


def test_needs_review_follows_the_per_label_thresholds(urgency_model, held_out, answer):
    confidence = answer["confidence"].to_numpy()
    # thresholds placed among the actual confidences, different per label
    thresholds = {label: float(np.quantile(confidence, q)) for label, q in zip(urgency_model.labels, (0.2, 0.4, 0.6, 0.8))}
    reviewed = replace(urgency_model, thresholds=thresholds).predict_frame(held_out)

    expected = [c < thresholds[label] for c, label in zip(reviewed["confidence"], reviewed["label"])]
    assert reviewed["needs_review"].tolist() == expected
    assert 0 < sum(expected) < len(expected)
    # default threshold for labels without their own, and the extremes
    assert replace(urgency_model, thresholds={}, default_threshold=1.01).predict_frame(held_out)["needs_review"].all()
    assert not replace(urgency_model, thresholds={}, default_threshold=0.0).predict_frame(held_out)["needs_review"].any()


def test_top_features_explain_confident_predictions(answer, urgency_model):
    confident = answer[answer["confidence"] >= 0.8]
    assert len(confident) >= 20
    known = set(urgency_model.feature_names)
    for features in confident["top_features"]:
        assert 0 < len(features) <= urgency_model.top_k_features
        assert all(isinstance(f, str) and f.strip() for f in features)
        assert all(f in known for f in features)
        assert not any(f.startswith(("text__", "word:", "char:")) for f in features)  # readable names


def test_very_long_body_is_truncated_and_flagged(urgency_model, held_out):
    frame = held_out.head(3).copy()
    frame.loc[1, "body"] = "Production is down for every customer. " + "x" * 100_000
    answer = urgency_model.predict_frame(frame)

    assert answer["truncated"].tolist() == [False, True, False]
    cut = frame.copy()
    cut.loc[1, "body"] = frame.loc[1, "body"][: urgency_model.max_text_chars]
    assert answer["label"].tolist() == urgency_model.predict_frame(cut)["label"].tolist()
    np.testing.assert_allclose(answer["confidence"], urgency_model.predict_frame(cut)["confidence"])


def test_missing_optional_columns_are_fine(urgency_model, held_out):
    body_only = urgency_model.predict_frame(held_out[["body"]].head(5))
    subject_only = urgency_model.predict_frame(held_out[["subject"]].head(5))
    with_gaps = held_out.head(5).copy()
    with_gaps.loc[0, ["channel", "customer_tier", "created_at", "customer_timezone"]] = None
    with_gaps.loc[1, "subject"] = None

    for answer in (body_only, subject_only, urgency_model.predict_frame(with_gaps)):
        assert len(answer) == 5
        assert answer["label"].isin(urgency_model.labels).all()
        assert not answer["truncated"].any()


def test_tickets_without_any_text_column_are_refused(urgency_model):
    with pytest.raises(ValueError, match="at least one of the text columns"):
        urgency_model.predict_frame(pd.DataFrame({"channel": ["email"]}))


def test_pickling_round_trip_gives_identical_outputs(urgency_model, held_out, answer, tmp_path):
    restored = pickle.loads(pickle.dumps(urgency_model))
    pd.testing.assert_frame_equal(restored.predict_frame(held_out), answer)

    path = tmp_path / "classifier.joblib"
    joblib.dump(urgency_model, path)  # how tracking.log_classifier stores it (there compressed)
    pd.testing.assert_frame_equal(joblib.load(path).predict_frame(held_out), answer)


def test_labels_must_match_the_pipeline_classes(urgency_model):
    with pytest.raises(ValueError, match="differ from labels"):
        replace(urgency_model, labels=tuple(reversed(urgency_model.labels)))


def test_normalize_tickets_orders_columns_and_flags_truncation():
    frame = pd.DataFrame({"body": ["abcdef", None], "extra": [1, 2], "subject": ["s", "t"]})
    tickets, truncated = normalize_tickets(frame, max_text_chars=3)
    assert list(tickets.columns) == list(INPUT_COLUMNS)
    assert tickets["body"].tolist() == ["abc", ""]
    assert truncated.tolist() == [True, False]
    assert tickets["channel"].isna().all()


def test_to_model_input_is_text_with_iso_times():
    frame = pd.DataFrame(
        {
            "body": ["hello", "hi"],
            "created_at": pd.to_datetime(["2026-03-30T06:30:00Z", None], utc=True),
            "channel": ["email", np.nan],
        }
    )
    model_input = to_model_input(frame)
    assert list(model_input.columns) == list(INPUT_COLUMNS)
    # Missing values come back as NaN rather than the documented None (pandas 3 infers a str column);
    # the pyfunc model treats both as missing.
    assert model_input["created_at"].iloc[0] == "2026-03-30T06:30:00+00:00"
    assert pd.isna(model_input["created_at"].iloc[1])
    assert model_input["channel"].iloc[0] == "email" and pd.isna(model_input["channel"].iloc[1])
    assert model_input["subject"].tolist() == ["", ""]


def test_readable_feature_names():
    names = ["text__word:refund", "text__char: pw", "meta__channel_email", "time__hour_sin", "plain"]
    assert readable_feature_names(names).tolist() == ["refund", '"pw"', "channel_email", "hour_sin", "plain"]


def test_linear_weights_expand_a_binary_model():
    model = LogisticRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.2]]), ["a", "b", "a", "b"])
    weights = linear_weights(model)
    assert weights.shape == (2, 2)
    np.testing.assert_allclose(weights[0], -weights[1])
    np.testing.assert_allclose(weights[1], model.coef_[0])


# ---------------------------------------------------------------- explanations: fast path == row by row


def _explain_row_by_row(features, weights, predicted, k) -> list[list[int]]:
    """The straightforward definition: sort each row's contributions (stable, so ties keep column order)."""
    features = sp.csr_matrix(features)
    top = []
    for row, cls in enumerate(predicted):
        start, end = features.indptr[row], features.indptr[row + 1]
        columns, values = features.indices[start:end], features.data[start:end]
        contributions = values * weights[cls, columns]
        order = np.argsort(-contributions, kind="stable")[:k]
        top.append([int(columns[i]) for i in order if contributions[i] > 0])
    return top


def _split(columns, bounds) -> list[list[int]]:
    return [columns[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [0, 1, 5, 40])
def test_top_contributions_equal_sorting_each_row(seed, k, monkeypatch):
    # Small blocks, so that rows are spread over many blocks and long rows fill one alone.
    monkeypatch.setattr(predictor, "_BLOCK_NONZEROS", 97)
    rng = np.random.default_rng(seed)
    n_rows, n_columns, n_classes = 60, 300, 4
    lengths = rng.choice([0, 1, 3, 8, 50, 280], size=n_rows)
    rows = np.repeat(np.arange(n_rows), lengths)
    columns = np.concatenate([rng.choice(n_columns, size=n, replace=False) for n in lengths])
    # Few distinct values and weights: many exact ties; negative values and weights too.
    values = rng.choice([0.25, 0.5, 1.0, -0.5, 1e-300], size=len(rows)).astype(np.float32 if seed % 2 else np.float64)
    features = sp.csr_matrix((values, (rows, columns)), shape=(n_rows, n_columns))
    weights = rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0, 3e-9], size=(n_classes, n_columns))
    predicted = rng.integers(0, n_classes, size=n_rows)

    got = _split(*top_contributions(features, weights, predicted, k))
    assert got == _explain_row_by_row(features, weights, predicted, k)


def test_top_contributions_of_an_empty_batch():
    columns, bounds = top_contributions(sp.csr_matrix((0, 5)), np.ones((2, 5)), np.zeros(0, dtype=int), 5)
    assert len(columns) == 0 and bounds.tolist() == [0]


def test_explanations_of_a_fitted_model_equal_sorting_each_row(urgency_model, held_out, answer):
    tickets, _ = normalize_tickets(held_out)
    features = transform_columns(urgency_model.pipeline.named_steps["features"], tickets)
    predicted = [urgency_model.labels.index(label) for label in answer["label"]]
    weights = linear_weights(urgency_model.pipeline.named_steps["classifier"])
    expected = [
        [str(urgency_model.feature_names[c]) for c in row]
        for row in _explain_row_by_row(features, weights, predicted, urgency_model.top_k_features)
    ]
    assert answer["top_features"].tolist() == expected


def test_predict_proba_equals_the_pipeline_on_the_normalized_tickets(urgency_model, held_out):
    tickets, _ = normalize_tickets(held_out, urgency_model.max_text_chars)
    np.testing.assert_array_equal(urgency_model.predict_proba(held_out), urgency_model.pipeline.predict_proba(tickets))
