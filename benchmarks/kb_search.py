"""Help-article search: how fast, and how often the top article fits the ticket.

Searches the shipped sample articles (``serving/defaults/kb``) with generated
tickets (``training/sample.py``, a fixed seed) and writes the ``kb_search``
section of ``docs/benchmarks.md``:

- latency of one ``KnowledgeBase.search`` (subject + body of one ticket, k=3),
  median and 95th percentile, for the shipped articles and for three times as
  many (each article's title recombined with another article's body, so the
  vocabulary and the number of documents both grow);
- per ticket language, the share of tickets that get at least one article and
  the share whose top article belongs to the ticket's category (articles carry
  a ``category`` in their front matter; the generator knows each ticket's).
  The search was never tuned on these tickets.

Run from the project root: ``.venv/bin/python benchmarks/kb_search.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import machine_lines, markdown_table, say, write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000, help="Generated tickets to search with.")
    parser.add_argument("--no-write", action="store_true", help="Print the section instead of writing it.")
    args = parser.parse_args()

    from serving.kb import DEFAULT_ARTICLES_DIR, KnowledgeBase, read_articles
    from training.sample import generate_tickets

    tickets = generate_tickets(args.tickets, seed=11)
    queries = [f"{s}. {b}" for s, b in zip(tickets["subject"].fillna(""), tickets["body"].fillna(""))]
    articles = read_articles(DEFAULT_ARTICLES_DIR)
    shipped = KnowledgeBase.build()
    with tempfile.TemporaryDirectory() as folder:
        larger = KnowledgeBase.build(_recombined(articles, Path(folder), copies=3))

    timing_rows = []
    for name, knowledge_base in (("shipped", shipped), ("3x recombined", larger)):
        say(f"timing {name} ({len(knowledge_base)} articles)")
        median, p95 = _latency(knowledge_base, queries)
        timing_rows.append([name, str(len(knowledge_base)), f"{median * 1e3:.2f}", f"{p95 * 1e3:.2f}"])

    category_of = {a.id: a.category for a in articles}
    quality_rows = []
    for language in ("en", "de", "es", "fr", "all"):
        mask = (tickets["language"] == language) if language != "all" else tickets["language"].notna()
        hits = [shipped.search(q, k=3) for q, keep in zip(queries, mask) if keep]
        truth = tickets.loc[mask, "category"].tolist()
        with_any = sum(bool(h) for h in hits)
        top_fits = sum(bool(h) and category_of[h[0].id] == c for h, c in zip(hits, truth))
        quality_rows.append([language, f"{len(hits):,}", f"{with_any / len(hits):.1%}",
                             f"{top_fits / max(with_any, 1):.1%}", f"{top_fits / len(hits):.1%}"])

    body = "\n".join([
        "## Help-article search (`benchmarks/kb_search.py`)",
        "",
        *machine_lines(),
        f"- {args.tickets:,} generated tickets (seed 11) as queries, subject and body; k=3, default `min_score`.",
        "",
        "One search (clean, mask, synonyms, word and character TF-IDF, cosine), single thread, ms:",
        "",
        markdown_table(["articles", "count", "median", "p95"], timing_rows),
        "",
        "Does the top article belong to the ticket's category? (articles are in English only)",
        "",
        markdown_table(["language", "tickets", "any article", "top fits, of those with one", "top fits, of all"],
                       quality_rows),
    ])
    if args.no_write:
        print(body)
    else:
        write_section("kb_search", body)
        say("wrote the kb_search section of docs/benchmarks.md")


def _latency(knowledge_base, queries: list[str]) -> tuple[float, float]:
    for query in queries[:50]:  # warm caches and lazy imports
        knowledge_base.search(query)
    durations = []
    for query in queries:
        started = time.perf_counter()
        knowledge_base.search(query)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), statistics.quantiles(durations, n=20)[-1]


def _recombined(articles, folder: Path, copies: int) -> Path:
    """``copies`` times as many articles: copy c of article i has its title and the body of article i + c."""
    for copy in range(copies):
        for i, article in enumerate(articles):
            other = articles[(i + copy) % len(articles)]
            (folder / f"{article.id}-{copy}.md").write_text(f"# {article.title}\n\n{other.body}\n", encoding="utf-8")
    return folder


if __name__ == "__main__":
    main()
