"""Train/validation splits: time-ordered when timestamps allow, else stratified (pure)."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from features.schema import TicketColumn
from training.config import SplitConfig


def has_timestamps(frame: pd.DataFrame) -> bool:
    column = TicketColumn.CREATED_AT.value
    if column not in frame.columns:
        return False
    return bool(pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed").notna().all())


def split_tickets(
    frame: pd.DataFrame, label_column: str, config: SplitConfig, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split labelled tickets into training and validation parts.

    The time split holds out the most recent tickets, which is how a model meets
    new tickets in production; the stratified split keeps class shares equal.
    """
    if len(frame) < 4:
        raise ValueError(f"need at least 4 labelled tickets to split, got {len(frame)}")
    strategy = config.strategy
    if strategy == "auto":
        strategy = "time" if has_timestamps(frame) else "stratified"
    if strategy == "time":
        return time_split(frame, config.validation_fraction)
    return stratified_split(frame, label_column, config.validation_fraction, seed)


def time_split(frame: pd.DataFrame, validation_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    created = pd.to_datetime(frame[TicketColumn.CREATED_AT.value], errors="coerce", utc=True, format="mixed")
    if created.isna().any():
        raise ValueError(f"time split needs a timestamp on every ticket; {int(created.isna().sum())} have none")
    ordered = frame.iloc[created.argsort(kind="stable")]
    cut = len(ordered) - max(1, round(len(ordered) * validation_fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def stratified_split(
    frame: pd.DataFrame, label_column: str, validation_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = frame[label_column].astype(str)
    counts = labels.value_counts()
    # A class with a single example cannot be in both parts: it trains.
    singletons = labels.isin(counts[counts < 2].index)
    splittable = frame[~singletons]
    train, validation = train_test_split(
        splittable,
        test_size=validation_fraction,
        random_state=seed,
        stratify=splittable[label_column].astype(str),
    )
    return pd.concat([train, frame[singletons]]), validation
