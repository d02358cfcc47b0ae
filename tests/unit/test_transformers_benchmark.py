"""The split override of ``benchmarks/transformers.py``: config, results key, fitted-member identity, goals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from training.config import load_config
from training.split import split_tickets
from training.transformer import carve_validation

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "transformers.py"


@pytest.fixture(scope="module")
def bench():
    # Loaded by path: the script's folder holds `serving.py` and `transformers.py`, which must not shadow packages.
    spec = importlib.util.spec_from_file_location("transformers_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tweets(rows: int = 60) -> pd.DataFrame:
    """Timestamped tickets whose labels drift over time: a time split and a stratified one differ."""
    labels = ["negative"] * (rows // 2) + ["neutral"] * (rows // 4) + ["positive"] * (rows - rows // 2 - rows // 4)
    return pd.DataFrame({"body": [f"tweet {i}" for i in range(rows)], "sentiment": labels,
                         "created_at": pd.date_range("2015-02-16", periods=rows, freq="h", tz="UTC").astype(str)})


def test_stratified_split_keeps_the_configs_fraction_and_seed(bench):
    config = load_config("sentiment")
    stratified = bench.with_split(config, "stratified")
    assert stratified.split.strategy == "stratified"
    assert stratified.split.validation_fraction == config.split.validation_fraction
    assert stratified.seed == config.seed and config.split.strategy == "auto"  # the original is untouched
    assert bench.with_split(config, "config") is config
    with pytest.raises(ValueError, match="split 'time'"):
        bench.with_split(config, "time")


def test_a_stratified_run_is_stored_and_titled_apart(bench):
    assert bench.results_key("airline", "config") == "airline"
    assert bench.results_key("airline", "stratified") == "airline@stratified"
    assert bench.split_title("Airline tweets", "stratified") == "Airline tweets (stratified random held-out)"
    assert bench.split_title("Airline tweets", "config") == "Airline tweets"


def test_clinc150_refuses_a_stratified_split(bench):
    with pytest.raises(ValueError, match="official split"):
        bench.run("clinc150", ["embedding"], 1, 0, split="stratified")


def test_fits_on_different_splits_of_equal_size_never_share_a_cache_key(bench):
    frame = tweets()
    config = load_config("sentiment")
    identities = {}
    for split in ("config", "stratified"):
        part = bench.with_split(config, split)
        train, _ = split_tickets(frame, "sentiment", part.split, part.seed)
        carved = carve_validation(train, "sentiment", 0.1, part.seed)
        identities[split] = bench.rows_identity(carved, "sentiment")
        assert identities[split] == bench.rows_identity(carve_validation(train, "sentiment", 0.1, part.seed),
                                                        "sentiment")  # deterministic: a rerun loads its fit
    assert len(split_tickets(frame, "sentiment", config.split, config.seed)[0]) == 48  # same sizes for both
    assert identities["config"] != identities["stratified"]


def kind(validation: float, held_out: float) -> dict:
    return {"accuracy": held_out, "macro_f1": held_out, "validation_accuracy": validation,
            "validation_macro_f1": validation}


def test_goals_judge_the_airline_goal_on_both_splits_by_validation(bench):
    results = {"airline": {"title": "Airline tweets", "kinds": {"tfidf": kind(0.78, 0.81), "finetune": kind(0.82, 0.76)}},
               "airline@stratified": {"title": "Airline tweets (stratified random held-out)",
                                      "kinds": {"tfidf": kind(0.75, 0.76), "finetune": kind(0.80, 0.805)}}}
    lines = bench.goals(results)
    time_line = next(line for line in lines if "time-ordered held-out part" in line)
    random_line = next(line for line in lines if "stratified random held-out part" in line)
    assert "finetune" in time_line and "held-out 0.760: NOT met" in time_line and "0.810, tfidf" in time_line
    assert "finetune" in random_line and "held-out 0.805: met" in random_line
    assert any("published" in line and "random samples" in line for line in lines)
    assert not any("BANKING77" in line for line in lines)
