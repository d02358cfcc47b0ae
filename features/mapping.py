"""Column mappings: how a source's own columns become the ticket schema.

A helpdesk export never arrives in our schema, so each source gets a small YAML
file instead of code::

    name: endava-it-tickets
    source: {format: csv, delimiter: ",", encoding: utf-8}   # optional read hints
    columns:                     # schema column -> source column (or a list, for text)
      subject: title
      body: body
    constants: {channel: email}  # optional fixed values
    labels:
      urgency:
        column: urgency
        values: {"0": critical, "1": high, "2": medium, "3": low}
      category: {column: category}   # no values: keep the source's labels
    timezone_aliases: {"Eastern Time (US & Canada)": America/New_York}

``apply_mapping`` only renames and recodes: it never drops rows or parses
anything, so ``training.data.validate_tickets`` can count every problem.
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.schema import (
    CHANNELS,
    CUSTOMER_TIERS,
    TASKS,
    TEXT_COLUMNS,
    TICKET_COLUMNS,
    Task,
    TicketColumn,
    allowed_labels,
)

#: ``frame.attrs`` key under which ``apply_mapping`` records mapped source columns
#: the frame did not have ({schema column: source column(s)}); validation reports them.
MISSING_SOURCE_COLUMNS_ATTR = "missing_source_columns"

_TEXT_SEPARATOR = "\n"


class MappingError(ValueError):
    """A mapping file or spec is unusable; the message names the file and the key."""

    def __init__(self, message: str, *, path: Path | None = None, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.path = path
        self.problems = problems


def value_key(value: Any) -> str | None:
    """The string a source value is compared by; ``None`` when it is missing.

    Integral floats lose their ``.0`` because CSV columns with gaps are read as
    floats, and a code ``3`` must match the key ``"3"`` however pandas typed it.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


@functools.cache
def available_timezones() -> frozenset[str]:
    """IANA zone names known to this system (cached: the scan reads the tz database)."""
    return frozenset(zoneinfo.available_timezones())


class SourceHints(BaseModel):
    """How to read the source file; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "tsv", "parquet", "jsonl", "json"] | None = None
    delimiter: str | None = Field(default=None, min_length=1)
    #: Used when the file is not valid UTF-8 (UTF-8 is always tried first).
    encoding: str | None = None
    #: SQL for database sources; a query given on the command line wins.
    query: str | None = None

    def read_options(self) -> dict[str, str]:
        """The hints as ``training.data.load_frame`` read options."""
        options = {"format": self.format, "sep": self.delimiter, "encoding": self.encoding}
        return {key: value for key, value in options.items() if value is not None}


class LabelMapping(BaseModel):
    """Where a task's label comes from and how source values become labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(min_length=1)
    #: Source value -> label (``None`` marks the value as "no label"). Values not
    #: listed are kept, so validation can count them; ``None`` keeps all as they are.
    values: dict[str, str | None] | None = None

    @model_validator(mode="before")
    @classmethod
    def _column_shorthand(cls, data: Any) -> Any:
        # ``sentiment: airline_sentiment`` is short for ``{column: airline_sentiment}``.
        return {"column": data} if isinstance(data, str) else data

    @field_validator("values", mode="before")
    @classmethod
    def _string_keys(cls, values: Any) -> Any:
        # YAML reads ``{0: critical}`` with int keys; compare everything as strings.
        if not isinstance(values, Mapping):
            return values
        return {value_key(key): (None if target is None else str(target)) for key, target in values.items()}


