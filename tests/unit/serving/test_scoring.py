"""The service's scoring path: online predictors equal ``predict_frame``; the batcher merges, isolates, stops."""

from __future__ import annotations

import asyncio
import threading

import pandas as pd
import pytest

from features.online import (MEMO_ROWS, OnlinePredictor, calibrated_probabilities, predict_tasks,
                             predict_tasks_for_rows, temperature_softmax)
from features.predictor import to_model_input
from serving.schemas import TicketIn
from serving.scoring import TicketBatcher

ODD_TICKETS = [
    {"id": "odd-1", "subject": "", "body": "refund " * 4000 + "now"},  # over the model's text limit
    {"id": "odd-2", "subject": "Login broken", "body": "x", "channel": "", "customer_tier": "ENTERPRISE "},
    {"id": "odd-3", "body": "<p>Mail me at jane@example.com or +44 20 7946 0958</p> card 4111 1111 1111 1111"},
    {"id": "odd-4", "subject": "Überweisung fehlgeschlagen 😡", "body": "Bitte sofort prüfen!!!",
     "created_at": "2026-01-05T23:59:59-11:00", "customer_timezone": "Pacific/Kiritimati"},
    {"id": "odd-5", "subject": "a", "body": "b", "channel": "carrier pigeon", "language": "xx",
     "created_at": "2026-03-29T01:30:00+00:00", "customer_timezone": "Europe/London"},
    {"id": "odd-6", "subject": "zzzzqqq unseen words only", "body": "qqqq"},
]


@pytest.fixture(scope="module")
def models(trained_registry):
    from serving.models import load_model_set
    from serving.settings import ServingSettings

    with pytest.MonkeyPatch.context() as monkeypatch:
        trained_registry.env(monkeypatch)
        yield load_model_set(ServingSettings(_env_file=None)).loaded()


@pytest.fixture(scope="module")
def rows(payloads) -> list[dict]:
    tickets = payloads + ODD_TICKETS
    tickets += tickets[:5]  # repeated tickets (and metadata) within one call
    return [TicketIn.model_validate(p).as_row() for p in tickets]


def _expected(models, rows) -> dict[str, list[dict]]:
    frame = to_model_input(pd.DataFrame.from_records(rows))
    answers = {}
    for task, model in models.items():
        records = model.classifier.predict_frame(frame).to_dict("records")
        answers[task] = [{**r, "needs_review": bool(r["needs_review"]), "truncated": bool(r["truncated"]),
                          "top_features": list(r["top_features"])} for r in records]
    return answers


@pytest.mark.parametrize("size", [1, 3, 51])
def test_online_answers_equal_predict_frame_exactly(models, rows, size):
    online = {task: model.online for task, model in models.items()}
    assert all(isinstance(p, OnlinePredictor) for p in online.values())
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        expected = _expected(models, chunk)
        assert predict_tasks_for_rows(online, chunk) == expected  # floats compared exactly
        assert predict_tasks(online, to_model_input(pd.DataFrame.from_records(chunk))) == expected
    long_one = next(r for r in rows if r["body"].startswith("refund refund"))
    assert all(answer[0]["truncated"] for answer in predict_tasks_for_rows(online, [long_one]).values())


@pytest.mark.parametrize("size", [2, 51])
def test_texts_counted_one_by_one_or_together_give_the_same_answers(models, rows, size, monkeypatch):
    import features.online

    online = {task: model.online for task, model in models.items()}
    chunk = rows[-size:]
    monkeypatch.setattr(features.online, "BATCH_COUNTING_MIN_TICKETS", 1)
    together = predict_tasks_for_rows(online, chunk)
    monkeypatch.setattr(features.online, "BATCH_COUNTING_MIN_TICKETS", 10**9)
    assert predict_tasks_for_rows(online, chunk) == together == _expected(models, chunk)


def test_no_tickets_give_no_answers(models, rows):
    online = {task: model.online for task, model in models.items()}
    empty = to_model_input(pd.DataFrame.from_records(rows[:2])).iloc[:0]
    assert predict_tasks(online, empty) == {task: [] for task in models}


