"""Loading ticket sources: file formats, databases, encodings and built-in mappings."""

from __future__ import annotations

import gzip
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from features.mapping import ColumnMapping, MappingError
from training.data import (
    LOAD_WARNINGS_ATTR,
    DataLoadError,
    builtin_mapping,
    builtin_mapping_names,
    load_frame,
    load_named_mapping,
    load_tickets,
)

ROWS = [
    {"title": "VPN down", "text": "Cannot connect since 9am", "urgency": 0},
    {"title": "Invoice", "text": "Please resend the invoice", "urgency": 3},
]
URGENCY_SPEC = {
    "name": "test",
    "columns": {"subject": "title", "body": "text"},
    "labels": {"urgency": {"column": "urgency", "values": {"0": "critical", "3": "low"}}},
}
URGENCY_MAPPING = ColumnMapping.model_validate(URGENCY_SPEC)


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(ROWS)


def assert_rows(frame: pd.DataFrame) -> None:
    assert frame["title"].tolist() == ["VPN down", "Invoice"]
    assert frame["urgency"].astype(int).tolist() == [0, 3]


# --- file formats ----------------------------------------------------------------------------


def test_csv(tmp_path, rows):
    rows.to_csv(tmp_path / "t.csv", index=False)
    assert_rows(load_frame(tmp_path / "t.csv"))


def test_csv_with_another_separator(tmp_path, rows):
    rows.to_csv(tmp_path / "t.csv", index=False, sep=";")
    assert_rows(load_frame(tmp_path / "t.csv", read_options={"sep": ";"}))
    assert_rows(load_frame(tmp_path / "t.csv", read_options={"delimiter": ";"}))


def test_tsv(tmp_path, rows):
    rows.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    assert_rows(load_frame(str(tmp_path / "t.tsv")))


def test_compressed_csv(tmp_path, rows):
    with gzip.open(tmp_path / "t.csv.gz", "wt", encoding="utf-8") as handle:
        rows.to_csv(handle, index=False)
    assert_rows(load_frame(tmp_path / "t.csv.gz"))


def test_parquet(tmp_path, rows):
    rows.to_parquet(tmp_path / "t.parquet")
    assert_rows(load_frame(tmp_path / "t.parquet"))


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(tmp_path, rows, suffix):
    rows.to_json(tmp_path / f"t{suffix}", orient="records", lines=True)
    assert_rows(load_frame(tmp_path / f"t{suffix}"))


def test_json_records_keep_timestamps_as_text(tmp_path):
    (tmp_path / "t.json").write_text(
        '[{"title": "VPN down", "urgency": 0, "created_at": "2024-03-01T23:10:00+01:00"},'
        ' {"title": "Invoice", "urgency": 3, "created_at": "2024-03-02 08:00"}]',
        encoding="utf-8",
    )

    frame = load_frame(tmp_path / "t.json")

    assert_rows(frame)
    assert frame["created_at"].tolist() == ["2024-03-01T23:10:00+01:00", "2024-03-02 08:00"]


def test_format_option_overrides_the_suffix(tmp_path, rows):
    rows.to_csv(tmp_path / "export.txt", index=False)
    assert_rows(load_frame(tmp_path / "export.txt", read_options={"format": "csv"}))


def test_unknown_suffix_names_supported_formats(tmp_path):
    (tmp_path / "t.xlsx").write_bytes(b"x")
    with pytest.raises(DataLoadError, match=r"t\.xlsx.*\.csv.*\.parquet.*database URL"):
        load_frame(tmp_path / "t.xlsx")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataLoadError, match="absent.csv"):
        load_frame(tmp_path / "absent.csv")


def test_a_query_needs_a_database(tmp_path, rows):
    rows.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataLoadError, match="database URL"):
        load_frame(tmp_path / "t.csv", query="SELECT 1")


