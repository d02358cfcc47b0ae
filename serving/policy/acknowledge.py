"""Drafting the acknowledgement sent (or suggested) when no human can answer yet."""

from __future__ import annotations

import re

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from serving.policy.spec import AcknowledgementText
from serving.schemas import Acknowledgement, ArticleLink


#: ``search(text) -> articles``, best first (serving.kb.KnowledgeBase.search fits).
Search = Callable[[str], Sequence[Any]]


def article_links(search: Search | None, text: str, limit: int) -> list[ArticleLink]:
    """Up to ``limit`` help articles for ``text``, best first."""
    if search is None or limit <= 0:
        return []
    links = []
    for article in search(text):
        score = float(getattr(article, "score", 0.0))
        url = getattr(article, "url", None) or str(getattr(article, "path", "") or "")
        links.append(ArticleLink(title=str(article.title), url=url, score=round(score, 4)))
        if len(links) == limit:
            break
    return links


def draft(settings: AcknowledgementText, *, ticket_id: str, issue: str, team: str, reply_by_local: datetime,
          timezone: str, articles: list[ArticleLink], send: bool) -> Acknowledgement:
    """The acknowledgement text from the policy's template (placeholders were checked on load)."""
    listed = ""
    if articles:
        listed = "\nIn the meantime, these help articles may answer your question:\n" + "\n".join(
            f"- {a.title}: {a.url}" for a in articles)
    text = settings.template.format(
        ticket_id=ticket_id,
        issue=issue,
        team=team,
        reply_by=_human_time(reply_by_local),
        timezone=timezone,
        articles=listed,
    )
    text = re.sub(r"\n{3,}", "\n\n", text).strip()  # no gap where an empty placeholder was
    return Acknowledgement(text=text, reply_by_local=reply_by_local, articles=articles, send=send)


def _human_time(moment: datetime) -> str:
    """``Tuesday 24 November, 09:00`` (English; the wall time in the zone ``moment`` carries)."""
    return f"{moment:%A} {moment.day} {moment:%B}, {moment:%H:%M}"
