"""features.transformers: the scikit-learn estimator contract and behaviour on ticket-like input."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import validate_data

from features.transformers import LocalTimeFeatures, TicketTextFeatures

# --------------------------------------------------------------------- sklearn's own checks

# Checks that cannot apply, with the reason. Anything not listed here must pass, and
# xfail_strict makes a listed check that starts passing fail too (update this list then).
TEXT_CANNOT_APPLY = {
    "check_complex_data": "every value is text to this transformer: a complex number is read as the string "
    "'(0.3+0.7j)', not refused",
    "check_transformer_preserve_dtypes": "the output is TF-IDF weights, float32 by design whatever the input; "
    "the check feeds numbers where the transformer expects text",
}
# test_local_time_contract_ignoring_width runs these same checks without the width limit.
_TWO_COLUMNS = "fits on 3-10 columns; LocalTimeFeatures takes exactly (timestamp[, time zone]) by design"
LOCAL_TIME_CANNOT_APPLY = dict.fromkeys(
    [
        "check_fit_score_takes_y",
        "check_dont_overwrite_parameters",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_dtype_object",
        "check_pipeline_consistency",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array",
        "check_transformer_general",
        "check_transformer_preserve_dtypes",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    ],
    _TWO_COLUMNS,
)


def expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, TicketTextFeatures):
        return TEXT_CANNOT_APPLY
    if type(estimator) is LocalTimeFeatures:
        return LOCAL_TIME_CANNOT_APPLY
    return {}


@parametrize_with_checks(
    [TicketTextFeatures(), LocalTimeFeatures()], expected_failed_checks=expected_failed_checks, xfail_strict=True
)
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


class _AnyWidthLocalTime(LocalTimeFeatures):
    """LocalTimeFeatures without its (timestamp[, zone]) width limit, and nothing else changed.

    Lets the checks that ``_TWO_COLUMNS`` excuses run on the real transform code
    (numeric columns are epoch values to it; columns past the second are ignored).
    """

    def fit(self, X, y=None):
        validate_data(self, X, dtype=None, ensure_all_finite=False, reset=True)
        return self


@parametrize_with_checks([_AnyWidthLocalTime()], xfail_strict=True)
def test_local_time_contract_ignoring_width(estimator, check):
    check(estimator)


# --------------------------------------------------------------------- TicketTextFeatures

EMAILS = ("brunhilde.wozniak@quixotic-mail.example", "ZEBEDEE_OKAFOR@corp.example.org")


def ticket_frame(subjects, bodies) -> pd.DataFrame:
    return pd.DataFrame({"subject": subjects, "body": bodies})


@pytest.fixture
def pii_tickets() -> pd.DataFrame:
    return ticket_frame(
        ["Refund for invoice", "Cannot log in", "Question"],
        [
            f"Please write to {EMAILS[0]} about the double charge.",
            f"Reset mail never arrives at {EMAILS[1]}; call me on +49 30 98765432.",
            "Where do I find the export button? I do not receive any email notifications.",
        ],
    )


def test_pii_is_masked_before_ngrams(pii_tickets):
    features = TicketTextFeatures().fit(pii_tickets)
    names = [str(n) for n in features.get_feature_names_out()]
    words = [n for n in names if n.startswith("word:")]

    assert words, "no word features at all"
    for fragment in ("@", "wozniak", "brunhilde", "quixotic", "zebedee", "okafor", "98765432"):
        assert not [n for n in words if fragment in n], f"{fragment!r} leaked into word n-grams"
        assert not [n for n in names if fragment in n], f"{fragment!r} leaked into char n-grams"
    assert "word:refund" in words  # ordinary words are still there


def test_without_masking_the_same_addresses_do_reach_the_ngrams(pii_tickets):
    """The masking test above can fail: with masking off, the address parts are features."""
    words = [str(n) for n in TicketTextFeatures(mask_pii=False).fit(pii_tickets).get_feature_names_out()]
    assert "word:wozniak" in words


def test_pii_placeholders_are_their_own_word_features(pii_tickets):
    words = [str(n) for n in TicketTextFeatures().fit(pii_tickets).get_feature_names_out()]
    placeholder_words = [w for w in words if w.startswith("word:") and "<" in w]
    assert "word:<email>" in placeholder_words or "word:<EMAIL>" in placeholder_words


def test_fit_transform_matches_fit_then_transform(pii_tickets):
    features = TicketTextFeatures()
    once = features.fit_transform(pii_tickets)
    again = features.transform(pii_tickets)

    assert sp.issparse(once) and once.shape == again.shape
    assert once.shape == (3, len(features.get_feature_names_out()))
    np.testing.assert_allclose(once.toarray(), again.toarray(), rtol=1e-6)
    assert features.n_features_in_ == 2
    assert list(features.feature_names_in_) == ["subject", "body"]


def test_empty_corpus_fits_and_outputs_zero_rows():
    empty = ticket_frame(["", None, "   "], [None, "", np.nan])
    features = TicketTextFeatures()

    output = features.fit_transform(empty)

    assert output.shape[0] == 3
    assert output.nnz == 0
    assert features.transform(empty).nnz == 0
    # and it still scores real text afterwards
    assert features.transform(ticket_frame(["Refund"], ["please"])).shape == (1, output.shape[1])


def test_single_text_column_works():
    bodies = pd.DataFrame({"body": ["The app crashes on start", "Refund my order"]})
    output = TicketTextFeatures().fit_transform(bodies)
    assert output.shape[0] == 2 and output.nnz > 0


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (np.empty((0, 2), dtype=object), ValueError, "0 sample"),
        (np.empty((3, 0), dtype=object), ValueError, "0 feature"),  # fixed: used to fit silently
        (np.array(["only", "one", "dimension"], dtype=object), ValueError, "Reshape your data"),
        (sp.csr_matrix(np.eye(3)), TypeError, "Sparse input is not supported"),  # fixed: said "shape ()"
    ],
    ids=["no-rows", "no-columns", "1-d", "sparse"],
)
def test_unusable_input_is_refused_with_a_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        TicketTextFeatures().fit(bad)


def test_transform_checks_the_width(pii_tickets):
    features = TicketTextFeatures().fit(pii_tickets)
    with pytest.raises(ValueError, match="expecting 2 features"):
        features.transform(pii_tickets[["body"]])


def test_clone_and_pickle_keep_parameters_and_output(pii_tickets):
    features = TicketTextFeatures(word_ngram_range=(1, 1), char_ngram_range=(3, 4), min_df=1)
    assert clone(features).get_params() == features.get_params()

    fitted = features.fit(pii_tickets)
    restored = pickle.loads(pickle.dumps(fitted))

    assert (restored.transform(pii_tickets) != fitted.transform(pii_tickets)).nnz == 0
    np.testing.assert_array_equal(restored.get_feature_names_out(), fitted.get_feature_names_out())


# --------------------------------------------------------------------- LocalTimeFeatures

NAMES = ["hour_sin", "hour_cos", "after_hours", "weekend", "has_timestamp"]


def clock(created_at, zones=None, **params) -> pd.DataFrame:
    """LocalTimeFeatures output as a frame, plus the local hour read back from the circle."""
    columns = {"created_at": created_at}
    if zones is not None:
        columns["customer_timezone"] = zones
    frame = pd.DataFrame(columns)
    features = LocalTimeFeatures(**params).fit(frame)
    out = pd.DataFrame(features.transform(frame), columns=features.get_feature_names_out())
    out["hour"] = np.round(np.mod(np.arctan2(out.hour_sin, out.hour_cos) * 24 / (2 * np.pi), 24), 6)
    return out


# (UTC time, zone, local hour, after hours, weekend): each pair straddles a DST change, so
# an implementation with a fixed offset gets one of the pair wrong.
DST_CASES = [
    # Berlin: CET (+1) until Sun 2026-03-29, then CEST (+2); back to CET on Sun 2026-10-25.
    ("2026-03-27T07:30:00Z", "Europe/Berlin", 8.5, False, False),  # Fri 08:30 CET
    ("2026-03-30T06:30:00Z", "Europe/Berlin", 8.5, False, False),  # Mon 08:30 CEST (07:30 with a fixed +1)
    ("2026-03-30T16:30:00Z", "Europe/Berlin", 18.5, True, False),  # Mon 18:30 CEST
    ("2026-10-23T16:30:00Z", "Europe/Berlin", 18.5, True, False),  # Fri 18:30 CEST
    ("2026-10-26T16:30:00Z", "Europe/Berlin", 17.5, False, False),  # Mon 17:30 CET
    ("2026-03-27T23:30:00Z", "Europe/Berlin", 0.5, True, True),  # Friday in UTC, Saturday 00:30 in Berlin
    # New York: EST (-5) until Sun 2026-03-08, then EDT (-4); back to EST on Sun 2026-11-01.
    ("2026-03-06T13:30:00Z", "America/New_York", 8.5, False, False),  # Fri 08:30 EST
    ("2026-03-09T12:30:00Z", "America/New_York", 8.5, False, False),  # Mon 08:30 EDT (07:30 with a fixed -5)
    ("2026-03-09T22:30:00Z", "America/New_York", 18.5, True, False),  # Mon 18:30 EDT
    ("2026-10-30T21:30:00Z", "America/New_York", 17.5, False, False),  # Fri 17:30 EDT
    ("2026-11-02T22:30:00Z", "America/New_York", 17.5, False, False),  # Mon 17:30 EST (18:30 with a fixed -4)
    ("2026-03-07T03:00:00Z", "America/New_York", 22.0, True, False),  # Saturday in UTC, Friday 22:00 in NY
]


def test_local_hour_after_hours_and_weekend_across_dst():
    created, zones, hours, after, weekend = map(list, zip(*DST_CASES))
    out = clock(created, zones)

    assert out.hour.tolist() == hours
    assert out.after_hours.astype(bool).tolist() == after
    assert out.weekend.astype(bool).tolist() == weekend
    assert out.has_timestamp.tolist() == [1.0] * len(DST_CASES)


def test_output_columns_and_circle_encoding():
    out = clock(["2026-01-05T23:00:00Z", "2026-01-05T00:00:00Z", "2026-01-05T06:00:00Z"], ["UTC"] * 3)

    assert list(out.columns[:5]) == NAMES
    np.testing.assert_allclose(out.hour_sin**2 + out.hour_cos**2, 1.0)
    # 23:00 is close to 00:00 on the circle, far from 06:00
    assert np.hypot(out.hour_sin[0] - out.hour_sin[1], out.hour_cos[0] - out.hour_cos[1]) < 0.3
    assert np.hypot(out.hour_sin[2] - out.hour_sin[1], out.hour_cos[2] - out.hour_cos[1]) > 1.0


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "   ", None, "Eastern Time (US & Canada)"])
def test_invalid_or_missing_zone_falls_back_to_utc(zone):
    out = clock(["2026-03-30T06:30:00Z"], [zone])
    assert out.hour.tolist() == [6.5]
    assert out.after_hours.tolist() == [1.0]  # 06:30 UTC is before business hours


def test_one_column_means_utc():
    out = clock(["2026-03-28T10:00:00Z", "2026-03-30T10:00:00+02:00"])
    assert out.hour.tolist() == [10.0, 8.0]
    assert out.weekend.tolist() == [1.0, 0.0]


def test_unknown_times_give_all_zero_features():
    out = clock([None, "not a date", "", np.nan], ["Europe/Berlin"] * 4)
    assert (out[NAMES].to_numpy() == 0).all()


def test_datetime_values_and_naive_times():
    created = [
        pd.Timestamp("2026-03-30T08:30:00", tz="Europe/Berlin"),  # 06:30 UTC
        datetime(2026, 3, 30, 6, 30, tzinfo=timezone.utc),
        "2026-03-30 06:30:00",  # naive: read as UTC
    ]
    out = clock(created, ["America/New_York"] * 3)
    assert out.hour.tolist() == [2.5, 2.5, 2.5]


def test_epoch_seconds_are_understood():
    epoch = int(pd.Timestamp("2026-03-30T06:30:00Z").timestamp())
    out = clock([epoch], ["UTC"])
    assert out.hour.tolist() == [6.5]


def test_business_hours_are_parameters():
    out = clock(["2026-03-30T07:30:00Z"] * 1, ["UTC"], business_start_hour=7, business_end_hour=8)
    assert out.after_hours.tolist() == [0.0]
    out = clock(["2026-03-30T08:00:00Z"], ["UTC"], business_start_hour=7, business_end_hour=8)
    assert out.after_hours.tolist() == [1.0]


def test_local_time_refuses_more_than_two_columns_and_checks_width():
    three = pd.DataFrame({"a": ["2026-01-01"], "b": ["UTC"], "c": ["x"]})
    with pytest.raises(ValueError, match="1 or 2 columns"):
        LocalTimeFeatures().fit(three)

    fitted = LocalTimeFeatures().fit(pd.DataFrame({"created_at": ["2026-01-01T00:00:00Z"], "tz": ["UTC"]}))
    with pytest.raises(ValueError):
        fitted.transform(pd.DataFrame({"created_at": ["2026-01-01T00:00:00Z"]}))


def test_local_time_pickles():
    frame = pd.DataFrame({"created_at": [c for c, *_ in DST_CASES], "tz": [z for _, z, *_ in DST_CASES]})
    fitted = LocalTimeFeatures(9, 17).fit(frame)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(frame), fitted.transform(frame))
    assert restored.get_params() == {"business_start_hour": 9, "business_end_hour": 17}


def test_timestamps_take_a_shortcut_to_the_same_instant():
    from features.transformers import _parse_other, parse_timestamp

    stamps = [
        pd.Timestamp("2026-03-30T08:30:00", tz="Europe/Berlin"),
        pd.Timestamp("2026-03-30T08:30:00.123456"),  # naive: UTC
        pd.Timestamp("2026-10-25T00:30:00Z").tz_convert("Europe/Berlin"),  # 02:30, the first of two
    ]
    for stamp in stamps:
        generic = _parse_other(stamp)
        expected = generic.replace(tzinfo=timezone.utc) if generic.tzinfo is None else generic.astimezone(timezone.utc)
        assert parse_timestamp(stamp) == expected and parse_timestamp(stamp).tzinfo == timezone.utc


def test_missing_categories_are_filled_and_values_normalised():
    from features.transformers import fill_missing_category

    values = np.array([["Email", None], ["  ", np.nan], [3, " Enterprise "], [pd.NA, ""]], dtype=object)
    assert fill_missing_category(values).tolist() == [
        ["email", "unknown"], ["unknown", "unknown"], ["3", "enterprise"], ["unknown", "unknown"]
    ]