class ColumnMapping(BaseModel):
    """A source's column mapping into the ticket schema (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str | None = None
    source: SourceHints = SourceHints()
    columns: dict[TicketColumn, str | list[str]] = Field(default_factory=dict)
    constants: dict[TicketColumn, str] = Field(default_factory=dict)
    labels: dict[Task, LabelMapping] = Field(default_factory=dict)
    #: Source time zone value -> IANA name, for exports that use other names
    #: (e.g. Rails' "Eastern Time (US & Canada)").
    timezone_aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _lists_only_for_text(cls, columns: dict[TicketColumn, str | list[str]]) -> dict:
        for column, source in columns.items():
            if isinstance(source, list) and column.value not in TEXT_COLUMNS:
                raise ValueError(f"columns.{column}: only subject and body may join several source columns")
            if isinstance(source, list) and not source:
                raise ValueError(f"columns.{column}: the list of source columns is empty")
        return columns

    @field_validator("constants")
    @classmethod
    def _known_constant_values(cls, constants: dict[TicketColumn, str]) -> dict:
        fixed = {TicketColumn.CHANNEL: CHANNELS, TicketColumn.CUSTOMER_TIER: CUSTOMER_TIERS}
        for column, value in constants.items():
            if column in fixed and value not in fixed[column]:
                raise ValueError(f"constants.{column}: {value!r} is not one of {', '.join(fixed[column])}")
        return constants

    @field_validator("timezone_aliases")
    @classmethod
    def _aliases_name_real_zones(cls, aliases: dict[str, str]) -> dict:
        for alias, zone in aliases.items():
            if zone not in available_timezones():
                raise ValueError(f"timezone_aliases.{alias}: {zone!r} is not an IANA time zone name")
        return aliases

    @field_validator("labels")
    @classmethod
    def _fixed_label_targets(cls, labels: dict[Task, LabelMapping]) -> dict:
        for task, label in labels.items():
            _check_label_targets(task.value, label)
        return labels

    @model_validator(mode="after")
    def _constants_not_mapped(self) -> ColumnMapping:
        for column in self.constants:
            if column in self.columns:
                raise ValueError(f"constants.{column}: {column} is also mapped in columns; keep one")
        return self


def _check_label_targets(task: str, label: LabelMapping) -> None:
    allowed = allowed_labels(task)
    if allowed is None or label.values is None:
        return
    for key, target in label.values.items():
        if target is not None and target not in allowed:
            expected = ", ".join(allowed)
            raise ValueError(f"labels.{task}.values.{key}: {target!r} is not one of the {task} labels ({expected})")


def _as_tuple(source: str | list[str]) -> tuple[str, ...]:
    return (source,) if isinstance(source, str) else tuple(source)


# --- loading -----------------------------------------------------------------


def load_mapping(path: Path) -> ColumnMapping:
    """Read and check a mapping YAML; ``MappingError`` names the file and each bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"{path}: mapping file not found", path=path) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MappingError(f"{path}: cannot read mapping: {error}", path=path) from error
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: a mapping file must be a YAML mapping with name, columns, labels", path=path)
    try:
        return ColumnMapping.model_validate(raw)
    except ValidationError as error:
        problems = tuple(dict.fromkeys(_describe(detail) for detail in error.errors()))
        message = f"{path}: invalid column mapping:\n" + "\n".join(f"  - {problem}" for problem in problems)
        raise MappingError(message, path=path, problems=problems) from None


def _describe(detail: Mapping[str, Any]) -> str:
    """One pydantic error as 'key.path: problem'."""
    loc = [str(part) for part in detail["loc"]]
    is_key = bool(loc) and loc[-1] == "[key]"
    where = ".".join(part for part in loc if not _is_pydantic_marker(part))
    message = str(detail["msg"]).removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if detail["type"] == "missing":
        return f"{where}: required key is missing"
    if is_key:
        return f"{where}: unknown key: {message}"
    if detail["loc"][:1] == ("columns",) and len(detail["loc"]) > 2:
        return f"{where}: should be a source column name or a list of them"
    if not where or message.startswith((f"{where}.", f"{where}:")):
        return message  # our own validators already name the key
    return f"{where}: {message}"


def _is_pydantic_marker(part: str) -> bool:
    # Union branches and key markers in pydantic locations; users know only their keys.
    return part in ("[key]", "str") or part.startswith(("list[", "function-"))


def mapping_from_columns(text_columns: list[str], label_column: str, task: str) -> ColumnMapping:
    """A mapping for the command line's ``--text-columns`` style.

    The first text column is the subject and the others are joined into the
    body; a single text column is the body (and the subject stays empty).
    """
    if not text_columns:
        raise MappingError("at least one text column is needed")
    if task not in TASKS:
        raise MappingError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if len(text_columns) == 1:
        columns: dict[str, str | list[str]] = {"body": text_columns[0]}
    else:
        rest = list(text_columns[1:])
        columns = {"subject": text_columns[0], "body": rest[0] if len(rest) == 1 else rest}
    return ColumnMapping(name="command-line", columns=columns, labels={task: {"column": label_column}})


