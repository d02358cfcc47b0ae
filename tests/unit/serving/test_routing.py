"""Routing policies behind the protocol, and the service's routing fields and /tickets/{id}/reassess."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.policy import ACTIONS
from serving.routing import DefaultRoutingPolicy, PolicyRouter, RoutingPolicy, load_routing_policy
from serving.schemas import TaskPrediction, TicketIn


def _prediction(label: str, confidence: float = 0.9, needs_review: bool = False) -> TaskPrediction:
    return TaskPrediction(label=label, confidence=confidence, needs_review=needs_review,
                          probabilities={label: confidence}, top_features=[], truncated=False,
                          model_name="m", model_version="1")


TICKET = TicketIn(id="T-1", body="x")


def test_queue_follows_a_confident_category_and_priority_follows_urgency():
    routing = DefaultRoutingPolicy().route(TICKET, {"category": _prediction("billing"), "urgency": _prediction("high")})
    assert (routing.queue, routing.priority) == ("billing", "P2")


def test_uncertain_or_missing_category_goes_to_triage():
    policy = DefaultRoutingPolicy()
    assert policy.route(TICKET, {"category": _prediction("billing", 0.3, needs_review=True)}).queue == "triage"
    assert policy.route(TICKET, {}).queue == "triage"
    assert policy.route(TICKET, {}).priority == "P3"


def test_angry_enterprise_customers_go_up_two_levels_but_not_past_p1():
    ticket = TicketIn(id="T-1", body="x", customer_tier="Enterprise")
    low = DefaultRoutingPolicy().route(ticket, {"urgency": _prediction("low"), "sentiment": _prediction("negative", 0.8)})
    assert low.priority == "P2" and len(low.reasons) == 4
    critical = DefaultRoutingPolicy().route(ticket, {"urgency": _prediction("critical"),
                                                     "sentiment": _prediction("negative", 0.8)})
    assert critical.priority == "P1"


def test_weak_negative_sentiment_does_not_raise_priority():
    routing = DefaultRoutingPolicy(negative_confidence=0.9).route(
        TICKET, {"urgency": _prediction("medium"), "sentiment": _prediction("negative", 0.8)})
    assert routing.priority == "P3"


def test_the_default_policy_satisfies_the_protocol():
    policy: RoutingPolicy = DefaultRoutingPolicy()
    assert policy.name == "default"


# ---- the round-the-clock policy behind the protocol, and its HTTP side

SATURDAY = datetime(2026, 1, 24, 12, tzinfo=UTC)
BILLING_MEDIUM = {"urgency": {"label": "medium", "probabilities": {"critical": 0.05, "high": 0.15, "medium": 0.6,
                                                                   "low": 0.2}},
                  "category": {"label": "billing", "probabilities": {"billing": 0.9, "technical": 0.1}}}


def test_the_policy_router_satisfies_the_protocol_and_uses_its_clock():
    router: RoutingPolicy = PolicyRouter(load_routing_policy().policy, clock=lambda: SATURDAY)
    routing = router.route(TicketIn(id="T-1", body="The site is down", customer_timezone="Asia/Tokyo"),
                           {"urgency": _prediction("critical", 0.9)})
    assert router.name == "follow-the-sun-example"
    assert (routing.action, routing.priority, routing.signals) == ("page_on_call", "P1", ["outage"])
    assert routing.sla.customer_timezone == "Asia/Tokyo"
    assert routing.sla.first_response.due_local.utcoffset().total_seconds() == 9 * 3600


def test_predict_answers_with_the_routing_decision(client, payloads):
    routing = client.post("/predict", json=payloads[2]).json()["routing"]
    assert routing["policy"] == "follow-the-sun-example" and routing["action"] in ACTIONS
    assert routing["team"] in {"apac", "emea", "americas"} and routing["sla"]["first_response"]["due_utc"]
    assert (routing["action"] == "assign_now") <= routing["team_on_shift"]
    assert (routing["acknowledgement"] is not None) == (routing["action"] in {"auto_acknowledge",
                                                                               "queue_for_next_shift"})


def _reassess(client, body: dict, ticket_id: str = "T-9"):
    return client.post(f"/tickets/{ticket_id}/reassess", json=body)


TICKET_JSON = {"id": "T-9", "subject": "Invoice", "body": "I need a copy of my invoice",
          "created_at": "2026-01-20T10:00:00+00:00", "customer_timezone": "Europe/Berlin"}


def test_reassess_raises_the_priority_as_the_first_response_deadline_nears(client):
    fresh = _reassess(client, {"ticket": TICKET_JSON, "predictions": BILLING_MEDIUM, "elapsed_minutes": 0})
    assert fresh.status_code == 200, fresh.text
    assert (fresh.json()["priority"], fresh.json()["sla"]["status"]) == ("P3", "on_track")
    near = _reassess(client, {"ticket": TICKET_JSON, "predictions": BILLING_MEDIUM, "elapsed_minutes": 390}).json()
    assert (near["priority"], near["sla"]["status"], near["action"]) == ("P2", "near_breach", "assign_now")
    assert near["sla"]["first_response"]["due_local"] == "2026-01-20T19:00:00+01:00"  # 18:00 UTC, in Berlin


def test_reassess_takes_the_predictions_exactly_as_predict_returned_them(client, payloads):
    answer = client.post("/predict", json=payloads[3]).json()
    body = {"ticket": payloads[3], "predictions": answer["predictions"], "now": "2026-01-24T12:00:00Z"}
    response = _reassess(client, body, ticket_id=payloads[3]["id"])
    assert response.status_code == 200, response.text
    assert response.json()["team_on_shift"] is False  # a Saturday


@pytest.mark.parametrize(("change", "field"), [
    ({"ticket": {**TICKET_JSON, "customer_timezone": "Mars/Olympus"}}, ["body", "ticket", "customer_timezone"]),
    ({"elapsed_minutes": -5}, ["body", "elapsed_minutes"]),
    ({"now": "2026-01-20T12:00:00"}, ["body", "now"]),
    ({"now": "2026-01-19T12:00:00Z"}, ["body", "now"]),  # before created_at
    ({"ticket": {**TICKET_JSON, "id": "T-other"}}, ["body", "ticket", "id"]),
    ({"predictions": {"mood": BILLING_MEDIUM["urgency"]}}, ["body", "predictions", "mood", "[key]"]),
    ({"predictions": {"urgency": {"label": "high", "probabilities": {"high": 7}}}},
     ["body", "predictions", "urgency", "probabilities", "high"]),
])
def test_bad_reassess_input_is_refused_naming_the_field(client, change, field):
    response = _reassess(client, {"ticket": TICKET_JSON, "predictions": BILLING_MEDIUM, "elapsed_minutes": 30, **change})
    assert response.status_code == 422, response.text
    assert field in [error["loc"] for error in response.json()["detail"]], response.text


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def page_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events", _Receiver.received
    server.shutdown()
    server.server_close()


def test_an_overdue_ticket_at_the_weekend_pages_on_call_through_the_webhook(client, service, page_receiver):
    from serving.paging import BackgroundPager, Pager

    url, received = page_receiver
    saved, service.pager = service.pager, BackgroundPager(Pager(url, backoff=0.0))
    try:
        # P3 received Friday evening, still unanswered in Monday's night gap: breached, raised, paged.
        ticket = {**TICKET_JSON, "created_at": "2026-01-23T20:00:00+00:00", "subject": "Invoice wrong"}
        response = _reassess(client, {"ticket": ticket, "predictions": BILLING_MEDIUM,
                                      "now": "2026-01-26T23:30:00Z"})
        assert response.status_code == 200, response.text
        assert (response.json()["action"], response.json()["sla"]["status"]) == ("page_on_call", "breached")
        service.pager.close(wait=True)
    finally:
        service.pager = saved
    assert len(received) == 1 and received[0]["dedup_key"] == "T-9"
    details = received[0]["payload"]["custom_details"]
    assert details["priority"] == "P2" and details["escalation"][0]["contact"] == "primary-on-call"


def test_the_policy_file_setting_picks_another_policy(tmp_path, monkeypatch):
    import yaml

    from serving.policy import default_policy_path
    from serving.settings import ServingSettings

    raw = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    raw["name"] = "night-owls"
    custom = tmp_path / "policy.yaml"
    custom.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("NIGHTDESK_SERVING_POLICY_FILE", str(custom))
    settings = ServingSettings()
    assert load_routing_policy(settings.serving_policy_file, tmp_path / "no-index.joblib").name == "night-owls"
