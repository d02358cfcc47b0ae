"""Tests of the synthetic ticket generator (training/sample.py)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

import training.sample as sample
from features.schema import CHANNELS, CUSTOMER_TIERS, SENTIMENT_LABELS, URGENCY_LABELS
from training.sample import DEFAULT_CATEGORIES, generate_tickets, write_tickets

EXPECTED_COLUMNS = [
    "id",
    "subject",
    "body",
    "channel",
    "customer_tier",
    "language",
    "created_at",
    "customer_timezone",
    "urgency",
    "category",
    "sentiment",
]
TEXT_AND_LABELS = ["subject", "body", "urgency", "category", "sentiment"]


@pytest.fixture(scope="module")
def tickets() -> pd.DataFrame:
    return generate_tickets(2_000, seed=0)


def test_same_seed_gives_identical_frames() -> None:
    assert_frame_equal(generate_tickets(300, seed=11), generate_tickets(300, seed=11))


def test_other_seed_gives_different_frame() -> None:
    first, second = generate_tickets(300, seed=11), generate_tickets(300, seed=12)
    assert first["body"].tolist() != second["body"].tolist()
    assert first["created_at"].tolist() != second["created_at"].tolist()


def test_columns_and_dtypes(tickets: pd.DataFrame) -> None:
    assert list(tickets.columns) == EXPECTED_COLUMNS
    for column in EXPECTED_COLUMNS:
        if column != "created_at":
            assert pd.api.types.is_string_dtype(tickets[column]), column
    assert isinstance(tickets["created_at"].dtype, pd.DatetimeTZDtype)
    assert str(tickets["created_at"].dt.tz) == "UTC"
    assert not tickets.isna().any().any()


def test_ids_are_unique_and_follow_creation_order(tickets: pd.DataFrame) -> None:
    assert tickets["id"].is_unique
    assert tickets["id"].str.fullmatch(r"T-\d{6}").all()
    assert tickets["id"].iloc[0] == "T-000001"
    assert tickets["created_at"].is_monotonic_increasing


def test_created_at_spans_the_default_window_with_a_weekly_rhythm(tickets: pd.DataFrame) -> None:
    start = pd.Timestamp("2026-01-05", tz="UTC")
    created = tickets["created_at"]
    assert created.min() >= start
    assert created.max() < start + pd.Timedelta(days=90)
    weekend = created.dt.day_of_week >= 5
    # Fewer tickets per weekend day than per weekday, but far from none.
    per_weekend_day, per_weekday = weekend.sum() / 2, (~weekend).sum() / 5
    assert 0.2 * per_weekday < per_weekend_day < 0.8 * per_weekday


def test_many_tickets_arrive_outside_local_office_hours(tickets: pd.DataFrame) -> None:
    local_hour = pd.concat(
        group["created_at"].dt.tz_convert(zone).dt.hour for zone, group in tickets.groupby("customer_timezone")
    )
    office = local_hour.between(9, 17)
    assert office.mean() > 0.4  # the daytime hump...
    assert (~office).mean() > 0.2  # ...but a helpdesk never sleeps


def test_start_days_and_languages_are_honoured() -> None:
    frame = generate_tickets(200, seed=3, languages=("de",), start=datetime(2025, 3, 28), days=3)
    assert set(frame["language"]) == {"de"}
    assert frame["created_at"].min() >= pd.Timestamp("2025-03-28", tz="UTC")
    assert frame["created_at"].max() < pd.Timestamp("2025-03-31", tz="UTC")


def test_labels_are_valid_and_every_label_occurs(tickets: pd.DataFrame) -> None:
    assert set(tickets["urgency"]) == set(URGENCY_LABELS)
    assert set(tickets["sentiment"]) == set(SENTIMENT_LABELS)
    assert set(tickets["category"]) == set(DEFAULT_CATEGORIES)
    assert {"security", "how_to"} <= set(DEFAULT_CATEGORIES)


def test_labels_are_imbalanced_but_not_absurdly(tickets: pd.DataFrame) -> None:
    urgency = tickets["urgency"].value_counts(normalize=True)
    assert 0.03 < urgency["critical"] < 0.15
    assert urgency["medium"] > urgency["critical"]
    sentiment = tickets["sentiment"].value_counts(normalize=True)
    assert sentiment["neutral"] > sentiment["positive"] > 0.1


def test_metadata_values_are_valid(tickets: pd.DataFrame) -> None:
    assert set(tickets["channel"]) <= set(CHANNELS)
    assert set(tickets["customer_tier"]) == set(CUSTOMER_TIERS)
    assert set(tickets["language"]) == {"en", "de", "es", "fr"}
    assert 0.6 < (tickets["language"] == "en").mean() < 0.8
    for zone in tickets["customer_timezone"].unique():
        ZoneInfo(zone)  # raises for anything that is not an IANA zone
    german_zones = tickets.loc[tickets["language"] == "de", "customer_timezone"]
    assert german_zones.str.startswith("Europe/").mean() > 0.8


def test_bodies_give_the_cleaner_and_masker_work(tickets: pd.DataFrame) -> None:
    body = tickets["body"]
    assert body.str.contains("<p>").mean() > 0.03
    assert body.str.contains("<br>").any()
    assert body.str.contains(r"(?:^|\n|<br>)--(?:\n|<br>)").mean() > 0.03  # signatures
    assert body.str.contains(r"(?:wrote|schrieb|escribió|a écrit) ?:").mean() > 0.02  # quoted replies
    assert body.str.contains(r"[\w.]+@[\w-]+\.[\w.]+").mean() > 0.1  # e-mail addresses
    assert body.str.contains(r"\+\d{1,2} ").any()  # phone numbers
    assert body.str.contains(r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b").any()  # card numbers
    assert body.str.contains(r"https?://").any()
    assert body.str.contains(r"#\d{5}\b").any()  # order numbers


def test_a_tenth_of_tickets_have_small_typos(monkeypatch: pytest.MonkeyPatch) -> None:
    with_typos = generate_tickets(1_000, seed=5)
    monkeypatch.setattr(sample, "_TYPO_RATE", 0.0)  # the same draws, just no typos applied
    clean = generate_tickets(1_000, seed=5)
    changed = (with_typos["body"] != clean["body"]) | (with_typos["subject"] != clean["subject"])
    assert 0.05 < changed.mean() < 0.15
    for typo, original in zip(with_typos.loc[changed, "body"], clean.loc[changed, "body"]):
        typo_words, original_words = typo.split(), original.split()
        assert len(typo_words) == len(original_words)  # a letter swapped, dropped or doubled
        misspelled = [(t, o) for t, o in zip(typo_words, original_words) if t != o]
        assert len(misspelled) <= 3
        assert sum(abs(len(t) - len(o)) for t, o in misspelled) <= 3  # at most three typos


@pytest.mark.parametrize("rows", [0, -1])
def test_rows_must_be_positive(rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        generate_tickets(rows)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_write_tickets_round_trips(tmp_path: Path, suffix: str) -> None:
    frame = generate_tickets(200, seed=2)
    path = tmp_path / f"tickets{suffix}"
    write_tickets(frame, path)
    if suffix == ".csv":
        back = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif suffix == ".jsonl":
        back = pd.read_json(path, lines=True, dtype=False)
    else:
        back = pd.read_parquet(path)
    assert list(back.columns) == EXPECTED_COLUMNS
    for column in TEXT_AND_LABELS:
        assert back[column].tolist() == frame[column].tolist(), column
    if suffix != ".parquet":  # text formats carry ISO 8601 with an explicit offset
        assert back["created_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00").all()
    restored = pd.to_datetime(back["created_at"], utc=True)
    assert restored.tolist() == frame["created_at"].tolist()


def test_write_tickets_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(".csv, .parquet, .jsonl")):
        write_tickets(generate_tickets(5), tmp_path / "tickets.xlsx")


def test_labels_are_learnable_but_not_trivially() -> None:
    frame = generate_tickets(3_000, seed=0)
    text = (frame["subject"] + " " + frame["body"]).tolist()
    train, test = slice(0, 2_400), slice(2_400, None)
    # One BLAS thread: on a busy machine, oversubscribed threads make this fit ten times slower.
    with threadpool_limits(limits=1):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        train_features = vectorizer.fit_transform(text[train])
        test_features = vectorizer.transform(text[test])
        for task in ("urgency", "category", "sentiment"):
            labels = frame[task].tolist()
            model = LogisticRegression(C=10, solver="newton-cg", max_iter=200)
            model.fit(train_features, labels[train])
            score = f1_score(labels[test], model.predict(test_features), average="macro")
            assert 0.6 < score < 0.99, f"{task}: macro-F1 {score:.3f}"
