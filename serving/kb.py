"""Help-article search: which of our help articles answer a ticket.

A folder of Markdown articles is indexed once (``nightdesk kb index``) into one
file; the service loads that file and searches it per ticket (``search``) or for a whole
batch of tickets at once (``search_many``, the same answers). An article is a
Markdown file whose title is its first ``#`` heading (or ``title`` in front
matter); optional YAML front matter between ``---`` lines adds ``url``, ``tags``
and ``synonyms`` (phrases customers use for the topic, indexed with the article).

How a text is matched, and why:

- Tickets and articles go through the project's own cleaning and PII masking
  (``features.transformers.join_ticket_text``), so a search sees what the
  models see and no personal data reaches the index.
- Synonym groups (``serving/defaults/synonyms.yaml``: "sign in" ~ "log in" ~
  "login", "invoice" ~ "bill") add each group's first term wherever any of its
  terms occurs, in articles and queries alike, so either wording finds the other.
- Two TF-IDF spaces: words (1-2 grams) reward exact terms and phrases;
  character n-grams within words (2-4) keep misspellings close to their correct
  form ("pasword resett" still shares most n-grams with "password reset"). The
  score is a weighted sum of the two cosine similarities.

The index records a SHA-256 of the articles and synonyms it was built from;
loading it when those files have changed since raises ``StaleIndexError``.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import yaml
from pydantic import BaseModel

from features.transformers import join_ticket_text
from serving.casefold import ascii_probe

__all__ = [
    "DEFAULT_ARTICLES_DIR",
    "DEFAULT_SYNONYMS_FILE",
    "Article",
    "HelpArticle",
    "IndexNotFoundError",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "StaleIndexError",
    "SynonymGroups",
    "default_index_path",
    "hash_sources",
    "load_synonyms",
    "parse_article",
    "read_articles",
]

DEFAULT_ARTICLES_DIR: Final[Path] = Path(__file__).resolve().parent / "defaults" / "kb"
DEFAULT_SYNONYMS_FILE: Final[Path] = Path(__file__).resolve().parent / "defaults" / "synonyms.yaml"
#: Where ``nightdesk kb index`` writes by default, relative to NIGHTDESK_HOME.
INDEX_FILE_IN_HOME: Final[str] = "kb/index.joblib"
#: Bumped whenever the index layout or the text processing changes, so old files are rebuilt.
INDEX_FORMAT: Final[int] = 1
DEFAULT_MIN_SCORE: Final[float] = 0.12

# Weights of the two similarity spaces: characters carry misspellings, words carry exact phrases.
_WORD_WEIGHT: Final[float] = 0.45
_CHAR_WEIGHT: Final[float] = 0.55
# Chosen on a few dozen hand-written queries (misspelled, paraphrased, unrelated) that
# are not the ones in the tests: 2-4 character grams beat 3-5 on short misspelled
# words ("refnud"), and counting the title several times did not help.
_WORD_NGRAMS: Final[tuple[int, int]] = (1, 2)
_CHAR_NGRAMS: Final[tuple[int, int]] = (2, 4)

_FRONT_MATTER: Final[re.Pattern[str]] = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_HEADING: Final[re.Pattern[str]] = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_MARKDOWN_LINK: Final[re.Pattern[str]] = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_SYNTAX: Final[re.Pattern[str]] = re.compile(r"^[ \t]*(?:#{1,6}|[-*+>]|\d+\.)[ \t]+|[`*_|]", re.MULTILINE)
_TOKEN: Final[re.Pattern[str]] = re.compile(r"<[a-z]+>|\w+")
# Function words say nothing about the topic; dropping them also keeps their
# character n-grams from making unrelated texts look alike. (scikit-learn's
# English list is not used: it holds topic words such as "bill" and "down".)
_STOP_WORDS: Final[frozenset[str]] = frozenset(
    """a about after again all also am an and any are as at be been before being but by can could did do does
    doing for from get got had has have having he her here hi hello him his how i if in into is it its just
    me my myself no of on once only or our ours please she so some still than that the their them then there
    these they this those to too us very was we were what when where which while who why will with would
    you your yours thanks thank lot everything something anything hey dear regards best""".split()
)

_FRONT_MATTER_KEYS: Final[frozenset[str]] = frozenset({"id", "title", "url", "tags", "synonyms", "category"})


class KnowledgeBaseError(ValueError):
    """An article, the synonyms file or the index cannot be used; the message says what to do."""


class IndexNotFoundError(KnowledgeBaseError):
    pass


class StaleIndexError(KnowledgeBaseError):
    pass


class Article(BaseModel):
    """One search hit: the article and how well it matches (0-1, higher is better)."""

    id: str
    title: str
    url: str
    score: float


@dataclass(frozen=True)
class HelpArticle:
    """A parsed Markdown article."""

    id: str  # path relative to the articles folder, without ".md"
    title: str
    url: str  # from front matter; the relative file path when there is none
    body: str
    tags: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    category: str | None = None


# ---------------------------------------------------------------- reading articles


def parse_article(text: str, article_id: str, source: str = "<text>") -> HelpArticle:
    """An article from its Markdown text; ``source`` names the file in error messages."""
    meta: dict = {}
    body = text.replace("\r\n", "\n").lstrip("\ufeff")
    front = _FRONT_MATTER.match(body)
    if front:
        try:
            meta = yaml.safe_load(front.group(1)) or {}
        except yaml.YAMLError as error:
            raise KnowledgeBaseError(f"{source}: front matter is not valid YAML: {error}") from None
        if not isinstance(meta, dict):
            raise KnowledgeBaseError(f"{source}: front matter must be a mapping of keys to values")
        unknown = sorted(set(meta) - _FRONT_MATTER_KEYS)
        if unknown:
            raise KnowledgeBaseError(
                f"{source}: unknown front matter key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_FRONT_MATTER_KEYS))}"
            )
        body = body[front.end():]
    heading = _HEADING.search(body)
    title = _string(meta, "title", source) or (heading.group(1).strip() if heading else "")
    if not title:
        raise KnowledgeBaseError(f"{source}: no title: add a '# Title' line or 'title:' in front matter")
    if heading and heading.group(1).strip() == title:
        body = body[: heading.start()] + body[heading.end():]  # the title is indexed on its own
    return HelpArticle(
        id=_string(meta, "id", source) or article_id,
        title=title,
        url=_string(meta, "url", source) or f"{article_id}.md",
        body=body.strip(),
        tags=_strings(meta, "tags", source),
        synonyms=_strings(meta, "synonyms", source),
        category=_string(meta, "category", source),
    )


def read_articles(folder: Path) -> list[HelpArticle]:
    """Every ``*.md`` file under ``folder`` (recursively, in path order) as an article."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KnowledgeBaseError(f"articles folder {folder} does not exist")
    articles = []
    for path in _article_files(folder):
        article_id = path.relative_to(folder).with_suffix("").as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise KnowledgeBaseError(f"{path}: not UTF-8 text") from None
        articles.append(parse_article(text, article_id, source=str(path)))
    if not articles:
        raise KnowledgeBaseError(f"no Markdown articles (*.md) in {folder}")
    ids = [a.id for a in articles]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise KnowledgeBaseError(f"{folder}: article id(s) used more than once: {', '.join(duplicates)}")
    return articles


