"""features.transformers: the fast TF-IDF counting and the last-batch caches change no output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

import features.transformers as transformers
from features.transformers import FastCountingTfidfVectorizer, TicketTextFeatures, join_ticket_text

TOKENS = r"(?u)<[a-z]+>|\b\w+\b"

CONFIGS = [
    dict(analyzer="char_wb", ngram_range=(2, 5)),
    dict(analyzer="char_wb", ngram_range=(1, 4), max_features=300),
    dict(analyzer="char_wb", ngram_range=(3, 3), binary=True, max_df=0.5, min_df=2),
    dict(analyzer="word", ngram_range=(1, 2), token_pattern=TOKENS),
    dict(analyzer="word", ngram_range=(1, 3), token_pattern=TOKENS, min_df=2, max_features=200),
    dict(analyzer="word", ngram_range=(2, 3), token_pattern=TOKENS),
    dict(analyzer="word", ngram_range=(1, 1), lowercase=False),
    # No fast path: scikit-learn's own counting must still be used correctly.
    dict(analyzer="word", ngram_range=(1, 2), stop_words="english"),
    dict(analyzer="char", ngram_range=(2, 3)),
]


def _texts(tickets, rows: slice) -> list[str]:
    return [join_ticket_text(row) for row in tickets[["subject", "body"]].to_numpy(dtype=object)[rows]]


def _assert_same_matrix(expected, actual):
    # The same values in the same sparse layout, not just equal matrices.
    assert type(expected) is type(actual) and expected.dtype == actual.dtype
    assert expected.shape == actual.shape
    np.testing.assert_array_equal(expected.indptr, actual.indptr)
    np.testing.assert_array_equal(expected.indices, actual.indices)
    np.testing.assert_array_equal(expected.data, actual.data)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_fast_counting_matches_scikit_learn(tickets, config):
    train, test = _texts(tickets, slice(0, 400)), _texts(tickets, slice(400, 500))
    test += ["", "   ", "Çà et là: İstanbul ÉTÉ aaaa aaaa", "x"]
    params = dict(sublinear_tf=True, dtype=np.float32, **config)
    reference, fast = TfidfVectorizer(**params), FastCountingTfidfVectorizer(**params)

    _assert_same_matrix(reference.fit_transform(train), fast.fit_transform(train))
    assert fast.vocabulary_ == reference.vocabulary_
    _assert_same_matrix(reference.transform(test), fast.transform(test))


def test_fast_counting_raises_like_scikit_learn_on_an_empty_vocabulary():
    for vectorizer in (TfidfVectorizer(analyzer="char_wb"), FastCountingTfidfVectorizer(analyzer="char_wb")):
        with pytest.raises(ValueError, match="empty vocabulary"):
            vectorizer.fit(["", "   "])


def test_the_text_cache_never_returns_another_batchs_texts():
    first = np.array([["Refund", "order 12345 please"], [None, "Login fails"]], dtype=object)
    again = first.copy()
    changed = first.copy()
    changed[1, 1] = "Login works"
    numeric = np.array([[1, "x"]], dtype=object)
    as_float = np.array([[1.0, "x"]], dtype=object)

    cache = transformers._LastBatchTexts()
    assert cache.texts(first, True) == [join_ticket_text(row) for row in first]
    assert cache.texts(again, True) == [join_ticket_text(row) for row in first]
    assert cache.texts(changed, True) == [join_ticket_text(row) for row in changed]
    assert cache.texts(changed, False) == [join_ticket_text(row, mask=False) for row in changed]
    # 1 and 1.0 are equal but read as different texts ("1" and "1.0").
    assert cache.texts(numeric, True) == ["1. x"]
    assert cache.texts(as_float, True) == ["1.0. x"]


def test_three_models_on_one_batch_give_what_each_gives_alone(tickets):
    columns = tickets[["subject", "body"]]
    models = [TicketTextFeatures(char_ngram_range=r).fit(columns.iloc[:300]) for r in ((2, 5), (1, 4), (2, 5))]
    batch = columns.iloc[300:400]
    together = [model.transform(batch) for model in models]
    for model, matrix in zip(models, together):
        transformers.forget_recent_batches()
        assert (model.transform(batch) != matrix).nnz == 0


def test_fitted_text_features_pickle_with_the_fast_vectorizers(tickets):
    import pickle

    columns = tickets[["subject", "body"]]
    model = TicketTextFeatures().fit(columns.iloc[:200])
    restored = pickle.loads(pickle.dumps(model))
    assert isinstance(restored.char_vectorizer_, FastCountingTfidfVectorizer)
    assert sp.issparse(restored.transform(columns.iloc[200:210]))
    assert (restored.transform(columns.iloc[200:210]) != model.transform(columns.iloc[200:210])).nnz == 0


def test_a_vocabulary_given_out_of_order_is_counted_like_scikit_learn(tickets):
    # The shared batch counts rely on a fitted vocabulary being numbered in
    # sorted term order; a user's vocabulary need not be, and must still work.
    texts = _texts(tickets, slice(0, 50))
    for analyzer, terms in (("word", ["refund", "a", "zebra", "login", "the"]), ("char_wb", ["ef", " a", "zz", "in", "e "])):
        vocabulary = {term: i for i, term in enumerate(terms)}
        params = dict(analyzer=analyzer, vocabulary=vocabulary, dtype=np.float32)
        transformers.forget_recent_batches()
        _assert_same_matrix(TfidfVectorizer(**params).fit_transform(texts), FastCountingTfidfVectorizer(**params).fit_transform(texts))


def test_models_with_different_vocabularies_share_a_batch_correctly(tickets):
    # Different training texts: different vocabularies, both in sorted order; the
    # second model's counts come from the batch counts the first one left behind.
    batch = _texts(tickets, slice(600, 700))
    for config in CONFIGS[:6]:
        params = dict(sublinear_tf=True, dtype=np.float32, **config)
        fitted = [
            (TfidfVectorizer(**params).fit(_texts(tickets, rows)), FastCountingTfidfVectorizer(**params).fit(_texts(tickets, rows)))
            for rows in (slice(0, 150), slice(300, 330))
        ]
        transformers.forget_recent_batches()
        for reference, fast in fitted:
            _assert_same_matrix(reference.transform(batch), fast.transform(batch))


def test_counts_shared_by_models_are_handed_out_as_copies(tickets):
    # scikit-learn changes the counts it gets in place (binary, sublinear tf, idf):
    # what one model gets must not share memory with the batch's shared counts.
    train, batch = _texts(tickets, slice(0, 200)), _texts(tickets, slice(200, 260))
    char = FastCountingTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(train)
    word = FastCountingTfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=TOKENS).fit(train)
    transformers.forget_recent_batches()
    for vectorizer in (char, word):
        vectorizer.transform(batch)
        tokens = vectorizer._numbered_tokens(batch)
        (counts,) = [value[-1] for value in tokens.derived.values()
                     if isinstance(value, tuple) and sp.issparse(value[-1])]
        before = counts.copy()
        vectorizer.transform(batch).data[:] = 0
        mine = vectorizer._count_vocab(batch, fixed_vocab=True)[1]
        assert not np.shares_memory(mine.data, counts.data) and not np.shares_memory(mine.indptr, counts.indptr)
        _assert_same_matrix(before, counts)


TABLE_CONFIGS = [
    (dict(analyzer="char_wb", ngram_range=(2, 5)), "_CharGramTable", (150, 400_000)),
    (dict(analyzer="word", ngram_range=(1, 2), token_pattern=TOKENS), "_WordGramTable", (400, 100_000)),
    (dict(analyzer="word", ngram_range=(2, 3), token_pattern=TOKENS), "_WordGramTable", (400, 100_000)),
    # Tokens with a space: a token's text can equal a bigram's ("order 12" and "order" + "12").
    (dict(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+ \d+\b|\b\w+\b"), "_WordGramTable", (400, 100_000)),
]


@pytest.mark.parametrize("config, table, small", TABLE_CONFIGS, ids=lambda c: str(c))
def test_the_term_tables_count_as_a_fresh_count_across_calls_and_fresh_starts(tickets, monkeypatch, config, table, small):
    # N-grams remembered from earlier calls (and by another model with another vocabulary)
    # must count exactly as scikit-learn does, also when a table fills up and starts afresh.
    train = [_texts(tickets, slice(0, 200)), _texts(tickets, slice(300, 340))]
    train[1] = [text.replace("order", "order 12") for text in train[1]]
    params = dict(sublinear_tf=True, dtype=np.float32, **config)
    fitted = [(TfidfVectorizer(**params).fit(t), FastCountingTfidfVectorizer(**params).fit(t)) for t in train]
    batches = [_texts(tickets, rows) for rows in (slice(400, 450), slice(440, 520), slice(600, 601), slice(0, 30))]
    batches.append(["", "Çà et là: İstanbul ÉTÉ aaaa", "refund", "order 12 order 12 12"])
    defaults = getattr(transformers, table).__init__.__defaults__
    for bounds in (defaults, small):
        monkeypatch.setattr(getattr(transformers, table).__init__, "__defaults__", bounds)
        transformers.forget_recent_batches()
        transformers.forget_scored_words()
        for batch in batches:
            for reference, fast in fitted:
                _assert_same_matrix(reference.transform(batch), fast.transform(batch))
        (used,) = transformers._TERM_TABLES.values()
        assert type(used).__name__ == table and len(used.terms) > 0


def test_a_fitted_vectorizer_pickles_without_what_scoring_remembered(tickets):
    import pickle

    vectorizer = FastCountingTfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(_texts(tickets, slice(0, 100)))
    batch = _texts(tickets, slice(100, 120))
    scored = vectorizer.transform(batch)
    assert "_term_columns" in vectorizer.__dict__
    restored = pickle.loads(pickle.dumps(vectorizer))
    assert "_term_columns" not in restored.__dict__
    transformers.forget_recent_batches()
    transformers.forget_scored_words()
    _assert_same_matrix(scored, restored.transform(batch))


def test_batch_texts_clean_each_distinct_field_once_with_the_same_result():
    rows = np.array(
        [["Refund", "order 12345 please"], ["Refund", None], [1, "x"], [1.0, "x"], [float("nan"), "Refund"],
         ["Re: jane@example.com", "Call +49 30 1234567 <b>now</b>"], ["", "   "]],
        dtype=object,
    )
    for mask in (True, False):
        assert transformers._join_batch_texts(rows, mask) == [join_ticket_text(row, mask=mask) for row in rows]


def test_mentions_are_masked_only_when_asked():
    row = ["@united thanks! meet @5pm", "mail jane@example.com or @jane_d"]
    assert join_ticket_text(row) == "@united thanks! meet @5pm. mail <EMAIL> or @jane_d"
    assert join_ticket_text(row, mask_mentions=True) == "<MENTION> thanks! meet @5pm. mail <EMAIL> or <MENTION>"
    # The remembered batch is per option: one setting never gets the other's texts.
    rows = np.array([row], dtype=object)
    cache = transformers._LastBatchTexts()
    assert cache.texts(rows, True) == [join_ticket_text(row)]
    assert cache.texts(rows, True, True) == [join_ticket_text(row, mask_mentions=True)]


def test_text_features_with_masked_mentions_learn_one_mention_word():
    texts = pd.DataFrame({"body": ["@united great flight", "@delta lost my bag", "@united thanks"]})
    features = TicketTextFeatures(mask_mentions=True).fit(texts)
    words = set(features.word_vectorizer_.vocabulary_)
    assert "<mention>" in words and "united" not in words and "delta" not in words
    assert TicketTextFeatures().get_params()["mask_mentions"] is False
