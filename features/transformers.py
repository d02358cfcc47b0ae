"""scikit-learn transformers that turn ticket columns into model features.

They honour the estimator contract (parameters stored untouched in ``__init__``,
learned state in trailing-underscore attributes, ``n_features_in_``,
``get_feature_names_out``), so they can be cloned, grid-searched, pickled into
the saved model and checked with ``parametrize_with_checks``.
"""

from __future__ import annotations

import itertools
import functools
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils._sparse import _align_api_if_sparse
from sklearn.utils.validation import check_is_fitted, validate_data

from features.masking import mask_pii
from features.schema import MISSING_CATEGORY
from features.text import clean_text


def _as_2d_object_array(X) -> np.ndarray:
    """Any 2-D table (DataFrame, array, list of rows) as an object array, one column per field."""
    if sp.issparse(X):
        raise TypeError("Sparse input is not supported: pass a table of ticket fields (DataFrame or 2-D array).")
    values = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)
    if values.ndim != 2:
        raise ValueError(
            f"Expected a 2-D table of ticket fields, got an array of shape {values.shape}. "
            "Reshape your data: one row per ticket, one column per field."
        )
    return values


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT or value is pd.NA


_LONG_NUMBER = re.compile(r"\d{4,}")


def join_ticket_text(row: Sequence, *, mask: bool = True) -> str:
    """One model text from a row of text fields (usually subject and body).

    Masking runs before cleaning so that placeholders such as ``<EMAIL>`` replace
    personal data before any n-gram can see it. Runs of four or more digits
    (order, invoice and ticket numbers) become ``<NUM>``: which order a customer
    writes about must not change how the ticket is triaged.
    """
    parts = []
    for value in row:
        if _is_missing(value):
            continue
        text = str(value)
        text = _LONG_NUMBER.sub("<NUM>", clean_text(mask_pii(text) if mask else text))
        if text:
            parts.append(text)
    return ". ".join(parts)


class WordCachedTfidfVectorizer(TfidfVectorizer):
    """``TfidfVectorizer`` with the same output, counting n-grams per distinct token.

    scikit-learn builds every character n-gram of every word of every document in
    Python; ticket text repeats the same few thousand words, so here the n-grams
    of each distinct word are built once and documents are combined from word
    counts with a sparse product. Word n-grams are numbered with array
    operations instead of per-position dictionary look-ups.
    Configurations without a fast path (custom analyzers, stop words, ...) use
    scikit-learn's own counting.
    """

    def _count_vocab(self, raw_documents, fixed_vocab):
        documents = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        if not self._has_fast_path(documents):
            return super()._count_vocab(documents, fixed_vocab)
        vocabulary = self.vocabulary_ if fixed_vocab else {}
        tokens, doc_of_token = self._tokens(documents)
        X = self._char_wb_counts(tokens, doc_of_token, len(documents), vocabulary, fixed_vocab)
        if not fixed_vocab and not vocabulary:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        X = sp.csr_array(X, dtype=self.dtype)
        X.sort_indices()
        return vocabulary, _align_api_if_sparse(X)

    def _has_fast_path(self, documents) -> bool:
        plain = (
            self.input == "content" and self.preprocessor is None and self.tokenizer is None
            and self.stop_words is None and not callable(self.analyzer)
        )
        return plain and self.analyzer == "char_wb" and all(isinstance(d, str) for d in documents)

    def _tokens(self, documents):
        preprocess = self.build_preprocessor()
        per_document = [preprocess(doc).split() for doc in documents]
        lengths = np.fromiter(map(len, per_document), dtype=np.int64, count=len(per_document))
        flat = np.fromiter(itertools.chain.from_iterable(per_document), dtype=object, count=int(lengths.sum()))
        return flat, np.repeat(np.arange(len(documents)), lengths)

    def _char_wb_counts(self, tokens, doc_of_token, n_docs, vocabulary, fixed_vocab):
        codes, words = pd.factorize(tokens)
        word_counts = sp.csr_matrix(
            (np.ones(len(codes), dtype=np.int32), (doc_of_token, codes)), shape=(n_docs, len(words))
        )
        word_ngrams = self._ngram_matrix([self._char_wb_ngrams(w) for w in words], vocabulary, fixed_vocab)
        return word_counts @ word_ngrams

    def _ngram_matrix(self, ngram_lists, vocabulary, fixed_vocab):
        """Rows: one per list; columns: vocabulary ids; values: counts."""
        if fixed_vocab:
            ids = [[vocabulary[g] for g in grams if g in vocabulary] for grams in ngram_lists]
        else:
            ids = [[vocabulary.setdefault(g, len(vocabulary)) for g in grams] for grams in ngram_lists]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        columns = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(ids)), lengths)
        return sp.csr_matrix(
            (np.ones(len(columns), dtype=np.int32), (rows, columns)), shape=(len(ids), len(vocabulary))
        )


