"""training.split: time-ordered and stratified train/validation splits."""

from __future__ import annotations

import pandas as pd
import pytest

from training.config import SplitConfig
from training.split import has_timestamps, split_tickets, stratified_split, time_split


def frame_with_times(n: int = 50) -> pd.DataFrame:
    # Rows deliberately out of time order, with a non-default index and mixed offsets.
    stamps = pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC")
    order = list(range(n))[::-1][::2] + list(range(n))[::-1][1::2]
    return pd.DataFrame(
        {
            "created_at": [stamps[i].tz_convert("Europe/Berlin").isoformat() if i % 3 else stamps[i].isoformat()
                           for i in order],
            "body": [f"ticket {i}" for i in order],
            "urgency": ["high" if i % 4 else "low" for i in order],
            "order": order,
        },
        index=[f"row{i}" for i in order],
    )


def test_time_split_holds_out_the_most_recent_tickets():
    frame = frame_with_times(50)
    train, validation = time_split(frame, 0.2)

    assert len(train) == 40 and len(validation) == 10
    assert sorted(validation["order"]) == list(range(40, 50))
    assert max(train["order"]) < min(validation["order"])
    # nothing lost, nothing repeated
    assert sorted([*train.index, *validation.index]) == sorted(frame.index)


def test_auto_uses_time_when_every_ticket_has_a_timestamp():
    frame = frame_with_times(50)
    assert has_timestamps(frame)
    train, validation = split_tickets(frame, "urgency", SplitConfig(), seed=1)
    assert sorted(validation["order"]) == list(range(40, 50))


def test_auto_falls_back_to_stratified_when_a_timestamp_is_missing():
    frame = frame_with_times(50)
    frame.iloc[3, frame.columns.get_loc("created_at")] = None
    assert not has_timestamps(frame)
    _, validation = split_tickets(frame, "urgency", SplitConfig(), seed=1)
    assert sorted(validation["order"]) != list(range(40, 50))
    with pytest.raises(ValueError, match="1 have none"):
        split_tickets(frame, "urgency", SplitConfig(strategy="time"), seed=1)


def labelled(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"body": [f"t{i}" for i in range(len(labels))], "category": labels})


def test_stratified_keeps_every_class_in_validation_with_equal_shares():
    frame = labelled({"billing": 60, "technical": 30, "security": 10})
    train, validation = stratified_split(frame, "category", 0.2, seed=3)

    assert len(validation) == 20 and len(train) == 80
    assert validation["category"].value_counts().to_dict() == {"billing": 12, "technical": 6, "security": 2}
    assert set(train["category"]) == {"billing", "technical", "security"}
    assert set(train.index).isdisjoint(validation.index)


def test_singletons_stay_in_train():
    frame = labelled({"billing": 20, "technical": 20, "rare": 1, "other-rare": 1})
    train, validation = split_tickets(frame, "category", SplitConfig(strategy="stratified"), seed=0)

    assert {"rare", "other-rare"} <= set(train["category"])
    assert not {"rare", "other-rare"} & set(validation["category"])
    assert len(train) + len(validation) == len(frame)


def test_stratified_split_is_deterministic_per_seed():
    frame = labelled({"a": 40, "b": 40, "c": 20})
    config = SplitConfig(strategy="stratified")
    first = split_tickets(frame, "category", config, seed=11)
    second = split_tickets(frame, "category", config, seed=11)
    other = split_tickets(frame, "category", config, seed=12)

    assert list(first[1].index) == list(second[1].index)
    assert list(first[0].index) == list(second[0].index)
    assert sorted(first[1].index) != sorted(other[1].index)


def test_too_few_tickets_are_refused():
    with pytest.raises(ValueError, match="at least 4"):
        split_tickets(labelled({"a": 2, "b": 1}), "category", SplitConfig(), seed=0)


def test_generated_sample_splits_by_time(tickets):
    train, validation = split_tickets(tickets, "urgency", SplitConfig(validation_fraction=0.2), seed=42)
    assert len(validation) == 300
    assert train["created_at"].max() <= validation["created_at"].min()
