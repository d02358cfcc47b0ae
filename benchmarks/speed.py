"""Training time, scoring rate, model size and memory of the default models.

On 50,000 generated tickets (``training.sample.generate_tickets``): fit time of
each task's default model, one after another and in parallel
(``fit_classifiers``, two worker processes); MLflow logging of each model,
timed apart; in-process bulk scoring of 10,000 other generated tickets with all
three models (median of five cold runs); each model's size as saved
(``joblib.dump`` with ``compress=3``) and peak memory. Results go to the
``speed`` section of docs/benchmarks.md.

Run from the project root: ``.venv/bin/python benchmarks/speed.py``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import joblib
import mlflow
import pandas as pd
import psutil
from report import machine_lines, markdown_table, say, write_section

from features.predictor import TicketClassifier
from features.schema import TASKS
from features.transformers import forget_recent_batches, forget_scored_words
from training.config import load_config
from training.pipelines import fit_classifier, fit_classifiers
from training.sample import generate_tickets

TRAIN_ROWS = 50_000
SCORE_ROWS = 10_000
SCORING_RUNS = 5
STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "NIGHTDESK_TRACKING_URI", "MLFLOW_REGISTRY_URI", "NIGHTDESK_REGISTRY_URI")
#: The costliest model first, so that two workers finish at about the same time.
PARALLEL_ORDER = ("category", "urgency", "sentiment")


class PeakMemory:
    """Peak resident memory of this process plus its children (the parallel workers), sampled."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, _resident(me) + sum(_resident(c) for c in me.children(recursive=True)))
            self._stop.wait(self.interval)


