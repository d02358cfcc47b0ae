"""The bulk path's fast forms give what the plain ones give: batched help-article search,
batched routing decisions, the recorder's unvalidated records and its time-and-size batches,
and a shutdown that does not wait out a paging webhook that is down."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from serving.kb import DEFAULT_MIN_SCORE, KnowledgeBase, search_text
from serving.policy import decide, decide_many
from serving.routing import PolicyRouter, load_routing_policy, route_all
from serving.schemas import TaskPrediction, TicketIn, answer_json
from training.sample import generate_tickets

QUERIES = [
    "pasword resett, the e-mail never arrives",
    "",  # nothing to search with
    "   ",
    "zzzz qqqq",  # no known n-gram
    "where is my bill? I was charged twice on card 4111 1111 1111 1111",
    "Cannot log in since this morning — déjà vu",
    "export tickets to csv",
    "refund not received",
]


@pytest.fixture(scope="module")
def shipped() -> KnowledgeBase:
    return KnowledgeBase.build()


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    frame = generate_tickets(60, seed=11)
    return [f"{s}\n{b}" for s, b in zip(frame.subject, frame.body)]


# ---------------------------------------------------------------- help-article search


def test_search_many_answers_each_text_as_search_does(shipped, sample_texts):
    texts = QUERIES + sample_texts
    batched = shipped.search_many(texts, k=3)
    assert batched == [shipped.search(text, k=3) for text in texts]
    assert any(batched) and not batched[1] and not batched[3]
    assert shipped.search_many([], k=3) == [] and shipped.search_many(QUERIES, k=0) == [[] for _ in QUERIES]


def test_batched_scores_are_scikit_learns_cosine_similarities(shipped, sample_texts):
    """The reference: scikit-learn's own transform of each query, times the document matrix."""
    texts = [t for t in QUERIES + sample_texts if search_text(t, shipped.synonyms)]
    queries = [search_text(t, shipped.synonyms) for t in texts]
    reference = (0.45 * (shipped._word.transform(queries) @ shipped._word_matrix).toarray()
                 + 0.55 * (shipped._char.transform(queries) @ shipped._char_matrix).toarray())
    for text, expected in zip(texts, reference):
        hits = shipped.search(text, k=len(shipped))
        wanted = sorted((i for i in range(len(shipped)) if expected[i] >= DEFAULT_MIN_SCORE + 1e-6),
                        key=lambda i: -expected[i])
        assert {h.id for h in hits} >= {shipped.articles[i].id for i in wanted}
        for hit in hits:
            index = next(i for i, a in enumerate(shipped.articles) if a.id == hit.id)
            assert hit.score == pytest.approx(expected[index], abs=1e-4)


def test_per_word_character_counts_equal_the_analyzers(shipped, sample_texts):
    fast = shipped._char_query
    for text in QUERIES + sample_texts:
        query = search_text(text, shipped.synonyms)
        vocabulary = shipped._char.vocabulary_
        expected = Counter(vocabulary[g] for g in shipped._char.build_analyzer()(query) if g in vocabulary)
        indices, counts = fast._counts_by_word(query)
        assert list(indices) == sorted(expected) and dict(zip(indices.tolist(), counts.tolist())) == expected


def test_a_large_index_multiplies_sparse_by_sparse_with_the_same_answers(shipped, sample_texts, monkeypatch):
    import serving.kb as kb

    monkeypatch.setattr(kb, "_DENSE_MAX_VALUES", 10)
    sparse = KnowledgeBase(shipped.articles, shipped.synonyms)
    assert not isinstance(sparse._char_query._documents, np.ndarray)
    for mine, theirs in zip(sparse.search_many(QUERIES + sample_texts), shipped.search_many(QUERIES + sample_texts)):
        assert [h.id for h in mine] == [h.id for h in theirs]
        assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], abs=1e-4)


# ---------------------------------------------------------------- routing a batch


def _predictions(rng: random.Random) -> dict[str, TaskPrediction]:
    answers = {}
    for task, labels in (("urgency", ["critical", "high", "medium", "low"]),
                         ("category", ["billing", "technical", "account", "shipping", "other"]),
                         ("sentiment", ["negative", "neutral", "positive"])):
        weights = [rng.random() ** 3 for _ in labels]
        probabilities = {label: w / sum(weights) for label, w in zip(labels, weights)}
        label = max(probabilities, key=probabilities.get)
        answers[task] = TaskPrediction(label=label, confidence=probabilities[label], needs_review=False,
                                       probabilities=probabilities, top_features=[], truncated=False,
                                       model_name="m", model_version="1")
    return answers


@pytest.mark.parametrize("now", [datetime(2026, 1, 24, 3, tzinfo=UTC),  # Saturday night: acknowledgements
                                 datetime(2026, 1, 20, 10, tzinfo=UTC)])  # a Tuesday morning
