"""A real PostgreSQL outage: the server is stopped and started again under a live store and recorder.

Runs on a private server (``.ci/postgres``) so stopping it cannot disturb other tests; like the
other PostgreSQL tests it runs only where NIGHTDESK_TEST_POSTGRES_URL says PostgreSQL is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from serving.recorder import InProcessWriter, PredictionRecorder
from serving.schemas import PredictionOut, Routing, TaskPrediction, TicketIn, answer_json
from store import CorrectionIn, Store, StoreUnavailable

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT / ".ci" / "postgres"



def served(i: int) -> tuple[TicketIn, PredictionOut]:
    ticket = TicketIn(id=f"T-{i}", body=f"Cannot log in ({i})")
    category = TaskPrediction(label="billing", confidence=0.7, needs_review=True,
                              probabilities={"billing": 0.7, "access": 0.3}, top_features=[], truncated=False,
                              model_name="nightdesk-category", model_version="1")
    return ticket, PredictionOut(prediction_id=f"p{i}", ticket_id=ticket.id, predictions={"category": category},
                                 routing=Routing(queue="billing", priority="P3", reasons=[], policy="test"))


@pytest.fixture
def private_postgres():
    """(url, stop, start) of a PostgreSQL server of this test's own."""
    if not os.environ.get("NIGHTDESK_TEST_POSTGRES_URL"):
        pytest.skip("NIGHTDESK_TEST_POSTGRES_URL is not set (.ci/run starts PostgreSQL and sets it)")
    folder = tempfile.mkdtemp(prefix="nightdesk-pg-")  # not under pytest's tmp: the postgres user must reach it

    def run(action: str) -> str:
        return subprocess.run([str(SCRIPT), action, folder], check=True, capture_output=True, text=True).stdout.strip()

    url = run("start")
    try:
        yield url, lambda: run("stop"), lambda: run("start")
    finally:
        run("stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgres_outage_buffers_predictions_refuses_corrections_and_recovers(private_postgres):
    url, stop, start = private_postgres
    store = Store(url)
    recorder = PredictionRecorder(InProcessWriter(store), retry_min_s=0.05, retry_max_s=0.2).start()
    try:
        ticket, answer = served(1)
        assert recorder.submit([ticket], [answer_json(answer)]) and recorder.flush(10)

        stop()
        with pytest.raises(StoreUnavailable):
            store.add_corrections([CorrectionIn(prediction_id="p1", task="category", label="access",
                                                agent_id="a")])
        more = [served(i) for i in range(2, 6)]
        recorder.submit([t for t, _ in more], [answer_json(a) for _, a in more])
        assert not recorder.flush(1) and recorder.failing

        assert start() == url  # the same server, address and data
        assert recorder.flush(10) and not recorder.failing
        assert store.prediction_count() == 5
        assert store.corrections_frame().empty  # the refused correction left nothing behind
        [fixed] = store.add_corrections([CorrectionIn(prediction_id="p1", task="category", label="access",
                                                      agent_id="a")])
        assert fixed.status == "created"
    finally:
        recorder.stop(timeout_s=1)
        store.close()