def _article_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.md") if p.is_file() and not p.name.startswith("."))


def _string(meta: dict, key: str, source: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise KnowledgeBaseError(f"{source}: front matter '{key}' must be text, got {type(value).__name__}")
    return str(value).strip() or None


def _strings(meta: dict, key: str, source: str) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KnowledgeBaseError(f"{source}: front matter '{key}' must be a list of texts")
    return tuple(v.strip() for v in value if v.strip())


# ---------------------------------------------------------------- synonyms


class SynonymGroups:
    """Groups of interchangeable terms; every term of a group also stands for the group's first term."""

    def __init__(self, groups: Sequence[Sequence[str]]):
        self.groups: tuple[tuple[str, ...], ...] = tuple(
            tuple(dict.fromkeys(_normalise_term(t) for t in group if _normalise_term(t))) for group in groups
        )
        canonical: dict[str, str] = {}
        for group in self.groups:
            for term in group:
                canonical.setdefault(term, group[0])
        self._canonical = canonical
        # Longest first, so "log in" wins over "log"; a term never matches inside a word.
        terms = sorted(canonical, key=len, reverse=True)
        self._pattern = _terms_pattern(terms, r"(?<!\w)") if terms else None
        self._by_first_word = _by_first_word(terms)

    def expand(self, text: str) -> str:
        """``text`` followed by the first term of the group of every term found in it (case ignored)."""
        if self._pattern is None:
            return text
        added = [self._canonical[" ".join(found.lower().split())] for found in self._found(text)]
        return f"{text} {' '.join(added)}" if added else text

    def _found(self, text: str) -> list[str]:
        """The terms' matches in ``text``, as ``self._pattern.finditer`` finds them.

        A match can only start where a word starts, and only a term whose first word is that word,
        ignoring case, can match there (a term's first word is followed by a space, a hyphen or the
        term's end, the pattern by a non-word character): so only those terms are tried, in the
        same order, at the starts of the words that begin a term (about six times cheaper than
        scanning for all terms at every position). The terms are ASCII: a word's ``ascii_probe``
        is the term's first word wherever the case-insensitive pattern would match there.
        """
        if self._by_first_word is None:
            return [match.group() for match in self._pattern.finditer(text)]
        fold = str.lower if text.isascii() else _ascii_fold
        found, resume = [], 0
        for word in _WORD.finditer(text):
            start = word.start()
            terms = self._by_first_word.get(fold(word.group())) if start >= resume else None
            match = terms.match(text, start) if terms is not None else None
            if match is not None:
                found.append(match.group())
                resume = match.end()
        return found


_WORD: Final[re.Pattern[str]] = re.compile(r"\w+")


def _ascii_fold(word: str) -> str:
    return ascii_probe(word.lower())


def _terms_pattern(terms: Sequence[str], before: str = "") -> re.Pattern[str]:
    """One of ``terms`` (in this order) as whole words, any run of white space between their words."""
    return re.compile(r"%s(?:%s)(?!\w)" % (before, "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in terms)),
                      re.IGNORECASE)


def _by_first_word(terms: Sequence[str]) -> dict[str, re.Pattern[str]] | None:
    """For each first word of ``terms``, the pattern of the terms that begin with it (in ``terms``' order);
    None unless every term is ASCII and begins with a word character (then matching by first word
    finds exactly what the full pattern finds)."""
    if not all(term.isascii() and _WORD.match(term) for term in terms):
        return None
    starting: dict[str, list[str]] = {}
    for term in terms:
        starting.setdefault(_WORD.match(term).group(), []).append(term)
    return {word: _terms_pattern(group) for word, group in starting.items()}


def load_synonyms(path: Path) -> SynonymGroups:
    """Read a synonyms YAML: ``groups:`` a list of lists of terms (words or phrases)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise KnowledgeBaseError(f"synonyms file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise KnowledgeBaseError(f"{path}: not valid YAML: {error}") from None
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise KnowledgeBaseError(f"{path}: expected a top-level 'groups:' list of lists of terms")
    for number, group in enumerate(groups):
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(t, str) for t in group):
            raise KnowledgeBaseError(f"{path}: groups[{number}] must be a list of at least two terms")
    return SynonymGroups(groups)


def _ascending(counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A text's n-gram counts as indices (ascending) and counts (float64)."""
    indices = np.fromiter(counts, dtype=np.int64, count=len(counts))
    order = np.argsort(indices)
    return indices[order], np.fromiter(counts.values(), dtype=np.float64, count=len(counts))[order]


def _normalise_term(term: str) -> str:
    return " ".join(term.lower().split())


# ---------------------------------------------------------------- text processing


def search_text(text: str, synonyms: SynonymGroups) -> str:
    """The text a query or article is compared by: cleaned, masked, synonyms added, function words dropped."""
    cleaned = join_ticket_text([text]).lower()
    expanded = synonyms.expand(cleaned)
    return " ".join(t for t in _TOKEN.findall(expanded) if t not in _STOP_WORDS and not t.startswith("<"))


def _article_text(article: HelpArticle) -> str:
    body = _MARKDOWN_SYNTAX.sub(" ", _MARKDOWN_LINK.sub(r"\1", article.body))
    return "\n".join([article.title, *article.tags, *article.synonyms, body])


def hash_sources(articles_dir: Path, synonyms_file: Path | None) -> str:
    """SHA-256 over the articles' paths and bytes, the synonyms file and the index format."""
    digest = hashlib.sha256(f"nightdesk-kb-{INDEX_FORMAT}".encode())
    articles_dir = Path(articles_dir)
    for path in _article_files(articles_dir):
        digest.update(path.relative_to(articles_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    if synonyms_file is not None:
        digest.update(b"synonyms\0" + Path(synonyms_file).read_bytes())
    return digest.hexdigest()


def default_index_path(home: Path) -> Path:
    """The index file inside NIGHTDESK_HOME."""
    return Path(home) / INDEX_FILE_IN_HOME


# ---------------------------------------------------------------- the index


class KnowledgeBase:
    """A searchable index of help articles. Build with ``build``, persist with ``save``/``load``."""

    def __init__(self, articles: Sequence[HelpArticle], synonyms: SynonymGroups, *, source_hash: str = "",
                 articles_dir: Path | None = None, synonyms_file: Path | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if not articles:
            raise KnowledgeBaseError("a knowledge base needs at least one article")
        self.articles = tuple(articles)
        self.synonyms = synonyms
        self.source_hash = source_hash
        self.articles_dir = articles_dir
        self.synonyms_file = synonyms_file
        texts = [search_text(_article_text(a), synonyms) for a in self.articles]
        common = dict(sublinear_tf=True, strip_accents="unicode", dtype=np.float32)
        self._word = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", ngram_range=_WORD_NGRAMS, **common)
        self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=_CHAR_NGRAMS, **common)
        # Transposed once here: features by documents, the right-hand side of a query product.
        self._word_matrix = self._word.fit_transform(texts).T.tocsr()
        self._char_matrix = self._char.fit_transform(texts).T.tocsr()
        self._prepare_queries()

    def _prepare_queries(self) -> None:
        # scikit-learn's transform validates its input on every call, which costs ten times
        # the arithmetic for a one-line query; _QueryVectorizer does the same sums directly.
        # The document matrices are kept dense when small (the shipped ~35 articles: about
        # 2 MB): a batch of queries is then one sparse-times-dense product per space, with no
        # per-query row selection from a sparse matrix (which cost most of a search).
        self._word_query = _QueryVectorizer(self._word, self._word_matrix)
        self._char_query = _QueryVectorizer(self._char, self._char_matrix)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_word_query", "_char_query")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._prepare_queries()

    @classmethod
    def build(cls, articles_dir: Path = DEFAULT_ARTICLES_DIR,
              synonyms_file: Path | None = DEFAULT_SYNONYMS_FILE) -> KnowledgeBase:
        """Index every article in ``articles_dir`` (``synonyms_file=None``: no synonyms)."""
        articles_dir = Path(articles_dir).resolve()
        synonyms = load_synonyms(synonyms_file) if synonyms_file is not None else SynonymGroups([])
        articles = read_articles(articles_dir)
        return cls(articles, synonyms, source_hash=hash_sources(articles_dir, synonyms_file),
                   articles_dir=articles_dir, synonyms_file=Path(synonyms_file).resolve() if synonyms_file else None)

    def search(self, text: str, k: int = 3, min_score: float = DEFAULT_MIN_SCORE) -> list[Article]:
        """The best ``k`` articles for ``text`` scoring at least ``min_score``, best first (may be empty)."""
        return self.search_many([text], k, min_score)[0]

    def search_many(self, texts: Sequence[str], k: int = 3,
                    min_score: float = DEFAULT_MIN_SCORE) -> list[list[Article]]:
        """``search`` of every text, in order, scored together: one matrix product per similarity space.

        ``search`` is this with one text, so a text gets the same articles alone or in a batch.
        """
        if k < 1 or not texts:
            return [[] for _ in texts]
        queries = [search_text(text or "", self.synonyms) for text in texts]
        asked = [i for i, query in enumerate(queries) if query]
        results: list[list[Article]] = [[] for _ in texts]
        if not asked:
            return results
        asked_queries = [queries[i] for i in asked]
        scores = (_WORD_WEIGHT * self._word_query.similarities_many(asked_queries)
                  + _CHAR_WEIGHT * self._char_query.similarities_many(asked_queries))
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, i in enumerate(asked):
            row_scores = scores[row]
            results[i] = [self._hit(j, float(row_scores[j])) for j in best[row] if row_scores[j] >= min_score]
        return results

    def _hit(self, index: int, score: float) -> Article:
        article = self.articles[index]
        return Article(id=article.id, title=article.title, url=article.url, score=round(score, 4))

    # ------------------------------------------------------------ persistence

    def save(self, path: Path) -> Path:
        """Write the index to ``path`` (joblib), replacing any older file atomically."""
        import joblib
        import sklearn

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        joblib.dump({"format": INDEX_FORMAT, "sklearn": sklearn.__version__, "knowledge_base": self}, partial)
        partial.replace(path)
        return path

    @classmethod
    def load(cls, path: Path, articles_dir: Path | None = None,
             synonyms_file: Path | None = None) -> KnowledgeBase:
        """Load an index written by ``save``.

        Freshness is checked against ``articles_dir`` and ``synonyms_file`` (default:
        the ones it was built from, when they still exist): if those files changed
        since, ``StaleIndexError`` says how to rebuild it.
        """
        import joblib
        import sklearn

        path = Path(path)
        rebuild = f"build it with `nightdesk kb index --out {path}`"
        if not path.is_file():
            raise IndexNotFoundError(f"no help-article index at {path}; {rebuild}")
        try:
            stored = joblib.load(path)
        except Exception as error:  # a truncated or foreign file: any unpickling error means "rebuild"
            raise KnowledgeBaseError(f"{path} is not a readable help-article index ({error}); {rebuild}") from None
        if not isinstance(stored, dict) or stored.get("format") != INDEX_FORMAT:
            raise StaleIndexError(f"{path} was written by another version of Nightdesk; {rebuild}")
        if stored.get("sklearn") != sklearn.__version__:
            raise StaleIndexError(
                f"{path} was built with scikit-learn {stored.get('sklearn')}, this is {sklearn.__version__}; {rebuild}"
            )
        knowledge_base: KnowledgeBase = stored["knowledge_base"]
        knowledge_base.check_fresh(articles_dir, synonyms_file, index_path=path)
        return knowledge_base

    def check_fresh(self, articles_dir: Path | None = None, synonyms_file: Path | None = None,
                    index_path: Path | None = None) -> None:
        """Raise ``StaleIndexError`` when the articles (or synonyms) differ from those indexed."""
        articles_dir = Path(articles_dir) if articles_dir is not None else self.articles_dir
        synonyms_file = Path(synonyms_file) if synonyms_file is not None else self.synonyms_file
        if articles_dir is None or not articles_dir.is_dir():
            return  # a self-contained index shipped without its sources: nothing to compare
        if synonyms_file is not None and not synonyms_file.is_file():
            synonyms_file = None
        current = hash_sources(articles_dir, synonyms_file)
        if current != self.source_hash:
            where = f" {index_path}" if index_path else ""
            raise StaleIndexError(
                f"help-article index{where} is stale: the articles in {articles_dir} (or the synonyms) changed "
                f"since it was built (hash {self.source_hash[:12]} -> {current[:12]}); rebuild it with "
                f"`nightdesk kb index --articles {articles_dir}"
                + (f" --out {index_path}`" if index_path else "`")
            )

    def __len__(self) -> int:
        return len(self.articles)


#: Distinct words whose character n-grams a query vectorizer remembers before starting afresh.
_WORD_CACHE_SIZE: Final[int] = 50_000
#: Largest document matrix (features x articles) kept dense for query products: 4M float64
#: values (32 MB). The shipped articles need ~250,000; bigger indexes multiply sparse by sparse.
_DENSE_MAX_VALUES: Final[int] = 4_000_000


class _QueryVectorizer:
    """Queries through a fitted ``TfidfVectorizer`` (sublinear tf, idf, L2 norm), without its overhead,
    and their cosine similarities with the documents of ``features_by_document`` (features x documents)."""

    def __init__(self, fitted, features_by_document):
        self._analyze = fitted.build_analyzer()
        # char_wb n-grams never cross a word boundary, so a text's n-gram counts are the sum of its
        # words'. Words repeat from ticket to ticket: each one's known n-grams are looked up once.
        self._by_word = fitted.analyzer == "char_wb"
        self._preprocess = fitted.build_preprocessor()
        self._word_grams: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # word -> its known n-grams, counts
        self._vocabulary: dict[str, int] = fitted.vocabulary_
        self._idf = fitted.idf_.astype(np.float64)
        rows, columns = features_by_document.shape
        # float64 like the query weights, so the product is computed in one precision throughout.
        self._documents = (features_by_document.toarray().astype(np.float64) if rows * columns <= _DENSE_MAX_VALUES
                           else features_by_document.astype(np.float64).tocsr())
        self._width = rows
        self._count = columns

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Feature indices (ascending) and L2-normalised TF-IDF weights of ``text`` (unknown n-grams ignored)."""
        indices, counts = self._counts_by_word(text) if self._by_word else _ascending(self._counts(text))
        if not len(indices):
            return np.empty(0, dtype=np.int64), np.empty(0)
        weights = (1.0 + np.log(counts)) * self._idf[indices]
        return indices, weights / np.linalg.norm(weights)

    def _counts(self, text: str) -> dict[int, int]:
        vocabulary = self._vocabulary
        return {index: count for gram, count in Counter(self._analyze(text)).items()
                if (index := vocabulary.get(gram)) is not None}

    def _counts_by_word(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The same counts as ``_counts`` for a char_wb analyzer (which pads each word with spaces), as
        indices (ascending) and counts (float64): each word's known n-grams added up as arrays."""
        index_parts, count_parts = [], []
        for word, times in Counter(self._preprocess(text).split()).items():
            grams = self._word_grams.get(word)
            if grams is None:
                grams = self._known_grams(word)
            index_parts.append(grams[0])
            count_parts.append(grams[1] * times)
        if not index_parts:
            return np.empty(0, dtype=np.int64), np.empty(0)
        indices, at = np.unique(np.concatenate(index_parts), return_inverse=True)
        return indices, np.bincount(at, weights=np.concatenate(count_parts))  # sums of integers: exact

    def _known_grams(self, word: str) -> tuple[np.ndarray, np.ndarray]:
        vocabulary = self._vocabulary
        known = [(index, count) for gram, count in Counter(self._analyze(word)).items()
                 if (index := vocabulary.get(gram)) is not None]
        grams = (np.fromiter((index for index, _ in known), dtype=np.int64, count=len(known)),
                 np.fromiter((count for _, count in known), dtype=np.int64, count=len(known)))
        if len(self._word_grams) >= _WORD_CACHE_SIZE:
            self._word_grams.clear()
        self._word_grams[word] = grams
        return grams

    def similarities_many(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarities, texts x documents: the queries as one sparse matrix times the documents."""
        import scipy.sparse as sp

        vectors = [self.vector(text) for text in texts]
        indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
        np.cumsum([len(indices) for indices, _ in vectors], out=indptr[1:])
        queries = sp.csr_matrix(
            (np.concatenate([weights for _, weights in vectors]), np.concatenate([indices for indices, _ in vectors]),
             indptr), shape=(len(vectors), self._width))
        product = queries @ self._documents
        return product.toarray() if sp.issparse(product) else np.asarray(product)