def _resident(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except psutil.Error:  # a worker that just exited
        return 0


def main() -> None:
    say(f"generating {TRAIN_ROWS:,} training and {SCORE_ROWS:,} scoring tickets ...")
    train = generate_tickets(TRAIN_ROWS)
    tickets = generate_tickets(SCORE_ROWS, seed=TRAIN_ROWS).drop(columns=list(TASKS))

    with PeakMemory() as sequential_memory:
        models, fit_seconds = fit_sequentially(train)
    with PeakMemory() as parallel_memory:
        parallel_seconds = fit_in_parallel(train)
    logging_seconds = mlflow_logging_seconds(models, train)
    scoring = scoring_seconds(models, tickets, "predict_frame")
    probabilities_only = scoring_seconds(models, tickets, "predict_proba")
    sizes = {task: saved_megabytes(model) for task, model in models.items()}
    write_section("speed", render(fit_seconds, parallel_seconds, logging_seconds, scoring, probabilities_only,
                                  sizes, sequential_memory.peak, parallel_memory.peak))
    say("wrote the speed section of docs/benchmarks.md")


def fit_sequentially(train: pd.DataFrame) -> tuple[dict[str, TicketClassifier], dict[str, float]]:
    models, seconds = {}, {}
    for task in TASKS:
        say(f"fitting {task} ...")
        started = time.perf_counter()
        models[task] = fit_classifier(train, task, load_config(task))
        seconds[task] = time.perf_counter() - started
        say(f"  {seconds[task]:.1f} s")
    return models, seconds


def fit_in_parallel(train: pd.DataFrame) -> float:
    # Remembered texts of the sequential run must not help: workers start cold anyway.
    forget_recent_batches()
    say("fitting all tasks in parallel ...")
    started = time.perf_counter()
    fit_classifiers(train, PARALLEL_ORDER, n_jobs=2)
    seconds = time.perf_counter() - started
    say(f"  {seconds:.1f} s")
    return seconds


def mlflow_logging_seconds(models: dict[str, TicketClassifier], train: pd.DataFrame) -> dict[str, float]:
    """Seconds to log and register each model in a fresh SQLite store (store creation not counted)."""
    from training import tracking
    from training.settings import NightdeskSettings, quiet_mlflow

    seconds = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["NIGHTDESK_HOME"] = home
        for variable in STORE_VARIABLES:  # a configured server must not receive benchmark models
            os.environ.pop(variable, None)
        settings = NightdeskSettings()
        quiet_mlflow()
        tracking.connect(settings)
        for task, model in models.items():
            experiment = tracking.ensure_experiment(settings, task)
            started = time.perf_counter()
            with mlflow.start_run(experiment_id=experiment):
                tracking.log_classifier(model, train, settings)
            seconds[task] = time.perf_counter() - started
            say(f"MLflow logging of {task}: {seconds[task]:.1f} s")
    return seconds


def scoring_seconds(models: dict[str, TicketClassifier], tickets: pd.DataFrame, method: str) -> list[float]:
    """Wall time of ``model.<method>(tickets)`` with every model, per run.

    Each run starts cold: the remembered last batch (cleaned texts, tokens) and the
    words' remembered character n-grams are dropped first, so only the second and
    third model of a run profit from them, as with new words in production.
    """
    runs = []
    for _ in range(SCORING_RUNS):
        forget_recent_batches()
        forget_scored_words()
        started = time.perf_counter()
        for model in models.values():
            getattr(model, method)(tickets)
        runs.append(time.perf_counter() - started)
    say(f"{method} runs: {', '.join(f'{s:.2f}' for s in runs)} s")
    return runs


def saved_megabytes(model: TicketClassifier) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        joblib.dump(model, path, compress=3)
        return path.stat().st_size / 1e6


def render(fit_seconds, parallel_seconds, logging_seconds, scoring, probabilities_only, sizes,
           sequential_peak, parallel_peak) -> str:
    median, features_median = statistics.median(scoring), statistics.median(probabilities_only)
    rows = [
        [task, f"{fit_seconds[task]:.1f}", f"{logging_seconds[task]:.1f}", f"{sizes[task]:.1f}"]
        for task in TASKS
    ]
    rows.append(["**all three, one after another**", f"**{sum(fit_seconds.values()):.1f}**",
                 f"{sum(logging_seconds.values()):.1f}", f"{sum(sizes.values()):.1f}"])
    rows.append(["**all three, `fit_classifiers` (2 processes)**", f"**{parallel_seconds:.1f}**", "", ""])
    return "\n".join([
        "## Speed and size",
        "",
        *machine_lines(),
        "",
        f"Training: the default model of each task fitted with `fit_classifier` on {TRAIN_ROWS:,} generated tickets",
        "(`generate_tickets(50000)`; synthetic, so these are timings only, no quality figures). Above",
        "`calibration_cv_max_rows` tickets the calibrator is fitted on one held-out slice instead of by",
        "cross-validation. One after another, the later tasks reuse the first task's cleaned texts; the",
        "parallel run (`fit_classifiers(train, tasks, n_jobs=2)`) starts each worker cold. MLflow logging",
        "(pyfunc model, joblib artifact, registration in a SQLite registry) is timed apart and not in the fit times.",
        "",
        markdown_table(["task", "fit s", "MLflow logging s", "saved size MB (joblib, compress=3)"], rows),
        "",
        f"Bulk scoring in process: {SCORE_ROWS:,} other generated tickets through `TicketClassifier.predict_frame`",
        f"of all three models (labels, probabilities, review flags and top features), {SCORING_RUNS} cold runs:",
        f"median **{median:.2f} s**, i.e. **{SCORE_ROWS / median:,.0f} tickets/s** with all three models",
        f"(runs: {', '.join(f'{s:.2f}' for s in scoring)} s). Features and probabilities alone",
        f"(`predict_proba`, same cold runs) take a median {features_median:.2f} s ({SCORE_ROWS / features_median:,.0f}",
        "tickets/s); the rest is the per-ticket output: explanations (`top_features`) and the answer frame.",
        "",
        f"Peak memory (resident, this process plus workers, sampled every 0.1 s): {sequential_peak / 2**30:.1f} GiB",
        f"fitting one after another, {parallel_peak / 2**30:.1f} GiB fitting in parallel.",
    ])


if __name__ == "__main__":
    main()
