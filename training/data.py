"""Loading ticket exports and checking them before training.

I/O lives only in the ``load_*`` functions; ``validate_tickets`` and
``prepare_training_frame`` are pure, so the same checks run on a CSV, a
Parquet file or a database query, and nothing is dropped without a count.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.mapping import (
    MISSING_SOURCE_COLUMNS_ATTR,
    ColumnMapping,
    MappingError,
    apply_mapping,
    available_timezones,
    load_mapping,
    schema_mapping,
    value_key,
)
from features.schema import TASKS, TEXT_COLUMNS, TicketColumn, allowed_labels

logger = logging.getLogger(__name__)

_ID = TicketColumn.ID.value
_CREATED_AT = TicketColumn.CREATED_AT.value
_TIMEZONE = TicketColumn.CUSTOMER_TIMEZONE.value

#: ``frame.attrs`` key for problems met while reading (e.g. an encoding fallback).
LOAD_WARNINGS_ATTR = "load_warnings"

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".zip", ".zst"})
_FILE_ONLY_OPTIONS = ("format", "sep", "delimiter", "encoding")
_FALLBACK_ENCODING = "latin-1"  # decodes any byte sequence, so reading never fails on encoding

#: Classes with fewer examples than this are flagged: too few to learn or to evaluate.
RARE_CLASS_MIN = 5
_MAX_EXAMPLES = 5


class DataLoadError(ValueError):
    """A data source cannot be read; the message names the source."""


# --- loading -------------------------------------------------------------------------


def load_frame(
    source: str | Path, *, query: str | None = None, read_options: dict | None = None
) -> pd.DataFrame:
    """Read a file (by suffix) or a database URL plus ``query`` into a DataFrame.

    ``read_options``: ``format`` overrides the suffix, ``sep``/``delimiter`` and
    ``encoding`` (the fallback when the file is not UTF-8) apply to text files;
    anything else goes to the pandas reader.
    """
    options = dict(read_options or {})
    if _is_database_url(source):
        return _load_sql(str(source), query, options)
    if query is not None:
        raise DataLoadError(f"{source}: a query applies only to database URLs such as sqlite:///tickets.db")
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataLoadError(f"data file not found: {path}")
    file_format = options.pop("format", None) or _format_of(path)
    return _READERS[file_format](path, options)


def load_tickets(
    source: str | Path, mapping: ColumnMapping | None = None, *, query: str | None = None
) -> pd.DataFrame:
    """Load ``source`` and map it into the ticket schema.

    Without a mapping the source must already use schema column names.
    """
    read_options = mapping.source.read_options() if mapping else None
    query = query or (mapping.source.query if mapping else None)
    frame = load_frame(source, query=query, read_options=read_options)
    return apply_mapping(frame, mapping or schema_mapping(frame.columns))


def _is_database_url(source: str | Path) -> bool:
    return isinstance(source, str) and "://" in source


def _format_of(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()  # pandas decompresses data.csv.gz by itself
    file_format = _SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if file_format is None:
        supported = ", ".join(sorted(_SUFFIX_FORMATS))
        raise DataLoadError(
            f"{path}: unknown data format; supported: {supported}, or a database URL with a query"
        )
    return file_format


def _read_csv(path: Path, options: dict) -> pd.DataFrame:
    return _read_delimited(path, options, default_sep=",")


def _read_tsv(path: Path, options: dict) -> pd.DataFrame:
    return _read_delimited(path, options, default_sep="\t")


def _read_delimited(path: Path, options: dict, *, default_sep: str) -> pd.DataFrame:
    sep = options.pop("sep", None) or options.pop("delimiter", None) or default_sep
    options.pop("delimiter", None)
    declared = options.pop("encoding", None)
    return _read_text_file(
        path, declared, lambda encoding: pd.read_csv(path, sep=sep, encoding=encoding, **options)
    )


def _read_json_records(path: Path, options: dict, *, lines: bool) -> pd.DataFrame:
    declared = options.pop("encoding", None)
    # dtype=False keeps values as written: no guessing dates from column names.
    options.setdefault("dtype", False)
    return _read_text_file(
        path,
        declared,
        lambda encoding: pd.read_json(path, orient="records", lines=lines, encoding=encoding, **options),
    )


def _read_parquet(path: Path, options: dict) -> pd.DataFrame:
    for option in _FILE_ONLY_OPTIONS:
        options.pop(option, None)
    try:
        return pd.read_parquet(path, **options)
    except (OSError, ValueError) as error:
        raise DataLoadError(f"cannot read {path} as Parquet: {error}") from error


def _read_text_file(path: Path, declared: str | None, read: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """Read with UTF-8 first, then the declared encoding, then latin-1 (which never fails)."""
    encodings = list(dict.fromkeys(["utf-8", declared or _FALLBACK_ENCODING, _FALLBACK_ENCODING]))
    for encoding in encodings:
        try:
            frame = read(encoding)
        except UnicodeDecodeError:
            continue
        except (ValueError, OSError) as error:  # pandas' parser errors are ValueErrors
            raise DataLoadError(f"cannot read {path}: {error}") from error
        if encoding != "utf-8":
            message = f"{path} is not valid UTF-8; read it as {encoding}: check accented characters"
            logger.warning(message)
            frame.attrs[LOAD_WARNINGS_ATTR] = [message]
        return frame
    raise DataLoadError(f"cannot decode {path} with {', '.join(encodings)}")  # unreachable with latin-1


_READERS: dict[str, Callable[[Path, dict], pd.DataFrame]] = {
    "csv": _read_csv,
    "tsv": _read_tsv,
    "parquet": _read_parquet,
    "jsonl": lambda path, options: _read_json_records(path, options, lines=True),
    "json": lambda path, options: _read_json_records(path, options, lines=False),
}


def _load_sql(url: str, query: str | None, options: dict) -> pd.DataFrame:
    # Imported here so file-only users never pay for SQLAlchemy's import.
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    shown = _redacted(url)
    if not query:
        raise DataLoadError(f"{shown}: a database source needs a query, e.g. SELECT * FROM tickets")
    for option in _FILE_ONLY_OPTIONS:
        options.pop(option, None)
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError) as error:
        missing_driver = isinstance(error, ImportError)
        hint = " (install its driver, e.g. pip install 'nightdesk[postgres]')" if missing_driver else ""
        raise DataLoadError(f"cannot open database {shown}: {error}{hint}") from error
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(text(query), connection, **options)
    except (SQLAlchemyError, pd.errors.DatabaseError) as error:
        raise DataLoadError(f"query failed on {shown}: {_root_cause(error)}") from error
    finally:
        engine.dispose()


def _root_cause(error: BaseException) -> str:
    """The driver's own message, without the wrappers pandas and SQLAlchemy add."""
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL still must not leak a password
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


