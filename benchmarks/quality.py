"""Quality of the default models on real public data sets (``../shared/data``).

Each set is loaded through its shipped column mapping, checked and prepared as
``nightdesk train`` does, split with the config's own split (time-ordered when
every ticket has a timestamp, else stratified, seeded), fitted with the task's
packaged default config and scored on the validation part. Results go to the
``quality`` section of docs/benchmarks.md.

Run from the project root: ``.venv/bin/python benchmarks/quality.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from report import machine_lines, markdown_table, say, shared_data_folder, write_section

from training.config import TrainConfig, load_config
from training.data import RARE_CLASS_MIN, load_named_mapping, load_tickets, prepare_training_frame, validate_tickets
from training.evaluate import EvaluationReport, evaluate_probabilities
from training.pipelines import fit_classifier
from training.split import has_timestamps, split_tickets


@dataclass(frozen=True)
class DataSet:
    title: str
    mapping: str
    file: str
    task: str


DATA_SETS = (
    DataSet("BANKING77 intents", "banking77", "banking77/train.csv", "category"),
    DataSet("Airline tweets", "airline-sentiment", "airline-sentiment/train.csv", "sentiment"),
    DataSet("Helpdesk tickets: queue", "helpdesk-tickets", "helpdesk-tickets/train.csv", "category"),
    DataSet("Helpdesk tickets: priority", "helpdesk-tickets", "helpdesk-tickets/train.csv", "urgency"),
    DataSet("ITSM assignment group", "itsm-assignment", "it-tickets/itsm_assignment.csv", "category"),
    DataSet("GitHub issues: label", "github-issues", "github-issues/train.csv", "category"),
    DataSet("Bug reports: priority", "bug-reports", "bug-reports/train.csv", "urgency"),
)


@dataclass(frozen=True)
class Result:
    data: DataSet
    split: str
    train_rows: int
    validation_rows: int
    left_out_classes: int
    report: EvaluationReport
    fit_seconds: float


def main() -> None:
    folder = shared_data_folder()
    results, skipped = [], []
    for data in DATA_SETS:
        path = folder / data.file
        if not path.is_file():
            say(f"skipping {data.title}: {path} not found (set NIGHTDESK_SHARED_DATA to the data folder)")
            skipped.append(data.title)
            continue
        say(f"{data.title} ({data.task}) ...")
        result = evaluate(data, path, load_config(data.task))
        say(f"  accuracy {result.report.accuracy:.4f}, macro-F1 {result.report.macro_f1:.4f}, "
            f"fit {result.fit_seconds:.1f} s")
        results.append(result)
    if not results:
        say(f"no data set found under {folder}: nothing written")
        return
    write_section("quality", render(results, skipped))
    say("wrote the quality section of docs/benchmarks.md")


def evaluate(data: DataSet, path: Path, config: TrainConfig) -> Result:
    frame = load_tickets(path, load_named_mapping(data.mapping))
    labels, left_out = trainable_categories(frame, data.task)
    validation = validate_tickets(frame, tasks=[data.task], category_labels=labels)
    usable = prepare_training_frame(frame, data.task, validation)
    train, held_out = split_tickets(usable, data.task, config.split, config.seed)
    started = time.perf_counter()
    classifier = fit_classifier(train, data.task, config)
    fit_seconds = time.perf_counter() - started
    probabilities = classifier.predict_proba(held_out)
    report = evaluate_probabilities(
        held_out[data.task], probabilities, classifier.labels, config.evaluation.calibration_bins
    )
    split = "time" if config.split.strategy == "time" or (
        config.split.strategy == "auto" and has_timestamps(usable)) else "stratified"
    return Result(data, split, len(train), len(held_out), left_out, report, fit_seconds)


def trainable_categories(frame: pd.DataFrame, task: str) -> tuple[tuple[str, ...] | None, int]:
    """Category labels with at least RARE_CLASS_MIN tickets, and how many classes that leaves out.

    Validation flags rarer classes: too few to train on and to evaluate (a class
    with one ticket cannot be in both parts of a split). Other tasks have fixed labels.
    """
    if task != "category":
        return None, 0
    counts = frame[task].dropna().astype(str).value_counts()
    kept = counts[counts >= RARE_CLASS_MIN]
    if len(kept) == len(counts):
        return None, 0
    return tuple(sorted(kept.index)), len(counts) - len(kept)


def render(results: list[Result], skipped: list[str]) -> str:
    header = ["data set", "task", "split", "classes", "train / validation", "accuracy (± s.e.)", "macro-F1",
              "majority baseline acc / macro-F1", "ECE", "fit s"]
    rows = [_row(result) for result in results]
    notes = [
        "## Quality on real data",
        "",
        *machine_lines(),
        "",
        "Default config per task (`load_config(task)`), fitted with `training.pipelines.fit_classifier` on the",
        "training part of the split that `nightdesk train` makes (`split: auto`: time-ordered when every ticket",
        "has a timestamp, else stratified with the config's seed; 20 % validation), scored on the validation part.",
        "Only the sets' published training files are used. s.e. is the binomial standard error of the accuracy:",
        "differences smaller than about two of them are noise.",
        "",
        markdown_table(header, rows),
    ]
    left_out = [r for r in results if r.left_out_classes]
    for result in left_out:
        notes += ["", f"{result.data.title}: {result.left_out_classes} classes with fewer than {RARE_CLASS_MIN} "
                      "tickets in the file are left out (passed as `category_labels`; validation flags them as rare)."]
    if skipped:
        notes += ["", "Skipped (file not found): " + ", ".join(skipped) + "."]
    return "\n".join(notes)


def _row(result: Result) -> list[str]:
    report = result.report
    error = math.sqrt(report.accuracy * (1 - report.accuracy) / report.n)
    baseline = report.majority_baseline
    return [
        result.data.title,
        result.data.task,
        result.split,
        str(len(report.labels)),
        f"{result.train_rows:,} / {result.validation_rows:,}",
        f"{report.accuracy:.3f} (± {error:.3f})",
        f"{report.macro_f1:.3f}",
        f"{baseline.accuracy:.3f} / {baseline.macro_f1:.3f}",
        f"{report.expected_calibration_error:.3f}",
        f"{result.fit_seconds:.1f}",
    ]


if __name__ == "__main__":
    main()