class TicketTextFeatures(TransformerMixin, BaseEstimator):
    """Text columns -> cleaned, PII-masked text -> word and character TF-IDF n-grams.

    Every input column is treated as a text field (missing values as empty) and the
    fields are joined, so the same transformer serves subject+body tickets and
    single-text sources. Character n-grams (within word boundaries) keep typos,
    inflections and mixed languages close to their correct forms.
    """

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] = (2, 5),
        min_df: int = 1,
        max_word_features: int | None = 200_000,
        max_char_features: int | None = 300_000,
        sublinear_tf: bool = True,
        mask_pii: bool = True,
    ):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_word_features = max_word_features
        self.max_char_features = max_char_features
        self.sublinear_tf = sublinear_tf
        self.mask_pii = mask_pii

    def _texts(self, X) -> list[str]:
        return [join_ticket_text(row, mask=self.mask_pii) for row in _as_2d_object_array(X)]

    def _vectorizers(self) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        common = dict(lowercase=True, sublinear_tf=self.sublinear_tf, dtype=np.float32, min_df=self.min_df)
        word = TfidfVectorizer(
            analyzer="word",
            ngram_range=tuple(self.word_ngram_range),
            max_features=self.max_word_features,
            # Keep placeholders such as <EMAIL> (lower-cased by then) and short tokens like "2fa" as words.
            token_pattern=r"(?u)<[a-z]+>|\b\w+\b",
            **common,
        )
        char = WordCachedTfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(self.char_ngram_range), max_features=self.max_char_features, **common
        )
        return word, char

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        self._record_input(X)
        texts = self._texts(X)
        word, char = self._vectorizers()
        # A corpus of empty texts has no vocabulary; fit on a placeholder so the
        # transformer still works (and outputs all-zero rows) instead of failing.
        fit_texts = texts if any(t.strip() for t in texts) else ["<EMPTY>"]
        word_matrix = word.fit_transform(fit_texts)
        char_matrix = char.fit_transform(fit_texts)
        self.word_vectorizer_, self.char_vectorizer_ = word, char
        if fit_texts is not texts:
            return self._transform_texts(texts)
        return sp.hstack([word_matrix, char_matrix], format="csr")

    def transform(self, X):
        check_is_fitted(self, "word_vectorizer_")
        self._check_width(X)
        return self._transform_texts(self._texts(X))

    def _transform_texts(self, texts: list[str]):
        return sp.hstack(
            [self.word_vectorizer_.transform(texts), self.char_vectorizer_.transform(texts)], format="csr"
        )

    def _record_input(self, X) -> None:
        values = _as_2d_object_array(X)
        self.n_features_in_ = values.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        if values.shape[0] < 1:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
        if values.shape[1] < 1:
            raise ValueError(f"Found array with 0 feature(s) (shape={values.shape}) while a minimum of 1 is required.")

    def _check_width(self, X) -> None:
        width = _as_2d_object_array(X).shape[1]
        if width != self.n_features_in_:
            raise ValueError(
                f"X has {width} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input."
            )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "word_vectorizer_")
        words = [f"word:{t}" for t in self.word_vectorizer_.get_feature_names_out()]
        chars = [f"char:{t}" for t in self.char_vectorizer_.get_feature_names_out()]
        return np.asarray(words + chars, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        # Missing text is an empty field, not an error.
        tags.input_tags.allow_nan = True
        return tags


class LocalTimeFeatures(TransformerMixin, BaseEstimator):
    """Creation time -> features of the customer's local time.

    Input columns: the first is the creation timestamp (ISO 8601 text, datetime or
    epoch), the optional second the customer's IANA time zone (UTC when missing or
    invalid). Output: local hour as a point on a circle (so 23:00 is near 00:00),
    after-hours and weekend flags, and whether a timestamp was known at all.
    """

    def __init__(self, business_start_hour: int = 8, business_end_hour: int = 18):
        self.business_start_hour = business_start_hour
        self.business_end_hour = business_end_hour

    def fit(self, X, y=None):
        values = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        if values.shape[1] > 2:
            raise ValueError(f"Expected 1 or 2 columns (timestamp[, time zone]), got {values.shape[1]}.")
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        values = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=False)
        zones = values[:, 1] if values.shape[1] > 1 else np.full(len(values), None)
        hours, weekdays, known = local_clock(values[:, 0], zones)
        angle = 2 * np.pi * hours / 24
        weekend = known & (weekdays >= 5)
        after_hours = known & (weekend | (hours < self.business_start_hour) | (hours >= self.business_end_hour))
        columns = [np.where(known, np.sin(angle), 0.0), np.where(known, np.cos(angle), 0.0), after_hours, weekend, known]
        return np.column_stack(columns).astype(np.float64)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(["hour_sin", "hour_cos", "after_hours", "weekend", "has_timestamp"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags


def parse_timestamp(value) -> datetime | None:
    """An aware UTC datetime, or None when missing or unparsable.

    Naive times are taken as UTC; numbers are Unix epoch seconds. ISO 8601 text
    (the common case) is parsed by the standard library, which is several times
    faster per value than pandas: this runs once per ticket on every prediction.
    """
    if _is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    stamp = _parse_iso(value) if isinstance(value, str) else None
    if stamp is None:
        stamp = _parse_other(value)
    if stamp is None:
        return None
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def _parse_other(value) -> datetime | None:
    try:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            stamp = pd.Timestamp(float(value), unit="s")
        else:
            stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if stamp is pd.NaT else stamp.to_pydatetime()


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return None


def local_clock(timestamps, zones) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local hour (fractional), weekday and a known-flag for each timestamp in its zone (UTC when unknown)."""
    hours = np.zeros(len(timestamps))
    weekdays = np.zeros(len(timestamps), dtype=int)
    known = np.zeros(len(timestamps), dtype=bool)
    for row, (value, zone_name) in enumerate(zip(timestamps, zones)):
        stamp = parse_timestamp(value)
        if stamp is None:
            continue
        zone = _zone(zone_name.strip()) if isinstance(zone_name, str) and zone_name.strip() else None
        local = stamp.astimezone(zone) if zone is not None else stamp
        hours[row] = local.hour + local.minute / 60
        weekdays[row] = local.weekday()
        known[row] = True
    return hours, weekdays, known


def fill_missing_category(X):
    """Missing or blank categorical values become ``unknown`` so one-hot encoding sees a real value."""
    values = _as_2d_object_array(X).copy()
    for index, value in np.ndenumerate(values):
        if _is_missing(value) or (isinstance(value, str) and not value.strip()):
            values[index] = MISSING_CATEGORY
        else:
            values[index] = str(value).strip().lower()
    return values