# --- built-in mappings ---------------------------------------------------------------------

_MAPPING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def builtin_mapping_names() -> tuple[str, ...]:
    """Names of the mappings shipped in ``training/defaults/mappings``."""
    folder = _builtin_mappings_folder()
    names = (item.name.removesuffix(".yaml") for item in folder.iterdir() if item.name.endswith(".yaml"))
    return tuple(sorted(names))


def builtin_mapping(name: str) -> Path:
    """The packaged YAML of a built-in mapping such as ``"banking77"``."""
    stem = name.removesuffix(".yaml")
    resource = _builtin_mappings_folder() / f"{stem}.yaml"
    if not _MAPPING_NAME.match(stem) or not resource.is_file():
        available = ", ".join(builtin_mapping_names())
        raise MappingError(f"no built-in mapping named {name!r}; available: {available}")
    return Path(str(resource))


def load_named_mapping(name_or_path: str | Path) -> ColumnMapping:
    """A mapping from a YAML path or a built-in name (what the CLI accepts)."""
    candidate = Path(name_or_path)
    looks_like_path = candidate.suffix in (".yaml", ".yml") or len(candidate.parts) > 1
    if isinstance(name_or_path, Path) or looks_like_path or candidate.is_file():
        return load_mapping(candidate)
    return load_mapping(builtin_mapping(str(name_or_path)))