def schema_mapping(columns: Iterable[str]) -> ColumnMapping:
    """The identity mapping for a source that already uses schema column names.

    ``body`` is always mapped, so a source without it is reported by validation
    instead of passing as tickets with empty text; ``subject`` is optional.
    """
    present = set(columns) | {TicketColumn.BODY.value}
    return ColumnMapping(
        name="schema",
        columns={column: column for column in TICKET_COLUMNS if column in present},
        labels={task: {"column": task} for task in TASKS if task in present},
    )


# --- applying ------------------------------------------------------------------


def apply_mapping(frame: pd.DataFrame, mapping: ColumnMapping) -> pd.DataFrame:
    """``frame`` in the ticket schema: mapped TICKET_COLUMNS, then label columns.

    Pure. Mapped source columns that ``frame`` lacks are left out and listed in
    ``result.attrs["missing_source_columns"]`` for validation to report. Text is
    never missing (``""``); labels are strings or missing; timestamps are kept
    as given (validation parses them); time zones pass through their aliases.
    """
    missing: dict[str, str] = {}
    result: dict[str, pd.Series] = {}
    for column in TICKET_COLUMNS:
        values = _schema_column(frame, mapping, column, missing)
        if values is not None:
            result[column] = values
    for task in TASKS:
        label = mapping.labels.get(Task(task))
        if label is None:
            continue
        if label.column not in frame.columns:
            missing[task] = label.column
            continue
        result[task] = _label_values(frame[label.column], label.values)
    mapped = pd.DataFrame(result, index=frame.index)
    mapped.attrs = {**frame.attrs, "mapping": mapping.name, MISSING_SOURCE_COLUMNS_ATTR: missing}
    return mapped


def _schema_column(
    frame: pd.DataFrame, mapping: ColumnMapping, column: str, missing: dict[str, str]
) -> pd.Series | None:
    key = TicketColumn(column)
    if key in mapping.constants:
        return pd.Series(mapping.constants[key], index=frame.index, dtype="str")
    if key not in mapping.columns:
        return _default_column(frame, mapping, column)
    sources = _as_tuple(mapping.columns[key])
    absent = [source for source in sources if source not in frame.columns]
    if absent:
        missing[column] = ", ".join(absent)
        return None
    if column in TEXT_COLUMNS:
        return _joined_text([_text(frame[source]) for source in sources])
    if column == TicketColumn.ID:
        return _as_strings(frame[sources[0]])
    if column == TicketColumn.CUSTOMER_TIMEZONE and mapping.timezone_aliases:
        aliases = mapping.timezone_aliases
        return frame[sources[0]].map(lambda zone: aliases.get(zone, zone) if isinstance(zone, str) else zone)
    return frame[sources[0]].copy()


def _default_column(frame: pd.DataFrame, mapping: ColumnMapping, column: str) -> pd.Series | None:
    """Values for a schema column the mapping does not mention, if it has a default."""
    if column == TicketColumn.ID:
        return pd.Series([f"row-{n}" for n in range(1, len(frame) + 1)], index=frame.index, dtype="str")
    mentioned = {*mapping.columns, *mapping.constants}
    mentions_text = any(TicketColumn(text) in mentioned for text in TEXT_COLUMNS)
    if column in TEXT_COLUMNS and mentions_text:
        # A source with only a body (chats, tweets) simply has an empty subject.
        return pd.Series("", index=frame.index, dtype="str")
    return None


def _text(values: pd.Series) -> pd.Series:
    return values.fillna("").astype("str")


def _joined_text(parts: list[pd.Series]) -> pd.Series:
    """Join text columns row by row with newlines, skipping blank parts."""
    joined = parts[0]
    for part in parts[1:]:
        left, right = joined.str.strip() != "", part.str.strip() != ""
        joined = (joined + _TEXT_SEPARATOR + part).where(left & right, joined.where(left, part))
    return joined


def _as_strings(values: pd.Series) -> pd.Series:
    return values.map(value_key).astype("str")


def _label_values(values: pd.Series, recode: dict[str, str | None] | None) -> pd.Series:
    keys = values.map(value_key)
    if recode is not None:
        keys = keys.map(lambda key: recode.get(key, key) if key is not None else None)
    return keys.astype("str")
