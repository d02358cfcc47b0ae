"""Column mappings: YAML loading, error messages and applying them to frames."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from features.mapping import (
    MISSING_SOURCE_COLUMNS_ATTR,
    ColumnMapping,
    MappingError,
    apply_mapping,
    load_mapping,
    mapping_from_columns,
    schema_mapping,
    value_key,
)

EXAMPLE_YAML = """\
name: endava-it-tickets
source: {format: csv, delimiter: ",", encoding: utf-8}
columns:
  id: ticket_id
  subject: title
  body: body
  created_at: tweet_created
  customer_timezone: user_timezone
constants: {channel: email}
labels:
  urgency:
    column: urgency
    values: {"0": critical, "1": high, "2": medium, "3": low}
  category:
    column: category
    values: null
  sentiment: {column: airline_sentiment}
"""


def write(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> MappingError:
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert str(path) in str(caught.value)
    return caught.value


def make_mapping(**fields) -> ColumnMapping:
    return ColumnMapping.model_validate({"name": "test", **fields})


# --- loading ---------------------------------------------------------------------------


def test_load_mapping_reads_the_documented_format(tmp_path):
    mapping = load_mapping(write(tmp_path, EXAMPLE_YAML))

    assert mapping.name == "endava-it-tickets"
    assert mapping.columns["subject"] == "title"
    assert mapping.constants == {"channel": "email"}
    assert mapping.labels["urgency"].values == {"0": "critical", "1": "high", "2": "medium", "3": "low"}
    assert mapping.labels["category"].values is None
    assert mapping.labels["sentiment"].column == "airline_sentiment"
    assert mapping.source.read_options() == {"format": "csv", "sep": ",", "encoding": "utf-8"}


def test_yaml_int_keys_become_string_keys(tmp_path):
    text = "name: x\ncolumns: {body: b}\nlabels:\n  urgency: {column: u, values: {0: critical, 1.0: low}}\n"

    mapping = load_mapping(write(tmp_path, text))

    assert mapping.labels["urgency"].values == {"0": "critical", "1": "low"}


def test_label_shorthand_names_the_column(tmp_path):
    mapping = load_mapping(write(tmp_path, "name: x\ncolumns: {body: b}\nlabels: {sentiment: mood}\n"))

    assert mapping.labels["sentiment"].column == "mood"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\ncolumns: {body: b, bodyy: c}\n", "columns.bodyy: unknown key"),
        ("name: x\ncolums: {body: b}\n", "colums: unknown key"),
        ("columns: {body: b}\n", "name: required key is missing"),
        ("name: x\ncolumns: {body: b}\nlabels: {priority: p}\n", "labels.priority: unknown key"),
        ("name: x\ncolumns: {body: b}\nlabels: {urgency: {column: p, values: {P1: urgent}}}\n",
         "labels.urgency.values.P1: 'urgent' is not one of the urgency labels"),
        ("name: x\ncolumns: {body: b, id: [a, c]}\n", "columns.id: only subject and body"),
        ("name: x\ncolumns: {body: 3}\n", "columns.body: should be a source column name"),
        ("name: x\ncolumns: {body: b, channel: c}\nconstants: {channel: email}\n", "constants.channel"),
        ("name: x\ncolumns: {body: b}\nconstants: {channel: fax}\n", "constants.channel: 'fax' is not one of"),
        ("name: x\ncolumns: {body: b}\ntimezone_aliases: {Eastern: America/Nowhere}\n",
         "timezone_aliases.Eastern: 'America/Nowhere' is not an IANA time zone name"),
        ("name: x\nsource: {format: xlsx}\ncolumns: {body: b}\n", "source.format"),
    ],
)
def test_mapping_errors_name_the_file_and_key(tmp_path, yaml_text, expected):
    error = load_error(tmp_path, yaml_text)

    assert expected in str(error)
    assert any(expected in problem for problem in error.problems)


def test_all_field_problems_are_reported_at_once(tmp_path):
    error = load_error(tmp_path, "name: x\ncolumns: {body: b, foo: c}\nconstants: {channel: fax}\n")

    assert len(error.problems) == 2


@pytest.mark.parametrize("text", ["- a list\n", "name: [unclosed\n", ""])
def test_unusable_yaml_is_a_mapping_error(tmp_path, text):
    load_error(tmp_path, text)


def test_missing_mapping_file_names_the_path(tmp_path):
    with pytest.raises(MappingError, match="not found") as caught:
        load_mapping(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(caught.value)


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [(3, "3"), (3.0, "3"), (2.5, "2.5"), (" high ", "high"), ("", None), (None, None), (math.nan, None), (pd.NA, None)],
)
def test_value_key(value, key):
    assert value_key(value) == key


def test_mapping_from_one_text_column_fills_the_body():
    mapping = mapping_from_columns(["text"], "intent", "category")

    assert mapping.columns == {"body": "text"}
    assert mapping.labels["category"].column == "intent"


def test_mapping_from_two_text_columns_is_subject_and_body():
    mapping = mapping_from_columns(["title", "description"], "priority", "urgency")

    assert mapping.columns == {"subject": "title", "body": "description"}


def test_mapping_from_several_text_columns_joins_the_rest_into_the_body():
    mapping = mapping_from_columns(["title", "description", "notes"], "queue", "category")
    frame = pd.DataFrame({"title": ["T"], "description": ["D"], "notes": ["N"], "queue": ["q"]})

    tickets = apply_mapping(frame, mapping)

    assert tickets.loc[0, "subject"] == "T"
    assert tickets.loc[0, "body"] == "D\nN"


@pytest.mark.parametrize(("text_columns", "task"), [([], "urgency"), (["text"], "priority")])
def test_mapping_from_columns_rejects_bad_input(text_columns, task):
    with pytest.raises(MappingError):
        mapping_from_columns(text_columns, "label", task)


def test_schema_mapping_maps_schema_columns_to_themselves():
    mapping = schema_mapping(["subject", "body", "answer", "urgency"])

    assert mapping.columns == {"subject": "subject", "body": "body"}
    assert set(mapping.labels) == {"urgency"}


# --- applying -------------------------------------------------------------------------------


def test_apply_mapping_renames_and_orders_columns():
    frame = pd.DataFrame({"title": ["Printer"], "text": ["It jams"], "queue": ["IT"], "extra": [1]})
    mapping = make_mapping(columns={"subject": "title", "body": "text"}, labels={"category": "queue"})

    tickets = apply_mapping(frame, mapping)

    assert list(tickets.columns) == ["id", "subject", "body", "category"]
    assert tickets.iloc[0].to_dict() == {"id": "row-1", "subject": "Printer", "body": "It jams", "category": "IT"}


def test_ids_are_generated_per_row_when_unmapped():
    frame = pd.DataFrame({"text": ["a", "b", "c"]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text"}))

    assert tickets["id"].tolist() == ["row-1", "row-2", "row-3"]


def test_mapped_ids_become_strings():
    frame = pd.DataFrame({"ticket": [570306133677760513, 7], "text": ["a", "b"]})

    tickets = apply_mapping(frame, make_mapping(columns={"id": "ticket", "body": "text"}))

    assert tickets["id"].tolist() == ["570306133677760513", "7"]


def test_body_only_source_gets_an_empty_subject():
    frame = pd.DataFrame({"text": ["hello", None]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text"}))

    assert tickets["subject"].tolist() == ["", ""]
    assert tickets["body"].tolist() == ["hello", ""]


def test_constants_fill_every_row():
    frame = pd.DataFrame({"text": ["a", "b"]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text"}, constants={"channel": "social"}))

    assert tickets["channel"].tolist() == ["social", "social"]


def test_text_lists_are_joined_with_newlines_skipping_blanks():
    frame = pd.DataFrame({"a": ["A", "", None], "b": ["B", "B", None], "c": ["C", " ", "C"]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": ["a", "b", "c"]}))

    assert tickets["body"].tolist() == ["A\nB\nC", "B", "C"]


def test_label_values_are_recoded_by_string_keys_even_for_int_codes():
    frame = pd.DataFrame({"text": list("abcde"), "urgency": [0, 1, 2, 3, 7]})
    mapping = make_mapping(
        columns={"body": "text"},
        labels={"urgency": {"column": "urgency", "values": {"0": "critical", "1": "high", "2": "medium", "3": "low"}}},
    )

    tickets = apply_mapping(frame, mapping)

    # 7 is not in the map: it stays (as "7") so validation can count it as unknown.
    assert tickets["urgency"].tolist() == ["critical", "high", "medium", "low", "7"]


def test_float_codes_from_columns_with_gaps_still_match():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "urgency": [0.0, None, 3.0]})
    urgency = {"column": "urgency", "values": {0: "critical", 3: "low"}}
    mapping = make_mapping(columns={"body": "text"}, labels={"urgency": urgency})

    labels = apply_mapping(frame, mapping)["urgency"]

    assert labels[0] == "critical" and labels[2] == "low"
    assert pd.isna(labels[1])


def test_values_mapped_to_null_become_missing_labels():
    frame = pd.DataFrame({"text": ["a", "b"], "pr": ["P1", "--"]})
    urgency = {"column": "pr", "values": {"P1": "critical", "--": None}}
    mapping = make_mapping(columns={"body": "text"}, labels={"urgency": urgency})

    labels = apply_mapping(frame, mapping)["urgency"]

    assert labels[0] == "critical"
    assert pd.isna(labels[1])


def test_labels_without_values_are_kept_as_strings():
    frame = pd.DataFrame({"text": ["a", "b"], "category": [4, 11]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text"}, labels={"category": "category"}))

    assert tickets["category"].tolist() == ["4", "11"]


def test_timezone_aliases_apply_and_other_values_pass_through():
    zones = ["Eastern Time (US & Canada)", "Europe/Paris", "Atlantis", None]
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "tz": zones})
    mapping = make_mapping(
        columns={"body": "text", "customer_timezone": "tz"},
        timezone_aliases={"Eastern Time (US & Canada)": "America/New_York"},
    )

    zones = apply_mapping(frame, mapping)["customer_timezone"]

    assert zones.tolist()[:3] == ["America/New_York", "Europe/Paris", "Atlantis"]
    assert pd.isna(zones[3])


def test_timestamps_are_kept_as_given():
    frame = pd.DataFrame({"text": ["a", "b"], "when": ["2015-02-24 11:35:52 -0800", "not a date"]})

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text", "created_at": "when"}))

    assert tickets["created_at"].tolist() == ["2015-02-24 11:35:52 -0800", "not a date"]


def test_missing_source_columns_are_left_out_and_recorded():
    frame = pd.DataFrame({"text": ["a"]})
    mapping = make_mapping(
        columns={"subject": "title", "body": "text", "created_at": "when"},
        labels={"urgency": "priority"},
    )

    tickets = apply_mapping(frame, mapping)

    assert "subject" not in tickets.columns and "created_at" not in tickets.columns
    assert "urgency" not in tickets.columns
    missing = {"subject": "title", "created_at": "when", "urgency": "priority"}
    assert tickets.attrs[MISSING_SOURCE_COLUMNS_ATTR] == missing


def test_apply_mapping_does_not_change_its_input():
    frame = pd.DataFrame({"text": ["a", None], "urgency": [0, 1]}, index=[10, 20])
    before = frame.copy()

    urgency = {"column": "urgency", "values": {0: "low", 1: "high"}}

    tickets = apply_mapping(frame, make_mapping(columns={"body": "text"}, labels={"urgency": urgency}))

    pd.testing.assert_frame_equal(frame, before)
    assert list(tickets.index) == [10, 20]