def _builtin_mappings_folder() -> Any:
    return resources.files("training").joinpath("defaults", "mappings")


# --- validation --------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationReport:
    """What ``validate_tickets`` found; ``errors`` block training, ``warnings`` do not."""

    rows: int
    usable_rows: int  # rows with some subject or body text
    columns: tuple[str, ...]
    tasks: tuple[str, ...]
    category_labels: tuple[str, ...] | None
    missing_columns: tuple[str, ...]
    missing_source_columns: dict[str, str]
    empty_text: int
    duplicate_ids: int
    duplicate_texts: int
    unparsable_created_at: int
    unparsable_created_at_examples: tuple[str, ...]
    naive_timestamps: int
    invalid_timezones: int
    invalid_timezone_examples: tuple[str, ...]
    missing_labels: dict[str, int]
    unknown_labels: dict[str, dict[str, int]]
    label_distribution: dict[str, dict[str, int]]
    trainable_rows: dict[str, int]  # per task: text plus a known label
    load_warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def rare_classes(self, task: str) -> dict[str, int]:
        """Known labels of ``task`` with fewer than ``RARE_CLASS_MIN`` examples."""
        unknown = self.unknown_labels.get(task, {})
        counts = self.label_distribution.get(task, {})
        return {label: n for label, n in counts.items() if n < RARE_CLASS_MIN and label not in unknown}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["ok"] = self.ok
        data["rare_classes"] = {task: self.rare_classes(task) for task in self.tasks}
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    def to_text(self) -> str:
        """A human report: counts with percentages, label distributions, then findings."""
        return _render_report(self)


def validate_tickets(
    frame: pd.DataFrame,
    *,
    tasks: Sequence[str] | None = None,
    category_labels: tuple[str, ...] | None = None,
) -> ValidationReport:
    """Check a ticket frame (the output of ``apply_mapping``) without changing it.

    ``tasks`` defaults to the tasks whose label columns are present; a requested
    task without its label column is an error.
    """
    checked_tasks = _tasks_to_check(frame, tasks)
    has_text = _has_text(frame)
    unparsable, unparsable_examples, naive = _timestamp_counts(frame)
    invalid_zones, zone_examples = _timezone_counts(frame)
    label_stats = {
        task: _label_stats(frame[task], has_text, allowed_labels(task, category_labels))
        for task in checked_tasks
        if task in frame.columns
    }
    report = ValidationReport(
        rows=len(frame),
        usable_rows=int(has_text.sum()),
        columns=tuple(str(column) for column in frame.columns),
        tasks=checked_tasks,
        category_labels=category_labels,
        missing_columns=_missing_columns(frame, checked_tasks),
        missing_source_columns=dict(frame.attrs.get(MISSING_SOURCE_COLUMNS_ATTR, {})),
        empty_text=int((~has_text).sum()),
        duplicate_ids=_duplicate_ids(frame),
        duplicate_texts=_duplicate_texts(frame, has_text),
        unparsable_created_at=unparsable,
        unparsable_created_at_examples=unparsable_examples,
        naive_timestamps=naive,
        invalid_timezones=invalid_zones,
        invalid_timezone_examples=zone_examples,
        missing_labels={task: stats.missing for task, stats in label_stats.items()},
        unknown_labels={task: stats.unknown for task, stats in label_stats.items()},
        label_distribution={task: stats.distribution for task, stats in label_stats.items()},
        trainable_rows={task: stats.trainable for task, stats in label_stats.items()},
        load_warnings=tuple(frame.attrs.get(LOAD_WARNINGS_ATTR, ())),
    )
    errors, warnings = _findings(report)
    return replace(report, errors=errors, warnings=warnings)


