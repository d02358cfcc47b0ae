"""The HTTP API in-process (BentoML ``to_asgi``) against champions trained on the generated sample."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from features.predictor import to_model_input
from features.schema import TASKS
from serving.models import MissingModel, ModelSet


def test_predict_answers_every_task_with_routing(client, payloads):
    response = client.post("/predict", json=payloads[0])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer["predictions"]) == set(TASKS) and answer["missing_tasks"] == []
    assert len(answer["prediction_id"]) == 32 and answer["ticket_id"] == payloads[0]["id"]
    for task, prediction in answer["predictions"].items():
        assert prediction["label"] in prediction["probabilities"]
        assert prediction["confidence"] == max(prediction["probabilities"].values())
        assert prediction["model_name"] == f"nightdesk-{task}" and prediction["model_version"] == "1"
    assert answer["routing"]["priority"] in {"P1", "P2", "P3", "P4"} and answer["routing"]["reasons"]


def test_prediction_ids_are_unique(client, payloads):
    ids = {client.post("/predict", json=payloads[1]).json()["prediction_id"] for _ in range(3)}
    assert len(ids) == 3


def test_served_predictions_equal_the_registered_models_in_process(client, payloads, trained_registry):
    served = client.post("/predict_batch", json={"tickets": payloads}).json()["predictions"]
    single = client.post("/predict", json=payloads[5]).json()
    mlflow.set_tracking_uri(trained_registry.settings().tracking_uri)
    mlflow.set_registry_uri(trained_registry.settings().registry_uri)
    frame = to_model_input(pd.DataFrame(payloads))
    for task in TASKS:
        expected = mlflow.pyfunc.load_model(f"models:/nightdesk-{task}@champion").predict(frame)
        for row, answer in zip(expected.to_dict(orient="records"), served):
            got = answer["predictions"][task]
            assert got["label"] == row["label"]
            assert got["probabilities"] == row["probabilities"]  # exactly, to the last digit
            assert got["confidence"] == row["confidence"]
            assert got["needs_review"] == row["needs_review"] and got["truncated"] == row["truncated"]
            assert got["top_features"] == list(row["top_features"])
        assert single["predictions"][task]["probabilities"] == expected.iloc[5]["probabilities"]


def test_batch_keeps_the_input_order(client, payloads):
    answers = client.post("/predict_batch", json={"tickets": payloads[:7]}).json()["predictions"]
    assert [a["ticket_id"] for a in answers] == [p["id"] for p in payloads[:7]]


def test_models_lists_versions_dates_and_metrics(client):
    response = client.get("/models")
    assert response.status_code == 200
    models = {m["task"]: m for m in response.json()["models"]}
    assert set(models) == set(TASKS)
    for task, info in models.items():
        assert info["status"] == "loaded" and info["alias"] == "champion" and info["version"] == "1"
        assert info["trained_at"] and {"accuracy", "macro_f1"} <= set(info["metrics"])


def test_probes_and_openapi(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
    assert {"/predict", "/predict_batch", "/models"} <= set(spec["paths"])
    assert "get" in spec["paths"]["/models"]


def test_long_text_is_truncated_and_flagged_not_refused(client):
    response = client.post("/predict", json={"id": "T-long", "body": "refund please " * 5000})
    assert response.status_code == 200
    assert all(p["truncated"] for p in response.json()["predictions"].values())


BAD_BODIES = [
    (b'{"id": "T-1", "subject": "", "body": "  "}', "body"),
    (b'{"id": 1, "body": "x"}', "id"),
    (b'{"id": "T-1", "body": "x", "urgency": "high"}', "urgency"),
    (b'{"id": "T-1", "body": "x", "customer_timezone": "Nowhere/City"}', "customer_timezone"),
    (b'{"id": "T-1", "body": "x", "created_at": "2026-01-05 02:08"}', "created_at"),
    (b'{"id": "T-1", "body": "caf\xe9"}', "json_invalid"),
    (b'{"id": "T-1", "body": ', "json_invalid"),
    (json.dumps({"id": "T-1", "body": "x" * 300_000}).encode(), "body"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES)
def test_bad_tickets_get_a_4xx_naming_the_field(client, body, named):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert named in response.text


def test_bad_batches_are_refused_naming_the_field(client, payloads):
    assert "tickets" in client.post("/predict_batch", json={"tickets": []}).text
    bad = client.post("/predict_batch", json={"tickets": [payloads[0], {"id": "T-2"}]})
    assert bad.status_code == 400 and '"tickets",1,"body"' in bad.text.replace(" ", "")
    assert client.post("/predict_batch", json=payloads[:2]).status_code == 400


def test_batch_over_the_limit_and_oversized_requests_are_refused(service, client, payloads):
    service.settings = service.settings.model_copy(update={"serving_max_batch_size": 3})
    over = client.post("/predict_batch", json={"tickets": payloads[:4]})
    assert over.status_code == 400 and "the limit is 3" in over.text
    huge = client.post("/predict", content=b'{"id": "T-1", "body": "' + b"x" * (17 * 1024 * 1024) + b'"}',
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413


def test_bad_requests_leave_the_service_intact(client, payloads):
    before = client.post("/predict_batch", json={"tickets": payloads[:5]}).json()["predictions"]
    for body, _ in BAD_BODIES:
        client.post("/predict", content=body, headers={"content-type": "application/json"})
    after = client.post("/predict_batch", json={"tickets": payloads[:5]}).json()["predictions"]
    assert [a["predictions"] for a in after] == [b["predictions"] for b in before]


def test_a_task_without_champion_is_reported_and_skipped(client, service, payloads):
    held = service.models.snapshot()
    service.models = ModelSet(TASKS, lambda task, _: held[task] if task != "sentiment" else
                             MissingModel(task, "nightdesk-sentiment", "champion", "no version has the alias @champion"))
    service.models.load()
    assert client.get("/readyz").status_code == 200
    answer = client.post("/predict", json=payloads[0]).json()
    assert set(answer["predictions"]) == {"urgency", "category"} and answer["missing_tasks"] == ["sentiment"]
    models = {m["task"]: m for m in client.get("/models").json()["models"]}
    assert models["sentiment"]["status"] == "missing" and "champion" in models["sentiment"]["reason"]


def test_no_model_at_all_is_not_ready_but_still_answers(client, service, payloads):
    service.models = ModelSet(TASKS, lambda task, _: MissingModel(task, f"nightdesk-{task}", "champion", "none"))
    service.models.load()
    assert client.get("/readyz").status_code == 503
    answer = client.post("/predict", json=payloads[0])
    assert answer.status_code == 200 and answer.json()["routing"]["queue"] == "triage"


def test_the_mlflow_loader_reports_a_missing_champion(sentiment_missing_home):
    from serving.models import MlflowLoader
    from serving.settings import ServingSettings

    settings = ServingSettings(_env_file=None, home=sentiment_missing_home, MLFLOW_TRACKING_URI=None,
                               MLFLOW_REGISTRY_URI=None)
    slot = MlflowLoader(settings)("sentiment", None)
    assert isinstance(slot, MissingModel) and "@champion" in slot.reason
    assert MlflowLoader(settings)("urgency", None).version == "1"


def test_an_empty_batch_is_refused_naming_the_field(client):
    response = client.post("/predict_batch", json={"tickets": []})
    assert response.status_code == 400
    assert "tickets" in response.text and "at least 1 item" in response.text
