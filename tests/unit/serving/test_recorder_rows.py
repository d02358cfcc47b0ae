"""The store writer's rows, read from the answers' JSON as the client received it, store exactly what the
validated ``PredictionRecord`` path stores: the same masked text, times, outcomes and routing, read back."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from store_helpers import prediction_record

from serving.recorder import ServedPrediction, prediction_rows, rows_of, served_predictions
from serving.routing import PolicyRouter, load_routing_policy
from serving.schemas import BatchOut, PredictionOut, TaskPrediction, TicketIn, answer_json, batch_json
from store import Store

LABELS = {"urgency": ["critical", "high", "medium", "low"], "category": ["billing", "technical", "account"],
          "sentiment": ["negative", "neutral", "positive"]}
SERVED_AT = 1_767_575_297.123456


def _answers(count: int) -> tuple[list[TicketIn], list[PredictionOut]]:
    """Tickets and answers with real policy routings (SLA, acknowledgements, non-ASCII, awkward floats)."""
    rng = random.Random(7)
    router = PolicyRouter(load_routing_policy().policy, clock=lambda: datetime(2026, 1, 24, 3, tzinfo=UTC))
    tickets, answers = [], []
    for i in range(count):
        ticket = TicketIn(id=f"T-{i}", subject=["Refund – déjà vu", "", "Login"][i % 3],
                          body=f"Card 4111 1111 1111 1111 charged twice, mail me at a{i}@example.com ✓",
                          created_at=["2026-01-05T02:08:17+01:00", None][i % 2],
                          customer_timezone=["Europe/Berlin", None, "Asia/Kathmandu"][i % 3],
                          customer_tier=["enterprise", None][i % 2], channel="email", language="de")
        predictions = {}
        for task, labels in LABELS.items():
            weights = [rng.random() ** 5 + 1e-9 for _ in labels]
            probabilities = {label: w / sum(weights) for label, w in zip(labels, weights)}
            label = max(probabilities, key=probabilities.get)
            predictions[task] = TaskPrediction(label=label, confidence=probabilities[label], needs_review=i % 2 == 0,
                                               probabilities=probabilities, top_features=["w"], truncated=False,
                                               model_name=f"nightdesk-{task}", model_version="7")
        answer = PredictionOut(prediction_id=f"p{i}", ticket_id=ticket.id, predictions=predictions,
                               routing=router.route(ticket, predictions))
        tickets.append(ticket)
        answers.append(answer)
    return tickets, answers


def _served(tickets: list[TicketIn], answers: list[PredictionOut]) -> list[ServedPrediction]:
    return served_predictions(tickets, [answer_json(a) for a in answers], SERVED_AT)


def _stored(store: Store) -> list[dict]:
    return [p.model_dump(exclude={"prediction_id"}) for p in
            sorted(store.recent_predictions(limit=1000), key=lambda p: p.prediction_id)]


def test_rows_store_what_validated_records_store(tmp_path, store_url):
    tickets, answers = _answers(30)
    plain, fast = Store(f"sqlite:///{tmp_path / 'plain.db'}"), Store(store_url)
    assert plain.record_predictions([prediction_record(t, a, SERVED_AT) for t, a in zip(tickets, answers)]) == 30
    assert fast.record_predictions(rows_of(_served(tickets, answers))) == 30
    stored = _stored(fast)
    assert stored == _stored(plain)
    assert any(s["routing"].get("acknowledgement") for s in stored) and any(s["routing"].get("sla") for s in stored)
    assert all("4111" not in s["body"] and "@example.com" not in s["body"] for s in stored)  # masked all the same
    # A retry of the same rows is skipped, as for records.
    assert fast.record_predictions(rows_of(_served(tickets, answers))) == 0
    fast.close()


def test_rows_hold_the_same_values_as_the_record():
    tickets, answers = _answers(6)
    for ticket, answer, served in zip(tickets, answers, _served(tickets, answers)):
        record, rows = prediction_record(ticket, answer, SERVED_AT), prediction_rows(served)
        assert rows.prediction["routing"] == record.routing  # unset fields left out at every depth
        assert rows.prediction["queue"] == record.routing["queue"]
        assert rows.prediction["created_at"] == record.created_at
        assert rows.prediction["ticket_created_at"] == record.ticket_created_at
        assert rows.tasks == [{"prediction_id": record.prediction_id, "task": task, **o.model_dump()}
                              for task, o in record.outcomes.items()]  # floats exact through JSON


def test_an_answer_that_cannot_be_read_leaves_the_rest_of_its_batch():
    tickets, answers = _answers(3)
    served = _served(tickets, answers)
    broken = served[1]._replace(answer_json=b"{not json")
    assert [rows.prediction["id"] for rows in rows_of([served[0], broken, served[2]])] == ["p0", "p2"]


def test_the_batch_body_is_the_batch_models_json_made_of_the_answers_json():
    _, answers = _answers(4)
    assert answer_json(answers[0]) == answers[0].model_dump_json().encode()
    for some in (answers[:1], answers):
        assert batch_json([answer_json(a) for a in some]) == BatchOut(predictions=some).model_dump_json().encode()
