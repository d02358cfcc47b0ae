"""The store writer process: stores what the store itself would, keeps StoreUnavailable's meaning, restarts."""

from __future__ import annotations

import io
import time

import pytest
from store_helpers import UNREACHABLE, prediction_record
from test_recorder import served

from serving.recorder import PredictionRecorder, served_predictions
from serving.schemas import answer_json
from serving.store_writer import StoreWriterProcess
from serving.worker_process import WorkerProcessError, read_frame, serve, write_frame
from store import Store, StoreUnavailable


def rows(ids):
    """Served predictions, as the recorder sends them to the writer."""
    return [item for i in ids for item in served_predictions([served(i)[0]], [answer_json(served(i)[1])],
                                                             served_at=1_767_575_297.0 + i)]


@pytest.fixture
def writer(store_url):
    process = StoreWriterProcess(store_url, restart_interval_s=0).start()
    yield process
    process.close()


def test_the_writer_process_stores_what_the_store_itself_would(store_url, writer, tmp_path):
    assert writer.record_predictions(rows([1, 2, 3])) == 3
    assert writer.record_predictions(rows([2, 3, 4])) == 1  # ids already stored are skipped
    direct = Store(f"sqlite:///{tmp_path / 'direct.db'}")
    direct.record_predictions([prediction_record(*served(i), served_at=1_767_575_297.0 + i) for i in [1, 2, 3, 4]])

    def content(store):
        return sorted((p.model_dump(exclude={"created_at"}) for p in store.recent_predictions()),
                      key=lambda p: p["prediction_id"])

    stored = content(Store(store_url))
    assert stored == content(direct)
    assert all("4111" not in p["body"] and "<CARD>" in p["body"] for p in stored)  # masked in the child


def test_an_unreachable_database_is_store_unavailable_to_the_recorder():
    writer = StoreWriterProcess(UNREACHABLE).start()
    try:
        with pytest.raises(StoreUnavailable):
            writer.record_predictions(rows([1]))
        recorder = PredictionRecorder(writer, retry_min_s=0.05).start()
        ticket, answer = served(1)
        assert recorder.submit([ticket], [answer_json(answer)]) is True  # not known to fail yet
        deadline = time.monotonic() + 30
        while not recorder.failing and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.failing and recorder.backlog == 1  # buffered, not dropped
        recorder.stop(timeout_s=0.1)
    finally:
        writer.close()


def test_a_writer_that_died_is_started_again_and_nothing_is_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    Store(url)
    writer = StoreWriterProcess(url, restart_interval_s=0.5).start()
    recorder = PredictionRecorder(writer, retry_min_s=0.05, linger_s=0).start()
    try:
        writer.worker._process.kill()
        writer.worker._process.wait()
        pairs = [served(i) for i in (1, 2)]
        recorder.submit([t for t, _ in pairs], [answer_json(a) for _, a in pairs])
        assert recorder.flush(30), "the recorder never wrote after the writer died"
        assert Store(url).prediction_count() == 2 and recorder.dropped == 0
    finally:
        recorder.stop()
        writer.close()
    assert not writer.worker.alive


def test_the_child_loop_answers_a_handler_error_with_its_kind():
    def handle(request):
        if request == "down":
            raise StoreUnavailable("database is down")
        return request * 2

    inbox, outbox = io.BytesIO(), io.BytesIO()
    for request_id, request in enumerate(["ab", "down", "c"]):
        write_frame(inbox, (request_id, request))
    inbox.seek(0)
    serve(handle, inbox, outbox)
    outbox.seek(0)
    answers = [read_frame(outbox) for _ in range(3)]
    assert answers[0] == (0, True, "abab") and answers[2] == (2, True, "cc")
    assert answers[1][:2] == (1, False) and answers[1][2][0] == "StoreUnavailable"
    assert read_frame(outbox) is None


def test_a_closed_writer_refuses_calls():
    writer = StoreWriterProcess(UNREACHABLE).start()
    writer.close()
    with pytest.raises(WorkerProcessError, match="closed"):
        writer.worker.call([])
