"""validate_tickets counts every problem; prepare_training_frame drops with reasons."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from features.mapping import ColumnMapping, apply_mapping
from training.data import (
    LOAD_WARNINGS_ATTR,
    ValidationReport,
    prepare_training_frame,
    validate_tickets,
)


def tickets(**columns) -> pd.DataFrame:
    """A small ticket frame; text columns default to distinct, non-empty texts."""
    rows = len(next(iter(columns.values())))
    frame = {
        "id": [f"t{n}" for n in range(rows)],
        "subject": [f"subject {n}" for n in range(rows)],
        "body": [f"body {n}" for n in range(rows)],
    }
    frame.update(columns)
    return pd.DataFrame(frame)


def clean(rows: int = 6) -> pd.DataFrame:
    return tickets(urgency=(["critical", "high", "medium", "low"] * 3)[:rows])


# --- counts ----------------------------------------------------------------------------------


def test_clean_frame_is_ok():
    report = validate_tickets(tickets(urgency=["low"] * 5 + ["high"] * 5))

    assert report.ok
    assert report.errors == () and report.warnings == ()
    assert report.rows == report.usable_rows == 10
    assert report.label_distribution == {"urgency": {"high": 5, "low": 5}}
    assert report.trainable_rows == {"urgency": 10}


def test_missing_required_columns_are_errors():
    frame = clean().drop(columns=["subject"])

    report = validate_tickets(frame, tasks=["urgency", "sentiment"])

    assert report.missing_columns == ("subject", "sentiment")
    assert not report.ok
    assert any("'subject' is missing" in error for error in report.errors)
    assert any("label column 'sentiment' is missing" in error for error in report.errors)


def test_tasks_default_to_the_label_columns_present():
    report = validate_tickets(tickets(urgency=["low"] * 5, category=["a"] * 5))

    assert report.tasks == ("urgency", "category")
    assert report.missing_columns == ()


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        validate_tickets(clean(), tasks=["priority"])


def test_empty_texts_are_counted_and_blank_counts_as_empty():
    frame = clean()
    frame.loc[0, ["subject", "body"]] = ["", "  "]
    frame.loc[1, ["subject", "body"]] = [None, None]
    frame.loc[2, "subject"] = ""  # body still has text

    report = validate_tickets(frame)

    assert report.empty_text == 2
    assert report.usable_rows == 4
    assert any("empty subject and body in 2 rows" in warning for warning in report.warnings)


def test_zero_usable_rows_is_an_error():
    frame = clean()
    frame["subject"] = ""
    frame["body"] = " "

    report = validate_tickets(frame)

    assert not report.ok
    assert any("no usable rows" in error for error in report.errors)


def test_no_rows_is_an_error():
    assert not validate_tickets(clean().iloc[:0]).ok


def test_unknown_fixed_labels_are_errors():
    frame = tickets(urgency=["high", "urgent", "urgent", "P1", None, "low"])

    report = validate_tickets(frame)

    assert report.unknown_labels == {"urgency": {"urgent": 2, "P1": 1}}
    assert report.missing_labels == {"urgency": 1}
    assert report.trainable_rows == {"urgency": 2}
    assert any("'urgent' (2)" in error and "labels.urgency.values" in error for error in report.errors)


def test_unknown_category_labels_are_warnings_when_a_set_is_configured():
    frame = tickets(category=["billing"] * 5 + ["bling"] * 5)

    report = validate_tickets(frame, category_labels=("billing", "tech"))

    assert report.ok
    assert report.unknown_labels == {"category": {"bling": 5}}
    assert any("outside the configured set" in warning for warning in report.warnings)


def test_category_without_a_configured_set_has_no_unknown_labels():
    report = validate_tickets(tickets(category=["x"] * 5 + ["y"] * 5))

    assert report.unknown_labels == {"category": {}}


def test_missing_labels_are_warnings():
    frame = tickets(sentiment=["negative"] * 5 + ["positive"] * 5 + [None, ""])

    report = validate_tickets(frame)

    assert report.ok
    assert report.missing_labels == {"sentiment": 2}
    assert any("no sentiment label in 2 rows" in warning for warning in report.warnings)


def test_rare_classes_are_warnings():
    frame = tickets(category=["common"] * 6 + ["rare"] * 4)

    report = validate_tickets(frame)

    assert report.rare_classes("category") == {"rare": 4}
    assert any("rare category classes" in warning and "'rare' (4)" in warning for warning in report.warnings)


def test_duplicate_ids_and_texts():
    frame = clean()
    frame.loc[1, "id"] = "t0"
    frame.loc[2, "id"] = "t0"
    frame.loc[4, ["subject", "body"]] = frame.loc[3, ["subject", "body"]].tolist()

    report = validate_tickets(frame)

    assert report.duplicate_ids == 2
    assert report.duplicate_texts == 1


def test_timestamps_unparsable_and_naive():
    created = [
        "2024-03-01T23:10:00+01:00",
        "2024-03-01 08:00",
        "Tue Oct 31 22:10:47 +0000 2017",
        "yesterday",
        "31/31/2024",
        "soon",
        None,
        "",
    ]
    frame = tickets(created_at=created)

    report = validate_tickets(frame)

    assert report.unparsable_created_at == 3
    assert set(report.unparsable_created_at_examples) == {"yesterday", "31/31/2024", "soon"}
    assert report.naive_timestamps == 1
    assert any("read as UTC" in warning for warning in report.warnings)


def test_at_most_five_examples():
    frame = tickets(created_at=[f"bad {n}" for n in range(8)])

    assert len(validate_tickets(frame).unparsable_created_at_examples) == 5


def test_datetime_columns_are_checked_too():
    naive = tickets(created_at=pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00"]))
    aware = naive.assign(created_at=naive["created_at"].dt.tz_localize("Europe/Paris"))

    assert validate_tickets(naive).naive_timestamps == 2
    assert validate_tickets(aware).naive_timestamps == 0


def test_invalid_time_zones():
    zones = ["Europe/Paris", "America/New_York", "Eastern Time (US & Canada)", "Mars/Olympus", "Mars/Olympus", None, ""]

    report = validate_tickets(tickets(customer_timezone=zones))

    assert report.invalid_timezones == 3
    assert report.invalid_timezone_examples == ("Mars/Olympus", "Eastern Time (US & Canada)")
    assert any("timezone_aliases" in warning for warning in report.warnings)


def test_mapping_problems_reach_the_report():
    source = pd.DataFrame({"text": ["a", "b"]})
    mapping = ColumnMapping.model_validate(
        {"name": "m", "columns": {"body": "description", "created_at": "opened"}, "labels": {"urgency": "prio"}}
    )

    report = validate_tickets(apply_mapping(source, mapping), tasks=["urgency"])

    assert report.missing_source_columns == {"body": "description", "created_at": "opened", "urgency": "prio"}
    assert any("'body' is missing: the mapping reads it from 'description'" in error for error in report.errors)
    assert any("reads created_at from 'opened'" in warning for warning in report.warnings)


def test_load_warnings_reach_the_report():
    frame = clean()
    frame.attrs[LOAD_WARNINGS_ATTR] = ["t.csv is not valid UTF-8; read it as latin-1"]

    report = validate_tickets(frame)

    assert report.ok
    assert "t.csv is not valid UTF-8; read it as latin-1" in report.warnings


def test_validation_does_not_change_the_frame():
    frame = tickets(urgency=["low", "bad"], created_at=["2024-01-01", "nope"], customer_timezone=["UTC", "Nowhere"])
    before = frame.copy()

    validate_tickets(frame)

    pd.testing.assert_frame_equal(frame, before)


# --- rendering -------------------------------------------------------------------------------


@pytest.fixture
def troubled() -> pd.DataFrame:
    frame = tickets(
        urgency=["low", "high", "urgent", None, "low", "low"],
        created_at=["2024-01-01T10:00:00Z", "2024-01-01 10:00", "never", None, None, None],
        customer_timezone=["UTC", "Atlantis", None, None, None, None],
    )
    frame.loc[1, "id"] = "t0"
    frame.loc[2, ["subject", "body"]] = ["", ""]
    frame.loc[5, ["subject", "body"]] = frame.loc[4, ["subject", "body"]].tolist()
    return frame


def test_report_text_mentions_each_problem(troubled):
    text = validate_tickets(troubled).to_text()

    for expected in (
        "FAILED",
        "empty text",
        "duplicate ids",
        "duplicate texts",
        "unparsable created_at",
        "without offset",
        "invalid customer_timezone",
        "urgency: missing labels",
        "urgency: unknown labels",
        "'urgent' (1)",
        "'never'",
        "'Atlantis'",
        "urgency labels (3 classes)",
        "Errors (1)",
        "Warnings",
    ):
        assert expected in text, expected


def test_report_text_shows_counts_with_percentages(troubled):
    lines = validate_tickets(troubled).to_text().splitlines()

    empty_line = next(line for line in lines if "empty text" in line)
    assert empty_line.split()[-2:] == ["1", "16.7%"]
    low_line = next(line for line in lines if line.strip().startswith("low "))
    assert low_line.split()[-2:] == ["3", "60.0%"]  # of the 5 labelled rows


def test_report_to_dict_is_json_ready(troubled):
    data = json.loads(json.dumps(validate_tickets(troubled).to_dict()))

    assert data["ok"] is False
    assert data["unknown_labels"] == {"urgency": {"urgent": 1}}
    assert data["rows"] == 6
    assert isinstance(data["errors"], list)


def test_report_is_frozen():
    report = validate_tickets(clean())

    assert isinstance(report, ValidationReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.rows = 0  # type: ignore[misc]


# --- prepare_training_frame ------------------------------------------------------------------


def test_prepare_drops_rows_with_a_reason_each(troubled):
    report = validate_tickets(troubled)

    prepared = prepare_training_frame(troubled, "urgency", report)

    # row 2: empty text (its unknown label counts under its first reason only),
    # row 3: missing label, row 5: same subject, body and label as row 4.
    assert prepared.attrs["dropped"] == {"empty_text": 1, "missing_label": 1, "unknown_label": 0, "duplicate": 1}
    assert list(prepared.index) == [0, 1, 4]
    assert prepared["urgency"].tolist() == ["low", "high", "low"]


def test_prepare_drops_unknown_labels():
    frame = tickets(urgency=["low", "urgent", "high"])

    prepared = prepare_training_frame(frame, "urgency", validate_tickets(frame))

    assert prepared.attrs["dropped"]["unknown_label"] == 1
    assert prepared["urgency"].tolist() == ["low", "high"]


def test_prepare_keeps_same_text_with_different_labels():
    frame = tickets(urgency=["low", "high"])
    frame["subject"] = "same"
    frame["body"] = "same"

    prepared = prepare_training_frame(frame, "urgency", validate_tickets(frame))

    assert len(prepared) == 2
    assert prepared.attrs["dropped"]["duplicate"] == 0


def test_prepare_parses_created_at_to_utc(troubled):
    prepared = prepare_training_frame(troubled, "urgency", validate_tickets(troubled))
    created = prepared["created_at"]

    assert str(created.dt.tz) == "UTC"
    assert created[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert created[1] == pd.Timestamp("2024-01-01 10:00", tz="UTC")  # naive read as UTC
    assert pd.isna(created[4])


def test_prepare_turns_unparsable_dates_and_invalid_zones_into_missing():
    frame = tickets(
        urgency=["low", "high", "low"],
        created_at=["2024-05-01 09:00 -0500", "not a date", None],
        customer_timezone=["America/Chicago", "Atlantis", ""],
    )

    prepared = prepare_training_frame(frame, "urgency", validate_tickets(frame))

    assert prepared["created_at"][0] == pd.Timestamp("2024-05-01 14:00", tz="UTC")
    assert pd.isna(prepared["created_at"][1])
    assert prepared["customer_timezone"][0] == "America/Chicago"
    assert prepared["customer_timezone"][1:].isna().all()
    assert prepared.attrs["cleared"] == {"created_at": 1, "customer_timezone": 1}


def test_prepare_uses_the_reports_category_set():
    frame = tickets(category=["billing", "bling", "tech"])
    report = validate_tickets(frame, category_labels=("billing", "tech"))

    prepared = prepare_training_frame(frame, "category", report)

    assert prepared["category"].tolist() == ["billing", "tech"]
    assert prepared.attrs["dropped"]["unknown_label"] == 1


def test_prepare_normalises_label_codes_to_strings():
    frame = tickets(category=[4, 4.0, 11])

    prepared = prepare_training_frame(frame, "category", validate_tickets(frame))

    assert prepared["category"].tolist() == ["4", "4", "11"]  # 4.0 is code 4 read from a column with gaps


def test_prepare_does_not_change_its_input(troubled):
    before = troubled.copy()

    prepare_training_frame(troubled, "urgency", validate_tickets(troubled))

    pd.testing.assert_frame_equal(troubled, before)


def test_prepare_rejects_a_report_of_another_frame():
    with pytest.raises(ValueError, match="report describes"):
        prepare_training_frame(clean(6), "urgency", validate_tickets(clean(4)))


def test_prepare_needs_the_label_column():
    frame = clean()
    with pytest.raises(ValueError, match="sentiment"):
        prepare_training_frame(frame, "sentiment", validate_tickets(frame))