def test_a_routed_batch_equals_routing_ticket_by_ticket(shipped, now):
    frame = generate_tickets(120, seed=3)
    tickets = [TicketIn(id=str(row.id), subject=row.subject, body=row.body,
                        customer_tier=row.customer_tier if isinstance(row.customer_tier, str) else None,
                        customer_timezone=row.customer_timezone if isinstance(row.customer_timezone, str) else None,
                        created_at=None)
               for row in frame.itertuples()]
    rng = random.Random(5)
    predictions = [_predictions(rng) for _ in tickets]
    policy = load_routing_policy().policy
    one_by_one = [decide(policy, t, p, now, escalate=False, search=lambda text: shipped.search(text, k=3))
                  for t, p in zip(tickets, predictions)]
    batched = decide_many(policy, tickets, predictions, now, escalate=False,
                          search_many=lambda texts: shipped.search_many(texts, k=3))
    assert batched == one_by_one
    router = PolicyRouter(policy, search=lambda text: shipped.search(text, k=3), clock=lambda: now,
                          search_many=lambda texts: shipped.search_many(texts, k=3))
    assert route_all(router, tickets, predictions) == [router.route(t, p) for t, p in zip(tickets, predictions)]
    if now.weekday() == 5:
        acknowledged = [r.acknowledgement for r in batched if r.acknowledgement is not None]
        assert acknowledged and any(a.articles for a in acknowledged)


def test_a_router_with_only_a_single_search_still_routes_batches():
    policy = load_routing_policy().policy
    now = datetime(2026, 1, 24, 3, tzinfo=UTC)
    router = PolicyRouter(policy, search=lambda text: [], clock=lambda: now)
    ticket = TicketIn(id="T-1", subject="Invoice", body="I need a copy of my invoice")
    predictions = _predictions(random.Random(1))
    assert router.route_many([ticket], [predictions]) == [router.route(ticket, predictions)]


# ---------------------------------------------------------------- the recorder


def _served(i: int):
    from serving.schemas import PredictionOut, Routing

    ticket = TicketIn(id=f"T-{i}", subject="Refund", body=f"Card 4111 1111 1111 1111 charged twice ({i})",
                      created_at="2026-01-05T02:08:17+01:00", customer_timezone="Europe/Berlin")
    answer = PredictionOut(prediction_id=f"p{i}", ticket_id=ticket.id, predictions=_predictions(random.Random(i)),
                           routing=Routing(queue="billing", priority="P3", reasons=["category"], policy="default"))
    return ticket, answer


def test_an_unvalidated_record_equals_the_validated_one():
    from store_helpers import prediction_record
    from store import PredictionRecord

    ticket, answer = _served(1)
    fast = prediction_record(ticket, answer, served_at=1_767_575_297.0)
    assert PredictionRecord.model_validate(fast.model_dump()) == fast
    assert fast.model_dump() == PredictionRecord(**fast.model_dump()).model_dump()


class _CountingStore:
    """The real store's writer, counting its transactions."""

    def __init__(self, store):
        self.store, self.batches = store, []

    def record_predictions(self, records):
        records = list(records)
        self.batches.append(len(records))
        return self.store.record_predictions(records)


def test_a_trickle_of_predictions_shares_transactions(tmp_path):
    from serving.recorder import InProcessWriter, PredictionRecorder
    from store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    counting = _CountingStore(InProcessWriter(store))
    recorder = PredictionRecorder(counting, linger_s=0.3).start()
    try:
        for i in range(10):
            ticket, answer = _served(i)
            recorder.submit([ticket], [answer_json(answer)])
            time.sleep(0.005)
        assert recorder.flush(5)
        assert sum(counting.batches) == 10 and len(counting.batches) <= 3, counting.batches
        assert store.prediction_count() == 10
    finally:
        recorder.stop()


def test_flush_does_not_wait_for_the_linger(tmp_path):
    from serving.recorder import InProcessWriter, PredictionRecorder
    from store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    recorder = PredictionRecorder(InProcessWriter(store), linger_s=30).start()
    try:
        ticket, answer = _served(1)
        recorder.submit([ticket], [answer_json(answer)])
        started = time.monotonic()
        assert recorder.flush(5) and time.monotonic() - started < 2
        assert store.prediction_count() == 1
    finally:
        recorder.stop()


# ---------------------------------------------------------------- shutdown with the pager down


def test_closing_the_pager_is_capped_and_records_every_unsent_page(tmp_path):
    import json
    import socket

    from serving.paging import BackgroundPager, PageRequest, Pager

    with socket.socket() as probe:  # a port nobody listens on: every attempt fails at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "failures.jsonl"
    pager = BackgroundPager(Pager(f"http://127.0.0.1:{port}/hook", timeout=1, max_attempts=4, backoff=10,
                                  failure_log=log))
    futures = [pager.submit(PageRequest(ticket_id=f"T-{i}", summary="P1 outage")) for i in range(3)]
    time.sleep(0.3)  # the first page has failed once and waits 10 s before its retry
    started = time.monotonic()
    pager.close(wait=True, timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert futures[0].result(timeout=3).delivered is False
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(entry["ticket_id"] for entry in logged) == ["T-0", "T-1", "T-2"]
    assert any("shutting down" in entry["error"] for entry in logged)
    assert sum("shut down before its turn" in entry["error"] for entry in logged) == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("nightdesk-pager")]


def test_a_batch_the_store_refuses_is_counted_dropped_not_written(tmp_path):
    from serving.recorder import PredictionRecorder

    class Refusing:
        def record_predictions(self, records):
            raise RuntimeError("a bug, not an outage")

    recorder = PredictionRecorder(Refusing(), linger_s=0).start()
    try:
        ticket, answer = _served(1)
        recorder.submit([ticket], [answer_json(answer)])
        assert recorder.flush(5)
        assert (recorder.written, recorder.dropped, recorder.failing) == (0, 1, False)
    finally:
        recorder.stop()