def _tasks_to_check(frame: pd.DataFrame, tasks: Sequence[str] | None) -> tuple[str, ...]:
    if tasks is None:
        return tuple(task for task in TASKS if task in frame.columns)
    if isinstance(tasks, str):
        tasks = (tasks,)  # a lone task name, not a sequence of letters
    for task in tasks:
        allowed_labels(task)  # raises ValueError naming an unknown task
    return tuple(dict.fromkeys(tasks))


def _missing_columns(frame: pd.DataFrame, tasks: tuple[str, ...]) -> tuple[str, ...]:
    required = (*TEXT_COLUMNS, *tasks)
    return tuple(column for column in required if column not in frame.columns)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype="str")
    return frame[column].fillna("").astype("str")


def _has_text(frame: pd.DataFrame) -> pd.Series:
    """Rows whose subject or body has non-blank text."""
    has_text = pd.Series(False, index=frame.index)
    for column in TEXT_COLUMNS:
        has_text |= _text(frame, column).str.strip() != ""
    return has_text


def _duplicate_ids(frame: pd.DataFrame) -> int:
    if _ID not in frame.columns:
        return 0
    ids = frame[_ID].map(value_key).dropna()
    return int(ids.duplicated().sum())


def _duplicate_texts(frame: pd.DataFrame, has_text: pd.Series) -> int:
    texts = pd.DataFrame({column: _text(frame, column) for column in TEXT_COLUMNS})[has_text]
    return int(texts.duplicated().sum())


# Timestamps -------------------------------------------------------------------------------

_MISSING, _UNPARSABLE, _NAIVE, _AWARE = "missing", "unparsable", "naive", "aware"
# pandas reads these words as the current date: never what an export meant.
_RELATIVE_WORDS = frozenset({"now", "today", "tomorrow", "yesterday"})


def _parse_timestamp(value: Any) -> tuple[pd.Timestamp, str]:
    """One created_at value in UTC, and whether it was missing, unparsable, naive or aware."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return pd.NaT, _MISSING
        if text.lower() in _RELATIVE_WORDS:
            return pd.NaT, _UNPARSABLE
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, OverflowError, TypeError):
            return pd.NaT, _UNPARSABLE
    elif isinstance(value, (date, np.datetime64)):
        stamp = pd.Timestamp(value)
    else:
        return pd.NaT, _UNPARSABLE  # e.g. epoch numbers: the unit (s, ms) is a guess
    if stamp is pd.NaT:
        return pd.NaT, _MISSING
    if stamp.tzinfo is None:
        return stamp.tz_localize("UTC"), _NAIVE
    return stamp.tz_convert("UTC"), _AWARE


def _parse_timestamps(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parsed UTC timestamps and a status per row (each distinct value parsed once)."""
    codes, uniques = pd.factorize(values)
    parsed = [_parse_timestamp(value) for value in uniques]
    # factorize marks missing values with code -1, which take() reads as the
    # last element: append the "missing" result there.
    stamps = pd.to_datetime([stamp for stamp, _ in parsed] + [pd.NaT], utc=True)
    statuses = np.array([status for _, status in parsed] + [_MISSING], dtype=object)
    return (
        pd.Series(stamps.take(codes), index=values.index),
        pd.Series(statuses.take(codes), index=values.index),
    )


def _timestamp_counts(frame: pd.DataFrame) -> tuple[int, tuple[str, ...], int]:
    if _CREATED_AT not in frame.columns:
        return 0, (), 0
    values = frame[_CREATED_AT]
    _, statuses = _parse_timestamps(values)
    unparsable = statuses == _UNPARSABLE
    return int(unparsable.sum()), _examples(values[unparsable]), int((statuses == _NAIVE).sum())


# Time zones -------------------------------------------------------------------------------


def _invalid_timezone_mask(values: pd.Series) -> pd.Series:
    """True where a non-blank value is not an IANA zone name."""
    codes, uniques = pd.factorize(values)
    zones = available_timezones()
    invalid = [value_key(value) is not None and value not in zones for value in uniques] + [False]
    return pd.Series(np.array(invalid, dtype=bool).take(codes), index=values.index)