def test_the_row_memo_starts_afresh_when_full_and_answers_stay_the_same(models, rows, monkeypatch):
    import features.online

    online = {task: OnlinePredictor.build(model.classifier) for task, model in models.items()}
    monkeypatch.setattr(features.online, "MEMO_ROWS", 3)
    expected = _expected(models, rows[:20])
    assert predict_tasks_for_rows(online, rows[:20]) == expected
    assert predict_tasks_for_rows(online, rows[:20]) == expected
    assert MEMO_ROWS > 1000


def test_a_model_whose_features_the_online_path_would_get_wrong_is_not_given_one(models, monkeypatch):
    import features.online

    assert OnlinePredictor.build(models["urgency"].classifier) is not None
    original = features.online._Tfidf.transform

    def drifted(self, texts, shared):  # e.g. a feature step added to the pipeline but not here
        data, indices, indptr, width = original(self, texts, shared)
        return data * 2, indices, indptr, width

    monkeypatch.setattr(features.online._Tfidf, "transform", drifted)
    assert OnlinePredictor.build(models["urgency"].classifier) is None


def test_models_without_an_online_form_use_their_own_predict_frame(models, rows):
    class OtherKind:  # e.g. a transformer model: anything with predict_frame
        def __init__(self, inner):
            self.inner = inner

        def predict_frame(self, frame):
            return self.inner.predict_frame(frame)

    assert OnlinePredictor.build(OtherKind(models["urgency"].classifier)) is None
    mixed = {"urgency": OtherKind(models["urgency"].classifier), "category": models["category"].online}
    expected = _expected({t: models[t] for t in mixed}, rows[:4])
    assert predict_tasks_for_rows(mixed, rows[:4]) == expected


def _run(coroutine):
    return asyncio.run(coroutine)


class RecordingScorer:
    """Scores a ticket as its id; records each call's tickets; fails on ids starting with 'bad'."""

    def __init__(self, delay_s: float = 0.0):
        self.calls: list[list[str]] = []
        self.delay_s = delay_s
        self.release = threading.Event()

    def __call__(self, tickets):
        self.calls.append([t.id for t in tickets])
        if self.delay_s:
            self.release.wait(self.delay_s)
        if any(t.id.startswith("bad") for t in tickets):
            raise ValueError("cannot score")
        return [f"scored {t.id}" for t in tickets]


def _tickets(*ids: str) -> list[TicketIn]:
    return [TicketIn.model_construct(id=i, subject="s", body="b") for i in ids]


def test_a_lone_request_is_scored_at_once_and_concurrent_ones_share_calls():
    scorer = RecordingScorer(delay_s=0.2)

    async def scenario():
        batcher = TicketBatcher(scorer, max_tickets=8)
        first = asyncio.create_task(batcher.score(_tickets("t0")))
        await asyncio.sleep(0.05)  # t0's call is running; the next requests queue up
        rest = [asyncio.create_task(batcher.score(_tickets(f"t{i}"))) for i in range(1, 11)]
        await asyncio.sleep(0.01)
        scorer.release.set()
        answers = await asyncio.gather(first, *rest)
        batcher.close()
        return answers

    answers = _run(scenario())
    assert answers == [[f"scored t{i}"] for i in range(11)]
    assert scorer.calls[0] == ["t0"]
    assert scorer.calls[1] == [f"t{i}" for i in range(1, 9)]  # up to max_tickets per call
    assert scorer.calls[2] == ["t9", "t10"]


def test_a_big_request_is_scored_whole_and_keeps_its_order():
    scorer = RecordingScorer()

    async def scenario():
        batcher = TicketBatcher(scorer, max_tickets=4)
        answer = await batcher.score(_tickets(*[f"b{i}" for i in range(10)]))
        batcher.close()
        return answer

    assert _run(scenario()) == [f"scored b{i}" for i in range(10)]
    assert scorer.calls == [[f"b{i}" for i in range(10)]]


def test_a_failing_request_does_not_fail_the_others_batched_with_it():
    scorer = RecordingScorer(delay_s=0.2)

    async def scenario():
        batcher = TicketBatcher(scorer, max_tickets=8)
        first = asyncio.create_task(batcher.score(_tickets("t0")))
        await asyncio.sleep(0.05)
        good = asyncio.create_task(batcher.score(_tickets("t1")))
        bad = asyncio.create_task(batcher.score(_tickets("bad2")))
        also_good = asyncio.create_task(batcher.score(_tickets("t3")))
        await asyncio.sleep(0.01)
        scorer.release.set()
        results = await asyncio.gather(first, good, bad, also_good, return_exceptions=True)
        batcher.close()
        return results

    first, good, bad, also_good = _run(scenario())
    assert (first, good, also_good) == (["scored t0"], ["scored t1"], ["scored t3"])
    assert isinstance(bad, ValueError)


