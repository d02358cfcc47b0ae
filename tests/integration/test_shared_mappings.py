"""Every shipped mapping against the real public data in ../shared/data.

Run with ``pytest -m shared_data tests/integration/test_shared_mappings.py``;
skipped cleanly where the folder or a file is absent (a fresh machine has none).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.schema import SENTIMENT_LABELS, URGENCY_LABELS
from training.data import (
    builtin_mapping_names,
    load_named_mapping,
    load_tickets,
    prepare_training_frame,
    validate_tickets,
)

pytestmark = pytest.mark.shared_data

SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"

#: Shipped mapping -> its file under ../shared/data.
DATA_FILES = {
    "airline-sentiment": "airline-sentiment/train.csv",
    "banking77": "banking77/train.csv",
    "bug-reports": "bug-reports/train.csv",
    "clinc150": "clinc150/train_val.csv",
    "endava-it-tickets": "it-tickets/endava_subset.csv",
    "github-issues": "github-issues/train.csv",
    "helpdesk-tickets": "helpdesk-tickets/train.csv",
    "helpdesk-tickets-german": "helpdesk-tickets/german_normalized.csv",
    "itsm-assignment": "it-tickets/itsm_assignment.csv",
}


def load_shared(name: str) -> pd.DataFrame:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    path = SHARED_DATA / DATA_FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return load_tickets(path, load_named_mapping(name))


def labels(tickets: pd.DataFrame, task: str) -> set[str]:
    return set(tickets[task].dropna())


def test_every_shipped_mapping_has_a_data_file():
    assert set(builtin_mapping_names()) == set(DATA_FILES)


@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_mapping_validates_without_errors(name):
    tickets = load_shared(name)

    report = validate_tickets(tickets)

    assert report.ok, report.to_text()
    assert report.missing_source_columns == {}
    assert report.usable_rows / report.rows > 0.95
    for task in report.tasks:
        prepared = prepare_training_frame(tickets, task, report)
        assert len(prepared) + sum(prepared.attrs["dropped"].values()) == report.rows
        assert len(prepared) > 0.9 * report.trainable_rows[task]


def test_airline_sentiment_labels_times_and_zones():
    tickets = load_shared("airline-sentiment")

    report = validate_tickets(tickets)

    assert labels(tickets, "sentiment") == set(SENTIMENT_LABELS)
    assert set(tickets["channel"]) == {"social"}
    assert report.unparsable_created_at == 0 and report.naive_timestamps == 0
    # Every user_timezone value in the file has an alias or is already IANA.
    assert report.invalid_timezones == 0
    with_zone = tickets["customer_timezone"].notna().sum()
    assert with_zone > 0.6 * len(tickets)
    assert tickets["customer_timezone"].value_counts().index[0] == "America/New_York"


def test_banking77_has_77_intents():
    tickets = load_shared("banking77")

    assert len(labels(tickets, "category")) == 77
    assert (tickets["subject"] == "").all()


def test_clinc150_keeps_out_of_scope():
    tickets = load_shared("clinc150")

    assert "oos" in labels(tickets, "category")
    assert len(labels(tickets, "category")) == 151


def test_github_issues_are_bug_feature_question():
    assert labels(load_shared("github-issues"), "category") == {"bug", "feature", "question"}


@pytest.mark.parametrize("name", ["helpdesk-tickets", "helpdesk-tickets-german"])
def test_helpdesk_priorities_and_queues(name):
    tickets = load_shared(name)

    assert labels(tickets, "urgency") == {"low", "medium", "high"}
    assert len(labels(tickets, "category")) == 10
    assert "answer" not in tickets.columns


def test_endava_urgency_codes_run_from_critical_to_low():
    tickets = load_shared("endava-it-tickets")

    counts = tickets["urgency"].value_counts()
    assert set(counts.index) == set(URGENCY_LABELS)
    # Code 3 (service requests) is the bulk and code 0 the rarest: low and critical.
    assert counts.idxmax() == "low" and counts.idxmin() == "critical"


def test_bug_report_priorities_with_untriaged_as_missing():
    tickets = load_shared("bug-reports")

    report = validate_tickets(tickets)

    assert labels(tickets, "urgency") == set(URGENCY_LABELS)
    assert report.missing_labels["urgency"] > 0  # Mozilla's "--"
    assert tickets["urgency"].value_counts().idxmax() == "medium"


def test_itsm_groups():
    tickets = load_shared("itsm-assignment")

    assert all(group.startswith("GRP_") for group in labels(tickets, "category"))