def _timezone_counts(frame: pd.DataFrame) -> tuple[int, tuple[str, ...]]:
    if _TIMEZONE not in frame.columns:
        return 0, ()
    values = frame[_TIMEZONE]
    invalid = _invalid_timezone_mask(values)
    return int(invalid.sum()), _examples(values[invalid])


def _examples(values: pd.Series) -> tuple[str, ...]:
    """The most frequent distinct values, as strings, for messages."""
    return tuple(str(value) for value in values.value_counts().index[:_MAX_EXAMPLES])


# Labels ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LabelStats:
    missing: int
    unknown: dict[str, int]
    distribution: dict[str, int]
    trainable: int


def _label_keys(values: pd.Series) -> pd.Series:
    return values.map(value_key)


def _label_stats(values: pd.Series, has_text: pd.Series, allowed: tuple[str, ...] | None) -> _LabelStats:
    labels = _label_keys(values)
    present = labels.notna()
    known = present & (labels.isin(allowed) if allowed is not None else True)
    distribution = _counts(labels[present])
    unknown = {} if allowed is None else {label: n for label, n in distribution.items() if label not in allowed}
    return _LabelStats(
        missing=int((~present).sum()),
        unknown=unknown,
        distribution=distribution,
        trainable=int((known & has_text).sum()),
    )


def _counts(values: pd.Series) -> dict[str, int]:
    counts = values.value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return {str(label): int(n) for label, n in ordered}


# Findings -----------------------------------------------------------------------------------


def _share(count: int, total: int) -> str:
    return f"{count / total:.1%}" if total else "-"


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def _listing(counts: dict[str, int], limit: int = 10) -> str:
    shown = ", ".join(f"{label!r} ({n:,})" for label, n in list(counts.items())[:limit])
    return shown + (f", ... {len(counts) - limit} more" if len(counts) > limit else "")


def _findings(report: ValidationReport) -> tuple[tuple[str, ...], tuple[str, ...]]:
    errors = [*_column_errors(report), *_row_errors(report), *_label_errors(report)]
    warnings = [
        *report.load_warnings,
        *_optional_column_warnings(report),
        *_row_warnings(report),
        *_time_warnings(report),
        *_label_warnings(report),
    ]
    return tuple(errors), tuple(warnings)


def _column_errors(report: ValidationReport) -> list[str]:
    errors = []
    for column in report.missing_columns:
        kind = "label column" if column in TASKS else "required column"
        source = report.missing_source_columns.get(column)
        where = f": the mapping reads it from {source!r}, which the source does not have" if source else ""
        errors.append(f"{kind} {column!r} is missing{where}")
    return errors


def _row_errors(report: ValidationReport) -> list[str]:
    if report.rows == 0:
        return ["the source has no rows"]
    if report.usable_rows == 0 and any(column in report.columns for column in TEXT_COLUMNS):
        return [f"no usable rows: subject and body are empty in all {_rows(report.rows)}"]
    return [
        f"no rows usable for training {task}: none has both text and a known {task} label"
        for task, trainable in report.trainable_rows.items()
        if trainable == 0
    ]


def _label_errors(report: ValidationReport) -> list[str]:
    errors = []
    for task, unknown in report.unknown_labels.items():
        if unknown and task != "category":  # fixed label sets: the mapping must recode them
            allowed = ", ".join(allowed_labels(task) or ())
            errors.append(
                f"{task} labels outside {allowed} in {_rows(sum(unknown.values()))}: {_listing(unknown)}; "
                f"map them under labels.{task}.values in the column mapping"
            )
    return errors


def _optional_column_warnings(report: ValidationReport) -> list[str]:
    return [
        f"the mapping reads {column} from {source!r}, which the source does not have; {column} is left out"
        for column, source in report.missing_source_columns.items()
        if column not in report.missing_columns
    ]


