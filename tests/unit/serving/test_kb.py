"""Help-article search (serving/kb.py) and `nightdesk kb index`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from serving.kb import (
    DEFAULT_ARTICLES_DIR,
    IndexNotFoundError,
    KnowledgeBase,
    KnowledgeBaseError,
    StaleIndexError,
    SynonymGroups,
    parse_article,
    read_articles,
)
from training.sample import DEFAULT_CATEGORIES, generate_tickets


@pytest.fixture(scope="module")
def shipped() -> KnowledgeBase:
    """The sample articles and synonyms shipped with the project."""
    return KnowledgeBase.build()


def write_articles(folder: Path, articles: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
    return folder


TINY = {
    "sign-in": "# Trouble signing in\n\nUse the sign in page with your work address. Sign in requires a verified address.",
    "invoices": "# Invoices\n\nFind every invoice of your workspace under Settings, Billing, Invoices.",
    "parcels": "# Parcel delivery\n\nParcels are handed to the carrier within two days.",
}


def top_id(knowledge_base: KnowledgeBase, text: str) -> str | None:
    hits = knowledge_base.search(text, k=1)
    return hits[0].id if hits else None


# ---------------------------------------------------------------- search quality on the shipped articles


@pytest.mark.parametrize(("query", "expected"), [
    ("How do I reset my password?", "password-reset"),
    ("Our API returns 429 too many requests", "api-rate-limits"),
    ("I would like my account and all my personal data deleted.", "delete-account"),
    ("Suspicious login from unknown location", "suspicious-login"),
    ("Package damaged on delivery", "damaged-or-wrong-item"),
    ("Production is down for all users, nothing works", "status-page-and-outages"),
])
def test_exact_wording_finds_the_article(shipped, query, expected):
    assert top_id(shipped, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("pasword resett", "password-reset"),
    ("refnd not recieved", "refunds"),
    ("ratelimit exceded on the APi", "api-rate-limits"),
    ("suspicous logn alert", "suspicious-login"),
])
def test_misspellings_still_match(shipped, query, expected):
    assert top_id(shipped, query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("where can I download my bill", "invoices-and-receipts"),
    ("we got scammed by a fake email", "phishing"),
])
def test_synonyms_of_the_shipped_list_match(shipped, query, expected):
    assert top_id(shipped, query) == expected


@pytest.mark.parametrize("query", ["What's the weather in Paris tomorrow?", "asdf qwerty", "", "   ", "Thanks!"])
def test_unrelated_text_finds_nothing(shipped, query):
    assert shipped.search(query) == []


def test_hits_are_ordered_limited_and_above_the_floor(shipped):
    hits = shipped.search("password reset e-mail never arrives", k=2, min_score=0.05)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score >= 0.05
    assert {h.id for h in hits} == {"password-reset", "password-reset-email-missing"}
    assert all(h.url.startswith("https://help.nightdesk.example/") for h in hits)
    assert shipped.search("password reset", min_score=0.99) == []
    assert shipped.search("password reset", k=0) == []


def test_shipped_articles_cover_every_sample_category():
    articles = read_articles(DEFAULT_ARTICLES_DIR)
    assert 20 <= len(articles) <= 40
    assert {a.category for a in articles} == set(DEFAULT_CATEGORIES)
    assert all(a.url.startswith("https://") and a.title for a in articles)


# ---------------------------------------------------------------- synonyms, on tiny inline articles


def test_synonyms_connect_different_wordings(tmp_path):
    folder = write_articles(tmp_path / "kb", TINY)
    synonyms = tmp_path / "synonyms.yaml"
    synonyms.write_text("groups:\n  - [login, log in, sign in]\n  - [invoice, bill]\n", encoding="utf-8")
    with_synonyms = KnowledgeBase.build(folder, synonyms)
    without = KnowledgeBase.build(folder, None)

    assert top_id(with_synonyms, "I cannot log in") == "sign-in"
    assert top_id(with_synonyms, "where is my bill") == "invoices"
    # The same queries without the synonym list: the wording alone does not get there.
    assert top_id(without, "where is my bill") != "invoices"
    assert with_synonyms.search("I cannot log in")[0].score > max(
        [h.score for h in without.search("I cannot log in", min_score=0.0) if h.id == "sign-in"], default=0.0)


def test_synonym_expansion_adds_the_group_head_for_whole_words_only():
    groups = SynonymGroups([["login", "log in", "sign in"], ["invoice", "bill"]])
    assert groups.expand("can't sign  in today") == "can't sign  in today login"
    assert groups.expand("billing question") == "billing question"  # "bill" inside a word does not count


def test_terms_found_by_first_word_are_what_the_whole_pattern_finds(shipped):
    # Overlapping terms ("log in" / "login" / "log"), hyphens, case, runs of white space, terms
    # back to back and inside longer words, non-ASCII text and generated tickets in five languages:
    # the same matches, in order.
    synonyms = shipped.synonyms
    tricky = ["LOG IN logged-in  Log\tIn loginlogin login_x Two-Factor 2FA e-mail log in log in",
              "sign in sign-in signin, signed in; re-sign in", "money back?money back", "x" * 30 + " sign  in",
              "", "   ", "pw_reset pw reset-pw", "Refund REFUNDED refunds\nrefund",
              # Characters that match ASCII letters ignoring case, and letters that extend a word.
              "ſign in, SIGN İN, logın, LOG İN, İnvoice, \u212aey, \u212aeys", "élogin café-login login-é 2fa²",
              "Überweisung: refund über money back ſtolen"]
    frame = generate_tickets(200, seed=9)
    texts = tricky + [f"{subject}\n{body}" for subject, body in zip(frame.subject, frame.body)]
    texts += [text.lower() for text in texts]  # as search_text hands them over
    assert synonyms._by_first_word is not None  # every shipped term is ASCII and begins with a word
    found = [synonyms._found(text) for text in texts]
    assert found == [[m.group() for m in synonyms._pattern.finditer(text)] for text in texts]
    assert sum(map(bool, found)) > 50


def test_terms_that_begin_without_a_word_or_outside_ascii_are_scanned_for_everywhere():
    assert SynonymGroups([["-x", "y"]])._by_first_word is None
    assert SynonymGroups([["café", "coffee"]])._by_first_word is None
    assert SynonymGroups([["café", "coffee"]]).expand("un Café noir") == "un Café noir café"


@pytest.mark.parametrize(("content", "message"), [
    ("groups: [[login]]\n", r"groups\[0\] must be a list of at least two terms"),
    ("synonyms: []\n", "top-level 'groups:'"),
    ("groups: [[a, b]\n", "not valid YAML"),
])
def test_bad_synonyms_file_is_named_with_the_problem(tmp_path, content, message):
    folder = write_articles(tmp_path / "kb", TINY)
    bad = tmp_path / "synonyms.yaml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=message) as error:
        KnowledgeBase.build(folder, bad)
    assert str(bad) in str(error.value)


# ---------------------------------------------------------------- articles


def test_title_and_metadata_come_from_front_matter_or_the_first_heading():
    with_front = parse_article("---\ntitle: Reset it\nurl: https://x.example/r\ntags: [a, b]\n---\n# Other\nbody", "r")
    assert (with_front.title, with_front.url, with_front.tags) == ("Reset it", "https://x.example/r", ("a", "b"))
    plain = parse_article("Intro line\n# Heading title\nbody text", "folder/plain")
    assert (plain.id, plain.title, plain.url) == ("folder/plain", "Heading title", "folder/plain.md")
    assert "Heading title" not in plain.body


@pytest.mark.parametrize(("text", "message"), [
    ("just text, no heading", "no title"),
    ("---\ntitel: Oops\n---\n# T\n", "unknown front matter key\\(s\\) titel"),
    ("---\ntags: {a: 1}\n---\n# T\n", "'tags' must be a list of texts"),
    ("---\n[unclosed\n---\n# T\n", "front matter is not valid YAML"),
])
def test_bad_articles_are_refused_with_the_file_and_reason(text, message):
    with pytest.raises(KnowledgeBaseError, match=message) as error:
        parse_article(text, "a", source="kb/a.md")
    assert "kb/a.md" in str(error.value)


def test_personal_data_in_articles_never_reaches_the_index(tmp_path):
    folder = write_articles(tmp_path / "kb", {
        **TINY, "contact": "# Contact us\n\nWrite to jane.doe@example.com or call +44 20 7946 0958.",
    })
    knowledge_base = KnowledgeBase.build(folder, None)
    vocabulary = knowledge_base._word.vocabulary_
    assert "jane" not in vocabulary and "doe" not in vocabulary and "7946" not in vocabulary
    assert "contact" in vocabulary


def test_fast_query_vectors_equal_scikit_learns(shipped):
    import numpy as np

    query = "pasword reset e-mail never arrives, please help"
    from serving.kb import search_text

    text = search_text(query, shipped.synonyms)
    for vectorizer, fast in ((shipped._word, shipped._word_query), (shipped._char, shipped._char_query)):
        expected = vectorizer.transform([text]).toarray()[0]
        indices, weights = fast.vector(text)
        actual = np.zeros_like(expected, dtype=np.float64)
        actual[indices] = weights
        np.testing.assert_allclose(actual, expected, atol=1e-6)


# ---------------------------------------------------------------- the index file


def test_saved_index_loads_and_answers_the_same(tmp_path, shipped):
    path = shipped.save(tmp_path / "index.joblib")
    loaded = KnowledgeBase.load(path)
    for query in ("pasword resett", "where is my bill", "export tickets to csv"):
        assert loaded.search(query) == shipped.search(query)


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no help-article index at .*nightdesk kb index"):
        KnowledgeBase.load(tmp_path / "nowhere.joblib")


def test_unreadable_index_says_how_to_rebuild_it(tmp_path):
    path = tmp_path / "index.joblib"
    path.write_bytes(b"not a joblib file")
    with pytest.raises(KnowledgeBaseError, match="not a readable help-article index.*nightdesk kb index"):
        KnowledgeBase.load(path)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "synonyms"])
def test_index_of_changed_articles_is_reported_stale(tmp_path, change):
    folder = write_articles(tmp_path / "kb", TINY)
    synonyms = tmp_path / "synonyms.yaml"
    synonyms.write_text("groups:\n  - [login, sign in]\n", encoding="utf-8")
    path = KnowledgeBase.build(folder, synonyms).save(tmp_path / "index.joblib")
    KnowledgeBase.load(path)  # fresh: loads
    if change == "edit":
        (folder / "invoices.md").write_text("# Invoices\n\nNow elsewhere.", encoding="utf-8")
    elif change == "add":
        (folder / "new.md").write_text("# New article\n", encoding="utf-8")
    elif change == "remove":
        (folder / "parcels.md").unlink()
    else:
        synonyms.write_text("groups:\n  - [login, log in, sign in]\n", encoding="utf-8")
    with pytest.raises(StaleIndexError, match=r"stale.*nightdesk kb index --articles"):
        KnowledgeBase.load(path)


def test_index_moved_without_its_articles_still_loads(tmp_path):
    folder = write_articles(tmp_path / "kb", TINY)
    path = KnowledgeBase.build(folder, None).save(tmp_path / "index.joblib")
    for article in folder.iterdir():
        article.unlink()
    folder.rmdir()
    assert top_id(KnowledgeBase.load(path), "invoice") == "invoices"


# ---------------------------------------------------------------- the CLI


def test_kb_index_command_writes_a_searchable_index(tmp_path, nightdesk_home):
    from training.cli import main

    folder = write_articles(tmp_path / "kb", TINY)
    out = tmp_path / "out" / "index.joblib"
    runner = CliRunner()
    indexed = runner.invoke(main, ["kb", "index", "--articles", str(folder), "--out", str(out)])
    assert indexed.exit_code == 0, indexed.output
    assert "indexed 3 articles" in indexed.output and out.is_file()

    searched = runner.invoke(main, ["kb", "search", "invoice for my workspace", "--index", str(out), "--json"])
    assert searched.exit_code == 0, searched.output
    assert json.loads(searched.stdout)[0]["id"] == "invoices"


def test_kb_index_defaults_to_the_shipped_articles_and_nightdesk_home(nightdesk_home):
    from training.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["kb", "index"])
    assert result.exit_code == 0, result.output
    assert (nightdesk_home / "kb" / "index.joblib").is_file()
    assert f"indexed {len(read_articles(DEFAULT_ARTICLES_DIR))} articles" in result.output
    searched = runner.invoke(main, ["kb", "search", "pasword resett"])
    assert searched.exit_code == 0 and "Reset your password" in searched.stdout


def test_kb_commands_fail_with_a_clear_message(tmp_path, nightdesk_home):
    from training.cli import main

    runner = CliRunner()
    missing = runner.invoke(main, ["kb", "index", "--articles", str(tmp_path / "absent")])
    assert missing.exit_code == 1 and "articles folder" in missing.output and "does not exist" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    no_articles = runner.invoke(main, ["kb", "index", "--articles", str(empty)])
    assert no_articles.exit_code == 1 and "no Markdown articles" in no_articles.output
    no_index = runner.invoke(main, ["kb", "search", "password"])
    assert no_index.exit_code == 1 and "nightdesk kb index" in no_index.output
