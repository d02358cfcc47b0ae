"""Retraining's pure steps: history + corrections -> weighted training set, time-ordered holdout, ledger."""

from __future__ import annotations

import pandas as pd
import pytest

from training.retrain import (
    CORRECTED,
    CORRECTION_ID,
    WEIGHT,
    build_training_set,
    correction_ledger,
    latest_corrections,
    split_for_retraining,
    time_holdout,
)


def history(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """Tickets (id, body, category, created_at)."""
    return pd.DataFrame(
        [{"id": i, "subject": "", "body": body, "category": label, "created_at": pd.Timestamp(when, tz="UTC")}
         for i, body, label, when in rows])


def correction(cid: int, ticket: str, label: str, when: str, *, task: str = "category", body: str = "masked text",
               updated: str | None = None, agent: str = "a1") -> dict:
    return {"correction_id": cid, "ticket_id": ticket, "task": task, "label": label, "original_label": "billing",
            "agent_id": agent, "misrouted": False, "created_at": pd.Timestamp(when, tz="UTC"),
            "updated_at": pd.Timestamp(updated or when, tz="UTC"), "prediction_id": f"p{cid}",
            "model_version": "1", "subject": "Re: order", "body": body, "channel": "email",
            "customer_tier": "free", "language": "en", "ticket_created_at": pd.Timestamp("2026-03-01", tz="UTC"),
            "customer_timezone": "Europe/Berlin"}


HISTORY = history(
    ("T1", "I was charged twice", "billing", "2026-01-01"),
    ("T2", "Where is my parcel", "shipping", "2026-01-02"),
    ("T3", "The app crashes", "technical", "2026-01-03"),
)


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("id")


def test_a_correction_overrides_the_label_and_weighs_more():
    built = by_id(build_training_set(HISTORY, pd.DataFrame([correction(7, "T2", "billing", "2026-02-01")]),
                                     "category", weight=4.0))
    assert built.loc["T2", "category"] == "billing"
    assert built.loc["T2", WEIGHT] == 4.0 and built.loc["T2", CORRECTED] and built.loc["T2", CORRECTION_ID] == 7
    assert (built.loc[["T1", "T3"], WEIGHT] == 1.0).all() and not built.loc[["T1", "T3"], CORRECTED].any()
    assert built.loc["T2", "body"] == "Where is my parcel"  # the history's own text is kept
    assert list(built.loc[["T1", "T3"], "category"]) == ["billing", "technical"]


def test_the_latest_correction_per_ticket_wins_whoever_made_it():
    corrections = pd.DataFrame([
        correction(1, "T3", "account", "2026-02-01", agent="a1"),
        correction(3, "T3", "security", "2026-02-03", agent="a2"),
        # Created first but changed last by its agent: its label is the newest word.
        correction(2, "T3", "how_to", "2026-01-31", updated="2026-02-05", agent="a3"),
    ])
    built = by_id(build_training_set(HISTORY, corrections, "category"))
    assert built.loc["T3", "category"] == "how_to" and built.loc["T3", CORRECTION_ID] == 2
    assert len(built) == 3


def test_ties_in_time_go_to_the_newer_correction_id():
    corrections = pd.DataFrame([correction(5, "T1", "account", "2026-02-01"),
                                correction(4, "T1", "security", "2026-02-01")])
    assert latest_corrections(corrections, "category")["label"].tolist() == ["account"]


def test_only_the_tasks_own_labelled_corrections_count():
    corrections = pd.DataFrame([correction(1, "T1", "high", "2026-02-01", task="urgency"),
                                correction(2, "T2", None, "2026-02-01")])
    built = build_training_set(HISTORY, corrections, "category")
    assert not built[CORRECTED].any() and built["category"].tolist() == ["billing", "shipping", "technical"]


def test_a_corrected_ticket_missing_from_the_history_is_added_from_its_recorded_text():
    built = by_id(build_training_set(HISTORY, pd.DataFrame([correction(9, "T9", "security", "2026-03-02",
                                                                       body="Login from <EMAIL>")]), "category"))
    row = built.loc["T9"]
    assert (row["body"], row["subject"], row["category"], row["channel"]) == (
        "Login from <EMAIL>", "Re: order", "security", "email")
    assert row["created_at"] == pd.Timestamp("2026-03-01", tz="UTC")  # the ticket's time, not the correction's
    assert row[WEIGHT] == 3.0 and row[CORRECTED] and row["customer_timezone"] == "Europe/Berlin"
    assert built.attrs["retrain"]["tickets_added"] == 1


def test_duplicates_are_removed():
    repeated = history(
        ("T1", "I was charged twice", "billing", "2026-01-01"),
        ("T1", "I was charged twice!", "billing", "2026-01-05"),  # same id again: the later row stays
        ("T2", "Where is my parcel", "shipping", "2026-01-02"),
        ("T4", "Where is my parcel", "shipping", "2026-01-04"),  # same text and label
        ("T5", "The app crashes", "technical", "2026-01-03"),
        ("T6", "The app crashes", "account", "2026-01-06"),  # same text, another label: both kept
    )
    built = build_training_set(repeated, pd.DataFrame(), "category")
    assert sorted(built["id"]) == ["T1", "T2", "T5", "T6"]
    assert built.set_index("id").loc["T1", "body"] == "I was charged twice!"
    counts = built.attrs["retrain"]
    assert (counts["duplicate_ids_dropped"], counts["duplicate_texts_dropped"]) == (1, 1)


def test_a_corrected_ticket_displaces_uncorrected_copies_of_its_text():
    copies = history(("T5", "The app crashes", "technical", "2026-01-03"),
                     ("T6", "The app crashes", "technical", "2026-01-06"),
                     ("T7", "Reset my password", "account", "2026-01-07"))
    built = build_training_set(copies, pd.DataFrame([correction(1, "T6", "security", "2026-02-01")]), "category")
    assert built[["id", "category"]].values.tolist() == [["T6", "security"], ["T7", "account"]]


def test_an_added_ticket_with_the_same_text_as_a_history_row_keeps_only_the_corrected_copy():
    copy = correction(2, "T8", "security", "2026-02-01", body="The app crashes") | {"subject": ""}
    built = build_training_set(HISTORY, pd.DataFrame([copy]), "category")
    assert built.loc[built["body"] == "The app crashes", ["id", "category"]].values.tolist() == [["T8", "security"]]


def test_bad_weight_and_missing_label_column_are_refused():
    with pytest.raises(ValueError, match="positive"):
        build_training_set(HISTORY, pd.DataFrame(), "category", weight=0)
    with pytest.raises(ValueError, match="'urgency' label column"):
        build_training_set(HISTORY, pd.DataFrame(), "urgency")


def test_ticket_ids_match_whatever_their_type():
    numbered = HISTORY.assign(id=[101, 102, 103])
    built = by_id(build_training_set(numbered, pd.DataFrame([correction(1, "102", "billing", "2026-02-01")]),
                                     "category"))
    assert built.loc["102", "category"] == "billing" and len(built) == 3


# --------------------------------------------------------------------- holdout

def timed(n: int) -> pd.DataFrame:
    days = pd.date_range("2026-01-01", periods=n, freq="D", tz="UTC")
    frame = pd.DataFrame({"id": [f"T{i}" for i in range(n)], "body": [f"ticket {i}" for i in range(n)],
                          "category": ["billing", "shipping"] * (n // 2), "created_at": days})
    return frame.sample(frac=1, random_state=0)  # out of order on purpose


def test_time_holdout_keeps_the_most_recent_tickets_out():
    train, holdout = time_holdout(timed(10), 0.3)
    assert sorted(holdout["id"]) == ["T7", "T8", "T9"]
    assert train["created_at"].max() < holdout["created_at"].min() and len(train) == 7


def test_time_holdout_trains_on_tickets_without_a_timestamp():
    frame = timed(10)
    frame.loc[frame["id"] == "T9", "created_at"] = pd.NaT
    train, holdout = time_holdout(frame, 0.2)
    assert "T9" in set(train["id"]) and sorted(holdout["id"]) == ["T7", "T8"]


def test_time_holdout_refuses_a_bad_fraction_and_untimed_data():
    with pytest.raises(ValueError, match="between 0 and 1"):
        time_holdout(timed(10), 1.0)
    with pytest.raises(ValueError, match="timestamp"):
        time_holdout(timed(10).drop(columns="created_at"), 0.2)


def test_corrected_tickets_always_train_and_the_holdout_is_recent_history():
    corrections = pd.DataFrame([correction(1, "T9", "billing", "2026-02-01"),
                                correction(2, "T0", "shipping", "2026-02-01")])
    built = build_training_set(timed(10), corrections, "category")
    train, holdout = split_for_retraining(built, 0.25, "category")
    assert {"T9", "T0"} <= set(train["id"])
    assert sorted(holdout["id"]) == ["T7", "T8"]  # the two most recent of the 8 uncorrected
    assert not holdout[CORRECTED].any() and len(train) + len(holdout) == 10


def test_untimed_history_is_split_stratified():
    built = build_training_set(timed(20).drop(columns="created_at"), pd.DataFrame(), "category")
    train, holdout = split_for_retraining(built, 0.2, "category", seed=1)
    assert len(holdout) == 4 and holdout["category"].value_counts().to_dict() == {"billing": 2, "shipping": 2}


# --------------------------------------------------------------------- ledger

def test_the_ledger_names_the_corrections_a_model_learnt_from():
    corrections = pd.DataFrame([correction(1, "T2", "account", "2026-02-01"),
                                correction(4, "T2", "billing", "2026-02-02", agent="a2"),
                                correction(3, "T9", "security", "2026-02-03"),
                                correction(6, "T1", "low", "2026-02-03", task="urgency")])
    built = build_training_set(HISTORY, corrections, "category")
    ledger = correction_ledger(corrections, built, "category")
    assert ledger.applied.values.tolist() == [[3, "T9", "security"], [4, "T2", "billing"]]
    assert ledger.tags() == {"corrections.count": "2", "corrections.max_id": "4"}
    assert ledger.to_dict()["considered"] == 3 and ledger.to_dict()["applied"][0]["correction_id"] == 3


def test_an_empty_ledger():
    ledger = correction_ledger(pd.DataFrame(), build_training_set(HISTORY, pd.DataFrame(), "category"), "category")
    assert ledger.tags() == {"corrections.count": "0", "corrections.max_id": "none"}