def _row_warnings(report: ValidationReport) -> list[str]:
    rows, warnings = report.rows, []
    if report.empty_text and report.usable_rows:
        warnings.append(
            f"empty subject and body in {_rows(report.empty_text)} ({_share(report.empty_text, rows)}); "
            "not used for training"
        )
    if report.duplicate_ids:
        warnings.append(f"duplicate ids in {_rows(report.duplicate_ids)}: same id as an earlier row")
    if report.duplicate_texts:
        warnings.append(
            f"duplicate texts in {_rows(report.duplicate_texts)} ({_share(report.duplicate_texts, rows)}): "
            "same subject and body as an earlier row"
        )
    return warnings


def _time_warnings(report: ValidationReport) -> list[str]:
    warnings = []
    if report.unparsable_created_at:
        examples = ", ".join(repr(value) for value in report.unparsable_created_at_examples)
        warnings.append(
            f"unparsable created_at in {_rows(report.unparsable_created_at)} (e.g. {examples}); read as missing"
        )
    if report.naive_timestamps:
        warnings.append(f"created_at without UTC offset in {_rows(report.naive_timestamps)}; read as UTC")
    if report.invalid_timezones:
        examples = ", ".join(repr(value) for value in report.invalid_timezone_examples)
        warnings.append(
            f"customer_timezone that is not an IANA time zone name in {_rows(report.invalid_timezones)} "
            f"(e.g. {examples}); add timezone_aliases to the mapping, or these are read as missing"
        )
    return warnings


def _label_warnings(report: ValidationReport) -> list[str]:
    warnings = []
    for task in report.label_distribution:
        missing = report.missing_labels[task]
        if missing:
            warnings.append(
                f"no {task} label in {_rows(missing)} ({_share(missing, report.rows)}); "
                f"not used for training {task}"
            )
        unknown = report.unknown_labels[task]
        if unknown and task == "category":
            warnings.append(
                f"category labels outside the configured set in {_rows(sum(unknown.values()))}: "
                f"{_listing(unknown)}; not used for training"
            )
        rare = report.rare_classes(task)
        if rare:
            warnings.append(f"rare {task} classes (fewer than {RARE_CLASS_MIN} examples): {_listing(rare)}")
    return warnings


# Text rendering -------------------------------------------------------------------------------

_LABEL_LINES = 20
_NAME_WIDTH = 36


def _render_report(report: ValidationReport) -> str:
    status = "OK" if report.ok else "FAILED"
    lines = [
        f"Ticket data validation: {status} ({len(report.errors)} errors, {len(report.warnings)} warnings)",
        "",
        _row("rows", report.rows, None),
        _row("rows with text", report.usable_rows, report.rows),
        "",
        f"{'checks':<{_NAME_WIDTH}} {'count':>8}  share",
        *(_row(f"  {name}", count, report.rows) for name, count in _check_counts(report)),
    ]
    for task, distribution in report.label_distribution.items():
        lines += ["", f"{task} labels ({len(distribution)} classes)", *_distribution_lines(distribution)]
    for title, messages in (("Errors", report.errors), ("Warnings", report.warnings)):
        if messages:
            lines += ["", f"{title} ({len(messages)})", *(f"  - {message}" for message in messages)]
    return "\n".join(lines)


def _check_counts(report: ValidationReport) -> list[tuple[str, int]]:
    checks = [
        ("empty text (subject and body)", report.empty_text),
        ("duplicate ids", report.duplicate_ids),
        ("duplicate texts (subject + body)", report.duplicate_texts),
    ]
    if _CREATED_AT in report.columns:
        checks += [
            ("unparsable created_at", report.unparsable_created_at),
            ("created_at without offset (as UTC)", report.naive_timestamps),
        ]
    if _TIMEZONE in report.columns:
        checks.append(("invalid customer_timezone", report.invalid_timezones))
    for task in report.label_distribution:
        checks += [
            (f"{task}: missing labels", report.missing_labels[task]),
            (f"{task}: unknown labels", sum(report.unknown_labels[task].values())),
            (f"{task}: usable for training", report.trainable_rows[task]),
        ]
    return checks


