"""The background prediction recorder: never blocks the caller, buffers within its bound, retries."""

from __future__ import annotations

import threading

from store_helpers import UNREACHABLE, prediction_record, wait_for

from serving.recorder import InProcessWriter, PredictionRecorder
from serving.schemas import PredictionOut, Routing, TaskPrediction, TicketIn, answer_json
from store import Store


def served(i: int) -> tuple[TicketIn, PredictionOut]:
    ticket = TicketIn(id=f"T-{i}", subject="Refund", body=f"Card 4111 1111 1111 1111 charged twice ({i})",
                      created_at="2026-01-05T02:08:17+01:00", customer_timezone="Europe/Berlin")
    prediction = TaskPrediction(label="billing", confidence=0.8, needs_review=False,
                                probabilities={"billing": 0.8, "access": 0.2}, top_features=["refund"],
                                truncated=False, model_name="nightdesk-category", model_version="3")
    answer = PredictionOut(prediction_id=f"p{i}", ticket_id=ticket.id, predictions={"category": prediction},
                           routing=Routing(queue="billing", priority="P3", reasons=["category"], policy="default"))
    return ticket, answer


def submit(recorder: PredictionRecorder, ids) -> bool:
    pairs = [served(i) for i in ids]
    return recorder.submit([t for t, _ in pairs], [answer_json(a) for _, a in pairs])


def test_a_record_keeps_what_retraining_and_the_console_need():
    ticket, answer = served(1)
    record = prediction_record(ticket, answer, served_at=1_767_575_297.0)
    assert record.ticket_created_at.isoformat() == "2026-01-05T02:08:17+01:00"
    assert record.outcomes["category"].probabilities == {"billing": 0.8, "access": 0.2}
    assert record.routing["queue"] == "billing" and record.routing["priority"] == "P3"
    assert None not in record.routing.values()  # unset policy fields are left out


def test_submit_returns_while_the_database_is_stuck(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    entered, release = threading.Event(), threading.Event()
    original = store.record_predictions

    def stuck(records):
        entered.set()
        release.wait(10)
        return original(records)

    store.record_predictions = stuck
    recorder = PredictionRecorder(InProcessWriter(store)).start()
    submit(recorder, [1])
    assert entered.wait(5)  # the writer is now inside a database call that does not return
    done = threading.Event()
    threading.Thread(target=lambda: (submit(recorder, [2, 3]), done.set())).start()
    assert done.wait(2), "submit waited for the database"
    release.set()
    assert recorder.flush(5) and store.prediction_count() == 3
    [stored] = [p for p in store.recent_predictions() if p.prediction_id == "p1"]
    assert "4111" not in stored.body and "<CARD>" in stored.body
    recorder.stop()


def test_a_full_buffer_drops_the_oldest_and_the_rest_is_written_when_the_store_is_back(tmp_path):
    recorder = PredictionRecorder(InProcessWriter(Store(UNREACHABLE, migrate=False)), buffer_size=3, batch_size=2,
                                  retry_min_s=0.01, retry_max_s=0.05).start()
    assert submit(recorder, [1, 2])  # not known to fail yet
    assert wait_for(lambda: recorder.failing)
    assert not submit(recorder, range(3, 9))
    # Two are held by the writer's pending batch; the buffer kept the newest three.
    assert recorder.dropped == 3 and recorder.backlog == 5
    good = Store(f"sqlite:///{tmp_path / 'store.db'}")
    recorder.store = InProcessWriter(good)
    assert recorder.flush(5) and not recorder.failing
    assert {p.prediction_id for p in good.recent_predictions()} == {"p1", "p2", "p6", "p7", "p8"}
    recorder.stop()


def test_stop_writes_what_is_queued(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    recorder = PredictionRecorder(InProcessWriter(store), batch_size=7).start()
    submit(recorder, range(50))
    recorder.stop(timeout_s=5)
    assert store.prediction_count() == 50 and recorder.written == 50
