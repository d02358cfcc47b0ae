"""Recording of served predictions, POST /feedback, GET /feedback/stats and the console's data API,
through the in-process service on a store of each test's own."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from store_helpers import UNREACHABLE, service_store, wait_for

from serving.recorder import InProcessWriter
from store import Store


@pytest.fixture
def live(service, tmp_path):
    with service_store(service, f"sqlite:///{tmp_path / 'store.db'}") as store:
        yield store


def predict(client, payload: dict) -> dict:
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


def other_label(answer: dict, task: str) -> str:
    prediction = answer["predictions"][task]
    return next(label for label in prediction["probabilities"] if label != prediction["label"])


def test_served_predictions_are_recorded_with_masked_text(client, service, live, payloads):
    single = predict(client, {**payloads[0], "body": payloads[0]["body"] + " Reach me at jane.doe@example.com"})
    batch = client.post("/predict_batch", json={"tickets": payloads[1:4]}).json()["predictions"]
    assert single["recorded"] is True and all(a["recorded"] for a in batch)
    assert service.recorder.flush(5)
    stored = {p.prediction_id: p for p in live.recent_predictions()}
    assert set(stored) == {single["prediction_id"], *(a["prediction_id"] for a in batch)}
    record = stored[single["prediction_id"]]
    assert "jane.doe@example.com" not in record.body and "<EMAIL>" in record.body
    assert record.ticket_id == payloads[0]["id"] and record.queue == single["routing"]["queue"]
    assert record.channel == payloads[0]["channel"] and record.customer_timezone == payloads[0]["customer_timezone"]
    assert record.ticket_created_at == datetime.fromisoformat(payloads[0]["created_at"])
    assert record.routing["priority"] == single["routing"]["priority"]
    for task, prediction in single["predictions"].items():
        outcome = record.outcomes[task]
        assert (outcome.label, outcome.probabilities, outcome.model_version) == (
            prediction["label"], prediction["probabilities"], prediction["model_version"])


def test_feedback_takes_one_or_many_corrections_and_is_safe_to_repeat(client, service, live, payloads):
    first, second = predict(client, payloads[0]), predict(client, payloads[1])
    assert service.recorder.flush(5)
    correction = {"prediction_id": first["prediction_id"], "task": "urgency",
                  "label": other_label(first, "urgency"), "agent_id": "agent-7", "reason": "outage"}
    created = client.post("/feedback", json=correction)
    assert created.status_code == 200, created.text
    [result] = created.json()["corrections"]
    assert result["status"] == "created" and result["original_label"] == first["predictions"]["urgency"]["label"]
    repeat = client.post("/feedback", json=correction).json()["corrections"][0]
    assert repeat["status"] == "unchanged" and repeat["id"] == result["id"]
    many = client.post("/feedback", json={"corrections": [
        {**correction, "label": first["predictions"]["urgency"]["label"], "misrouted": True},
        {"ticket_id": second["ticket_id"], "task": "sentiment", "label": other_label(second, "sentiment"),
         "agent_id": "agent-7"},
    ]})
    assert many.status_code == 200, many.text
    assert [c["status"] for c in many.json()["corrections"]] == ["updated", "created"]
    frame = live.corrections_frame()
    assert len(frame) == 2 and set(frame["prediction_id"]) == {first["prediction_id"], second["prediction_id"]}


def test_unknown_prediction_is_404_and_nothing_is_written(client, service, live, payloads):
    answer = predict(client, payloads[0])
    assert service.recorder.flush(5)
    good = {"prediction_id": answer["prediction_id"], "task": "urgency", "label": "low", "agent_id": "a"}
    response = client.post("/feedback", json={"corrections": [good, {**good, "prediction_id": "f" * 32}]})
    assert response.status_code == 404
    assert response.json()["errors"] == [{"index": 1, "prediction_id": "f" * 32}]
    assert client.post("/feedback", json={**good, "prediction_id": None, "ticket_id": "T-none"}).status_code == 404
    assert live.corrections_frame().empty


def test_a_label_the_model_does_not_know_is_422_listing_the_allowed_ones(client, service, live, payloads):
    answer = predict(client, payloads[0])
    assert service.recorder.flush(5)
    base = {"prediction_id": answer["prediction_id"], "agent_id": "a"}
    response = client.post("/feedback", json={"corrections": [
        {**base, "task": "urgency", "label": "low"}, {**base, "task": "category", "label": "not-a-category"}]})
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["index"] == 1 and problem["field"] == "label"
    assert problem["allowed"] == list(answer["predictions"]["category"]["probabilities"])
    assert "not-a-category" in response.json()["detail"]
    assert live.corrections_frame().empty


@pytest.mark.parametrize(("body", "named"), [
    ({"prediction_id": "x", "task": "urgency", "agent_id": "a"}, "label"),
    ({"task": "urgency", "label": "low", "agent_id": "a"}, "prediction_id or ticket_id"),
    ({"prediction_id": "x", "task": "urgency", "label": "low", "agent_id": "a", "urgency": "x"}, "urgency"),
    ({"prediction_id": "x", "task": "urgency", "label": "low", "agent_id": ""}, "agent_id"),
    ({"corrections": []}, "corrections"),
    ({"corrections": [{"prediction_id": "x", "task": "urgency", "label": "low"}]}, "agent_id"),
    ([1, 2], "body"),
])
def test_bad_corrections_get_a_422_naming_the_field(client, live, body, named):
    response = client.post("/feedback", json=body)
    assert response.status_code == 422, response.text
    assert named in response.text


def test_invalid_json_is_a_4xx(client, live):
    response = client.post("/feedback", content=b'{"task": ', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "json_invalid" in response.text


def test_store_down_feedback_is_503_and_predict_answers_unrecorded_until_it_is_back(client, service, live, payloads):
    down = Store(UNREACHABLE, migrate=False)
    service.store = down
    for method, path, body in (("post", "/feedback", {"prediction_id": "x", "task": "urgency", "label": "low",
                                                      "agent_id": "a"}),
                               ("get", "/feedback/stats", None), ("get", "/console/api/predictions", None)):
        response = client.request(method, path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert int(response.headers["retry-after"]) > 0 and "unavailable" in response.json()["detail"]
    service.store = live

    service.recorder.store = InProcessWriter(down)
    before = predict(client, payloads[0])  # answered at once, whatever the store does
    assert wait_for(lambda: service.recorder.failing)
    during = predict(client, payloads[1])
    assert during["recorded"] is False and during["predictions"]
    assert live.prediction_count() == 0
    service.recorder.store = InProcessWriter(live)  # the database is back
    assert service.recorder.flush(5) and not service.recorder.failing
    recorded = {p.prediction_id for p in live.recent_predictions()}
    assert {before["prediction_id"], during["prediction_id"]} <= recorded
    assert predict(client, payloads[2])["recorded"] is True


def test_fifty_agents_posting_at_once_lose_nothing(client, service, store_url, payloads):
    with service_store(service, store_url) as store:
        answers = client.post("/predict_batch", json={"tickets": payloads[:10]}).json()["predictions"]
        assert service.recorder.flush(10)
        statuses, failures = [], []
        start = threading.Barrier(50)

        def agent(i: int) -> None:
            answer = answers[i % 10]
            start.wait()
            response = client.post("/feedback", json={"corrections": [
                {"prediction_id": answer["prediction_id"], "task": "urgency", "label": other_label(answer, "urgency"),
                 "agent_id": f"agent-{i}"},
                {"prediction_id": answers[0]["prediction_id"], "task": "sentiment",  # all on the same ticket
                 "label": other_label(answers[0], "sentiment"), "agent_id": f"agent-{i}"}]})
            (statuses if response.status_code == 200 else failures).append(response.status_code)

        threads = [threading.Thread(target=agent, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [] and len(statuses) == 50
        frame = store.corrections_frame()
        assert len(frame) == 100 and frame["correction_id"].is_unique
        assert (frame["task"] == "sentiment").sum() == 50


def test_feedback_stats_report_override_rates(client, service, live, payloads):
    answers = [predict(client, p) for p in payloads[:4]]
    assert service.recorder.flush(5)
    client.post("/feedback", json={"prediction_id": answers[0]["prediction_id"], "task": "urgency",
                                   "label": other_label(answers[0], "urgency"), "agent_id": "a"})
    client.post("/feedback", json={"prediction_id": answers[1]["prediction_id"], "task": "urgency",
                                   "label": answers[1]["predictions"]["urgency"]["label"], "agent_id": "a",
                                   "misrouted": True})
    stats = client.get("/feedback/stats").json()
    assert stats["predictions"] == 4 and stats["corrections"] == 2
    urgency = next(r for r in stats["by_task"] if r["task"] == "urgency")
    assert (urgency["predictions"], urgency["overridden"], urgency["misrouted"], urgency["rate"]) == (4, 1, 1, 0.25)
    assert {r["key"] for r in stats["by_model_version"]} == {"1"}
    assert sum(r["predictions"] for r in stats["by_hour"] if r["task"] == "urgency") == 4
    assert sum(r["overridden"] for r in stats["by_class"] if r["task"] == "urgency") == 1


def test_console_api_lists_recent_predictions_with_filters(client, service, live, payloads):
    answers = [predict(client, p) for p in payloads[:6]]
    assert service.recorder.flush(5)
    listed = client.get("/console/api/predictions", params={"limit": 4}).json()["predictions"]
    assert [p["prediction_id"] for p in listed] == [a["prediction_id"] for a in answers[::-1][:4]]
    first = listed[0]["outcomes"]["urgency"]
    assert {"label", "confidence", "needs_review", "probabilities", "model_version"} <= set(first)
    queue = answers[0]["routing"]["queue"]
    by_queue = client.get("/console/api/predictions", params={"queue": queue}).json()["predictions"]
    assert by_queue and all(p["queue"] == queue for p in by_queue)
    review = client.get("/console/api/predictions", params={"task": "category", "only_review": "true"}).json()
    expected = [a["prediction_id"] for a in answers[::-1] if a["predictions"]["category"]["needs_review"]]
    assert [p["prediction_id"] for p in review["predictions"]] == expected
    low = client.get("/console/api/predictions", params={"task": "urgency", "max_confidence": 0.0}).json()
    assert low["predictions"] == []
    for bad in ({"task": "priority"}, {"limit": 0}, {"max_confidence": 2}):
        response = client.get("/console/api/predictions", params=bad)
        assert response.status_code == 422 and next(iter(bad)) in response.text


def test_the_openapi_spec_documents_the_feedback_api_without_dangling_references(client):
    import json
    import re

    spec = client.get("/docs.json").json()
    assert {"/feedback", "/feedback/stats", "/console/api/predictions"} <= set(spec["paths"])
    body = spec["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"prediction_id", "task", "label", "agent_id"} <= set(body["oneOf"][0]["properties"])
    referenced = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert referenced <= set(spec["components"]["schemas"])