def test_malformed_json_is_a_load_error(tmp_path):
    (tmp_path / "t.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataLoadError, match=r"t\.json"):
        load_frame(tmp_path / "t.json")


# --- encodings -------------------------------------------------------------------------------


def test_latin1_csv_falls_back_with_a_recorded_warning(tmp_path):
    (tmp_path / "t.csv").write_bytes("subject,body\nCafé,crème brûlée\n".encode("latin-1"))

    frame = load_frame(tmp_path / "t.csv")

    assert frame.loc[0, "subject"] == "Café"
    assert frame.loc[0, "body"] == "crème brûlée"
    assert "latin-1" in frame.attrs[LOAD_WARNINGS_ATTR][0]


def test_declared_encoding_is_the_fallback(tmp_path):
    (tmp_path / "t.csv").write_bytes("subject,body\nPrice,10 €\n".encode("cp1252"))

    frame = load_frame(tmp_path / "t.csv", read_options={"encoding": "cp1252"})

    assert frame.loc[0, "body"] == "10 €"
    assert "cp1252" in frame.attrs[LOAD_WARNINGS_ATTR][0]


def test_utf8_csv_has_no_load_warning(tmp_path):
    (tmp_path / "t.csv").write_text("subject,body\nCafé,ok\n", encoding="utf-8")

    frame = load_frame(tmp_path / "t.csv", read_options={"encoding": "latin-1"})

    assert frame.loc[0, "subject"] == "Café"
    assert LOAD_WARNINGS_ATTR not in frame.attrs


def test_load_tickets_keeps_the_encoding_warning(tmp_path):
    (tmp_path / "t.csv").write_bytes("title,text,urgency\nCafé,crème,0\n".encode("latin-1"))

    tickets = load_tickets(tmp_path / "t.csv", URGENCY_MAPPING)

    assert tickets.attrs[LOAD_WARNINGS_ATTR]


# --- databases -------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path, rows) -> str:
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    engine = sa.create_engine(url)
    rows.to_sql("tickets", engine, index=False)
    engine.dispose()
    return url


def test_sqlite_query(sqlite_url):
    assert_rows(load_frame(sqlite_url, query="SELECT * FROM tickets ORDER BY urgency"))


def test_sqlite_query_with_parameters(sqlite_url):
    query = "SELECT * FROM tickets WHERE urgency < :top"

    frame = load_frame(sqlite_url, query=query, read_options={"params": {"top": 1}})

    assert frame["title"].tolist() == ["VPN down"]


def test_database_needs_a_query(sqlite_url):
    with pytest.raises(DataLoadError, match="needs a query"):
        load_frame(sqlite_url)


def test_failing_query_is_a_load_error(sqlite_url):
    with pytest.raises(DataLoadError, match="no such table"):
        load_frame(sqlite_url, query="SELECT * FROM nowhere")


def test_database_errors_hide_the_password():
    with pytest.raises(DataLoadError) as caught:
        load_frame("nosuchdialect://user:hunter2@localhost/db", query="SELECT 1")
    assert "hunter2" not in str(caught.value)


def test_load_tickets_from_a_database(sqlite_url):
    tickets = load_tickets(sqlite_url, URGENCY_MAPPING, query="SELECT * FROM tickets ORDER BY urgency")

    assert tickets["urgency"].tolist() == ["critical", "low"]


# --- load_tickets ----------------------------------------------------------------------------


def test_int_codes_read_from_csv_map_through_string_keys(tmp_path, rows):
    rows.to_csv(tmp_path / "t.csv", index=False)

    tickets = load_tickets(tmp_path / "t.csv", URGENCY_MAPPING)

    assert tickets["urgency"].tolist() == ["critical", "low"]
    assert tickets["subject"].tolist() == ["VPN down", "Invoice"]


def test_mapping_read_hints_are_used(tmp_path, rows):
    rows.to_csv(tmp_path / "t.csv", index=False, sep=";")
    mapping = ColumnMapping.model_validate({**URGENCY_SPEC, "source": {"delimiter": ";"}})

    tickets = load_tickets(tmp_path / "t.csv", mapping)

    assert tickets["body"].tolist() == ["Cannot connect since 9am", "Please resend the invoice"]


def test_without_a_mapping_only_schema_columns_are_kept(tmp_path):
    frame = pd.DataFrame({"subject": ["s"], "body": ["b"], "answer": ["leaks the label"], "urgency": ["high"]})
    frame.to_csv(tmp_path / "t.csv", index=False)

    tickets = load_tickets(tmp_path / "t.csv")

    assert list(tickets.columns) == ["id", "subject", "body", "urgency"]


# --- built-in mappings -----------------------------------------------------------------------


def test_builtin_mappings_are_listed():
    assert {"banking77", "airline-sentiment", "endava-it-tickets"} <= set(builtin_mapping_names())


@pytest.mark.parametrize("name", builtin_mapping_names())
def test_every_builtin_mapping_is_valid(name):
    mapping = load_named_mapping(name)

    assert mapping.name == name
    assert builtin_mapping(name).read_text(encoding="utf-8").startswith("#")  # documented source and licence


@pytest.mark.parametrize(
    ("name", "leaking_column"),
    [("helpdesk-tickets", "answer"), ("airline-sentiment", "negativereason"), ("itsm-assignment", "Caller")],
)
def test_builtin_mappings_never_read_leaking_columns(name, leaking_column):
    raw = yaml.safe_load(builtin_mapping(name).read_text(encoding="utf-8"))
    used = [*raw.get("columns", {}).values(), *(label["column"] for label in raw.get("labels", {}).values())]

    assert leaking_column not in used


def test_unknown_builtin_lists_the_available_names():
    with pytest.raises(MappingError, match="available: .*banking77"):
        builtin_mapping("no-such-set")


def test_builtin_names_cannot_escape_the_folder():
    with pytest.raises(MappingError):
        builtin_mapping("../defaults/whatever")


def test_named_mapping_accepts_a_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ncolumns: {body: text}\n", encoding="utf-8")

    assert load_named_mapping(str(path)).name == "mine"
    assert load_named_mapping(path).name == "mine"
