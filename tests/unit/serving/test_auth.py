"""API keys with roles through the in-process service, the role table, and `nightdesk keys`."""

from __future__ import annotations

import hashlib

import pytest
from store_helpers import UNREACHABLE, service_store, wait_for

from serving.auth import KeyRing, required_role
from store import Store

CORRECTION = {"prediction_id": "0" * 32, "task": "urgency", "label": "low", "agent_id": "a"}


@pytest.fixture
def live(service, tmp_path):
    with service_store(service, f"sqlite:///{tmp_path / 'store.db'}") as store:
        yield store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("path", "role"), [
    ("/predict", "integration"), ("/predict_batch", "integration"), ("/tickets/T-1/reassess", "integration"),
    ("/feedback", "agent"), ("/feedback/stats", "agent"), ("/console/api/predictions", "agent"),
    ("/models", "admin"), ("/something-new", "admin"), ("/predictx", "admin"),
    ("/healthz", None), ("/readyz", None), ("/livez", None), ("/metrics", None), ("/docs.json", None), ("/", None),
    ("/console", None), ("/console/app.js", None),
])
def test_each_path_needs_its_role(path, role):
    assert required_role(path) == role


def test_without_keys_the_api_is_open(client, live, payloads):
    assert client.post("/predict", json=payloads[0]).status_code == 200
    assert client.get("/feedback/stats").status_code == 200
    assert client.get("/models").status_code == 200


def test_once_keys_exist_each_role_reaches_what_it_may(client, service, live, payloads):
    integration, agent, admin = (live.create_key(role) for role in ("integration", "agent", "admin"))
    service.keyring.reload()  # what the periodic refresh does (see the next test)
    ticket = payloads[0]
    missing = client.post("/predict", json=ticket)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["detail"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/predict", json=ticket, headers=bearer("ndk_wrong")).status_code == 401
    malformed = client.post("/predict", json=ticket, headers={"Authorization": f"Token {agent}"})
    assert malformed.status_code == 401 and "malformed" in malformed.text

    for token in (integration, agent, admin):
        assert client.post("/predict", json=ticket, headers=bearer(token)).status_code == 200
        batch = client.post("/predict_batch", json={"tickets": [ticket]}, headers=bearer(token))
        assert batch.status_code == 200
    forbidden = client.post("/feedback", json=CORRECTION, headers=bearer(integration))
    assert forbidden.status_code == 403 and "needs the agent role" in forbidden.json()["detail"]
    assert client.get("/console/api/predictions", headers=bearer(integration)).status_code == 403
    for token in (agent, admin):
        assert client.post("/feedback", json=CORRECTION, headers=bearer(token)).status_code == 404  # past auth
        assert client.get("/feedback/stats", headers=bearer(token)).status_code == 200
        assert client.get("/console/api/predictions", headers=bearer(token)).status_code == 200
    assert client.get("/models", headers=bearer(agent)).status_code == 403
    assert client.get("/models", headers=bearer(admin)).status_code == 200
    for open_path in ("/healthz", "/readyz", "/docs.json"):  # /metrics needs a served process
        assert client.get(open_path).status_code == 200, open_path


def test_the_first_key_turns_auth_on_without_a_restart(client, service, live, payloads):
    service.keyring.refresh_s = 0.05
    assert client.post("/predict", json=payloads[0]).status_code == 200
    live.create_key("integration")
    # A stale ring reloads in the background: soon requests without a key are refused.
    assert wait_for(lambda: client.post("/predict", json=payloads[0]).status_code == 401)


def test_new_keys_work_at_once_and_revoked_ones_stop(client, service, live, payloads):
    first = live.create_key("agent", "first")
    assert client.get("/feedback/stats", headers=bearer(first)).status_code == 200
    second = live.create_key("agent", "second")  # created while the service runs
    assert client.get("/feedback/stats", headers=bearer(second)).status_code == 200
    live.revoke_key(next(k.id for k in live.list_keys() if k.name == "first"))
    service.keyring.reload()  # what the periodic refresh does
    assert client.get("/feedback/stats", headers=bearer(first)).status_code == 401
    assert client.get("/feedback/stats", headers=bearer(second)).status_code == 200


def test_required_auth_refuses_requests_even_before_any_key_exists(client, service, live, payloads):
    service.keyring.required = True
    assert client.post("/predict", json=payloads[0]).status_code == 401
    assert client.get("/healthz").status_code == 200


def test_keys_that_cannot_be_checked_are_503_not_a_guess(client, service, live, payloads):
    service.keyring = KeyRing(Store(UNREACHABLE, migrate=False))
    response = client.post("/predict", json=payloads[0])
    assert response.status_code == 503 and "cannot be checked" in response.text
    assert client.get("/healthz").status_code == 200


def test_known_keys_keep_working_while_the_store_is_down(client, service, live, payloads):
    token = live.create_key("integration")
    service.keyring.reload()
    service.keyring.store = Store(UNREACHABLE, migrate=False)
    service.keyring.reload()  # fails, keeps the last known keys
    assert client.post("/predict", json=payloads[0], headers=bearer(token)).status_code == 200
    assert client.post("/predict", json=payloads[0]).status_code == 401


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(nightdesk_home):
    from click.testing import CliRunner
    from sqlalchemy import text

    from training.cli import main

    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--role", "agent", "--name", "night shift"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("ndk_") and len(token.splitlines()) == 1 and "not shown again" in created.stderr
    store = Store(f"sqlite:///{nightdesk_home / 'nightdesk.db'}")
    assert store.authenticate(token) == "agent"
    with store.engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM api_keys")).all()
    assert token not in repr(row) and hashlib.sha256(token.encode()).hexdigest() in row
    listed = runner.invoke(main, ["keys", "list"])
    assert "agent\tnight shift" in listed.stdout and token not in listed.stdout
    assert runner.invoke(main, ["keys", "revoke", "1"]).exit_code == 0
    assert store.authenticate(token) is None
    assert runner.invoke(main, ["keys", "revoke", "1"]).exit_code == 1
    bad = runner.invoke(main, ["keys", "create", "--role", "root"])
    assert bad.exit_code == 2 and "root" in bad.output