def _row(name: str, count: int, total: int | None) -> str:
    share = f"  {_share(count, total):>6}" if total is not None else ""
    return f"{name:<{_NAME_WIDTH}} {count:>8,}{share}"


def _distribution_lines(distribution: dict[str, int]) -> list[str]:
    total = sum(distribution.values())
    shown = list(distribution.items())[:_LABEL_LINES]
    lines = [_row(f"  {_shorten(label, _NAME_WIDTH - 2)}", n, total) for label, n in shown]
    hidden = list(distribution.values())[_LABEL_LINES:]
    if hidden:
        lines.append(_row(f"  ... {len(hidden)} more classes", sum(hidden), total))
    return lines


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- preparing a training frame ---------------------------------------------------------------


def prepare_training_frame(frame: pd.DataFrame, task: str, report: ValidationReport) -> pd.DataFrame:
    """The rows of ``frame`` usable for training ``task``, with clean time columns.

    Pure. Drops rows with no text, no label or a label outside the allowed set
    (``report.category_labels`` for category), then exact (subject, body, label)
    duplicates. created_at becomes tz-aware UTC (naive read as UTC, unparsable
    missing); invalid time zones become missing. Counts go to
    ``result.attrs["dropped"]`` (per reason) and ``result.attrs["cleared"]``
    (per column) for the caller to log. The original index is kept.
    """
    allowed = allowed_labels(task, report.category_labels)
    if task not in frame.columns:
        raise ValueError(f"the frame has no {task!r} label column")
    if report.rows != len(frame):
        raise ValueError(f"the report describes {report.rows:,} rows but the frame has {len(frame):,}")
    labels = _label_keys(frame[task])
    kept, dropped = _drop_unusable(frame, labels, allowed)
    prepared = frame.loc[kept].copy()
    prepared[task] = labels[kept].astype("str")
    for column in TEXT_COLUMNS:
        prepared[column] = _text(prepared, column)
    duplicates = prepared.duplicated(subset=[*TEXT_COLUMNS, task])
    dropped["duplicate"] = int(duplicates.sum())
    prepared = prepared.loc[~duplicates]
    cleared = _clean_time_columns(prepared)
    prepared.attrs = {**frame.attrs, "task": task, "dropped": dropped, "cleared": cleared}
    return prepared


def _drop_unusable(
    frame: pd.DataFrame, labels: pd.Series, allowed: tuple[str, ...] | None
) -> tuple[pd.Series, dict[str, int]]:
    """Rows to keep, and how many each reason removed (a row counts for its first reason)."""
    missing_label = labels.isna()
    reasons = {
        "empty_text": ~_has_text(frame),
        "missing_label": missing_label,
        "unknown_label": (
            ~missing_label & ~labels.isin(allowed) if allowed is not None else pd.Series(False, index=frame.index)
        ),
    }
    kept = pd.Series(True, index=frame.index)
    dropped = {}
    for reason, mask in reasons.items():
        dropped[reason] = int((kept & mask).sum())
        kept &= ~mask
    return kept, dropped


def _clean_time_columns(prepared: pd.DataFrame) -> dict[str, int]:
    """Parse created_at to UTC and blank invalid time zones in place; counts of values cleared."""
    cleared = {}
    if _CREATED_AT in prepared.columns:
        stamps, statuses = _parse_timestamps(prepared[_CREATED_AT])
        prepared[_CREATED_AT] = stamps
        cleared[_CREATED_AT] = int((statuses == _UNPARSABLE).sum())
    if _TIMEZONE in prepared.columns:
        zones = prepared[_TIMEZONE]
        invalid = _invalid_timezone_mask(zones)
        usable = ~invalid & zones.map(value_key).notna()
        prepared[_TIMEZONE] = zones.where(usable, None)
        cleared[_TIMEZONE] = int(invalid.sum())
    return cleared