def test_a_caller_that_gave_up_is_skipped_and_close_fails_waiting_requests():
    scorer = RecordingScorer(delay_s=5)

    async def scenario():
        batcher = TicketBatcher(scorer, max_tickets=8)
        running = asyncio.create_task(batcher.score(_tickets("t0")))
        await asyncio.sleep(0.05)
        abandoned = asyncio.create_task(batcher.score(_tickets("gone")))
        waiting = asyncio.create_task(batcher.score(_tickets("t2")))
        await asyncio.sleep(0.01)
        abandoned.cancel()
        batcher.close()  # shutdown: queued requests get an error at once, nothing hangs
        scorer.release.set()
        results = await asyncio.gather(running, waiting, return_exceptions=True)
        with pytest.raises(RuntimeError, match="shutting down"):
            await batcher.score(_tickets("late"))
        return results

    running, waiting = _run(scenario())
    assert running == ["scored t0"]  # the call in progress still finishes
    assert isinstance(waiting, RuntimeError)
    assert ["gone"] not in scorer.calls


@pytest.mark.parametrize("method, classes", [("temperature", 4), ("temperature", 2), ("sigmoid", 4)])
def test_calibrated_probabilities_equal_predict_proba_value_for_value(method, classes):
    # The shortcut covers temperature scaling with 3+ classes; anything else takes predict_proba itself.
    import numpy as np
    import scipy.sparse as sp
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    X = sp.random(400, 300, density=0.05, format="csr", dtype=np.float32, random_state=1)
    y = np.random.default_rng(0).integers(0, classes, 400)
    classifier = CalibratedClassifierCV(LinearSVC(), method=method, cv=3, ensemble=False).fit(X, y)
    for rows in (slice(0, 1), slice(0, 37), slice(0, 400)):
        expected, got = classifier.predict_proba(X[rows]), calibrated_probabilities(classifier, X[rows])
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_temperature_softmax_equals_the_calibrators_predict_also_for_rows_that_look_like_probabilities():
    import numpy as np
    from sklearn.calibration import _TemperatureScaling

    calibrator = _TemperatureScaling()
    calibrator.beta_ = 0.7312
    rng = np.random.default_rng(3)
    decision_values = rng.normal(0, 2, size=(50, 4))
    probability_like = rng.dirichlet(np.ones(4), size=50)  # in [0, 1], rows summing to 1: read as probabilities
    for scores in (decision_values, probability_like, np.vstack([decision_values, probability_like])):
        expected = calibrator.predict(scores)
        got = temperature_softmax(calibrator.beta_, scores)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


@pytest.mark.parametrize("rows", [1, 7])
def test_joined_blocks_equal_scipy_hstack_entry_for_entry(rows):
    # Row by row, block after block, each block's entries in their own (not necessarily sorted) order;
    # empty rows, an empty block and mixed dtypes included.
    import numpy as np
    import scipy.sparse as sp

    from features.online import _join_blocks

    rng = np.random.default_rng(rows)
    matrices = [sp.random(rows, 40, density=0.3, format="csr", dtype=np.float32, random_state=1),
                sp.csr_matrix((rows, 5), dtype=np.float32),
                sp.csr_matrix(rng.random((rows, 9)) * (np.arange(rows) % 3 != 1)[:, None])]  # empty rows
    matrices[0].indices[:] = rng.permutation(matrices[0].indices)  # unsorted within rows is kept as is
    blocks = [(m.data, m.indices, m.indptr, m.shape[1]) for m in matrices]
    data, indices, indptr, width = _join_blocks(blocks)
    expected = sp.hstack(matrices, format="csr")
    assert width == expected.shape[1] and data.dtype == expected.dtype
    assert np.array_equal(indptr, expected.indptr)
    assert np.array_equal(indices, expected.indices) and np.array_equal(data, expected.data)
