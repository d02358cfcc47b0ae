"""The store on SQLite and (when NIGHTDESK_TEST_POSTGRES_URL is set) PostgreSQL: migrations,
predictions, idempotent corrections, statistics, API keys and an unreachable database."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text

from store import (
    CORRECTION_COLUMNS,
    CorrectionIn,
    InvalidCorrection,
    PredictionNotFound,
    PredictionRecord,
    Store,
    StoreUnavailable,
    TaskOutcome,
)
from store.tables import ApiKey, Base

T0 = datetime(2026, 1, 5, 2, 30, tzinfo=UTC)
#: Nothing listens on port 1: connecting is refused at once, like a database that is down.
UNREACHABLE = "postgresql+psycopg://nightdesk:x@127.0.0.1:1/nightdesk"


def outcome(label: str, probabilities: dict[str, float], *, review: bool = False, version: str = "1",
            task: str = "urgency") -> TaskOutcome:
    return TaskOutcome(label=label, probabilities=probabilities, confidence=max(probabilities.values()),
                       needs_review=review, model_name=f"nightdesk-{task}", model_version=version)


def record(prediction_id: str, ticket_id: str, *, at: datetime = T0, urgency: str = "low", review: bool = False,
           queue: str = "general", version: str = "1", **fields) -> PredictionRecord:
    probabilities = {"critical": 0.1, "high": 0.2, "medium": 0.2, "low": 0.5}
    probabilities = {k: (0.5 if k == urgency else v) for k, v in probabilities.items()}
    return PredictionRecord(
        prediction_id=prediction_id, ticket_id=ticket_id, created_at=at,
        subject=fields.pop("subject", "Cannot log in"), body=fields.pop("body", "Please help"),
        outcomes={"urgency": outcome(urgency, probabilities, review=review, version=version),
                  "sentiment": outcome("neutral", {"negative": 0.2, "neutral": 0.7, "positive": 0.1},
                                       task="sentiment")},
        routing={"queue": queue, "priority": "P3"}, **fields)


def fix(prediction_id: str | None = None, label: str = "critical", agent: str = "agent-1", task: str = "urgency",
        **fields) -> CorrectionIn:
    return CorrectionIn(prediction_id=prediction_id, task=task, label=label, agent_id=agent, **fields)


@pytest.fixture
def store(store_url):
    opened = Store(store_url)
    yield opened
    opened.close()


def test_opening_migrates_an_empty_database_to_head_and_matches_the_tables(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.config import Config

    from store.store import MIGRATIONS

    store = Store(store_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert store.schema_revision() == ScriptDirectory.from_config(config).get_current_head()
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert {"predictions", "prediction_tasks", "corrections", "api_keys", "alembic_version"} <= tables
        # The ORM tables and the migrations describe the same schema.
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.close()
    Store(store_url).close()  # opening again is a no-op


def test_predictions_are_stored_masked_and_a_retry_adds_nothing(store):
    first = record("p1", "T-1", subject="Mail jane.doe@example.com", body="Call me on +49 30 12345678",
                   channel="email", customer_timezone="Europe/Berlin", ticket_created_at=T0 - timedelta(hours=1))
    assert store.record_predictions([first, record("p2", "T-2")]) == 2
    assert store.record_predictions([first]) == 0
    assert store.prediction_count() == 2
    [stored] = [p for p in store.recent_predictions() if p.prediction_id == "p1"]
    assert "jane.doe" not in stored.subject and "<EMAIL>" in stored.subject
    assert "12345678" not in stored.body and "<PHONE>" in stored.body
    assert stored.queue == "general" and stored.created_at == T0 and stored.channel == "email"
    assert stored.outcomes["urgency"].probabilities["low"] == 0.5


def test_corrections_are_idempotent_per_ticket_task_and_agent(store):
    store.record_predictions([record("p1", "T-1"), record("p2", "T-1", at=T0 + timedelta(minutes=5))])
    [created] = store.add_corrections([fix("p1", "critical", reason="outage")])
    assert created.status == "created" and created.original_label == "low" and created.model_version == "1"
    [repeat] = store.add_corrections([fix("p1", "critical", reason="outage")])
    assert repeat.status == "unchanged" and repeat.id == created.id and repeat.updated_at == created.updated_at
    [changed] = store.add_corrections([fix("p1", "high", reason="outage")])
    assert changed.status == "updated" and changed.id == created.id and changed.updated_at > created.updated_at
    # Naming the ticket instead of the prediction: the same (ticket, task, agent), its latest prediction.
    [by_ticket] = store.add_corrections([CorrectionIn(ticket_id="T-1", task="urgency", label="high",
                                                      agent_id="agent-1", misrouted=True)])
    assert by_ticket.id == created.id and by_ticket.prediction_id == "p2" and by_ticket.misrouted
    [other_agent] = store.add_corrections([fix("p1", "medium", agent="agent-2", reason="customer a@b.io said so")])
    assert other_agent.reason == "customer <EMAIL> said so"  # agents' notes are masked too
    assert other_agent.status == "created" and other_agent.id != created.id

    frame = store.corrections_frame()
    assert list(frame.columns) == list(CORRECTION_COLUMNS)
    assert len(frame) == 2 and sorted(frame["label"]) == ["high", "medium"]
    row = frame.set_index("agent_id").loc["agent-1"]
    assert row["ticket_id"] == "T-1" and row["subject"] == "Cannot log in" and bool(row["misrouted"])
    assert str(row["updated_at"].tz) == "UTC"
    assert store.corrections_frame(task="sentiment").empty


def test_a_request_with_one_bad_correction_writes_nothing(store):
    store.record_predictions([record("p1", "T-1")])
    with pytest.raises(PredictionNotFound) as missing:
        store.add_corrections([fix("p1"), fix("nope")])
    assert missing.value.missing == [{"index": 1, "prediction_id": "nope"}]
    with pytest.raises(InvalidCorrection) as bad_label:
        store.add_corrections([fix("p1"), fix("p1", label="urgent", agent="agent-2")])
    [problem] = bad_label.value.problems
    assert problem["index"] == 1 and problem["field"] == "label"
    assert problem["allowed"] == ["critical", "high", "medium", "low"]
    with pytest.raises(InvalidCorrection) as bad_task:
        store.add_corrections([fix("p1", task="category", label="billing")])
    assert bad_task.value.problems[0]["allowed"] == ["sentiment", "urgency"]
    with pytest.raises(PredictionNotFound):
        store.add_corrections([CorrectionIn(ticket_id="T-9", task="urgency", label="low", agent_id="a")])
    assert store.corrections_frame().empty


def test_fifty_agents_posting_at_once_lose_nothing(store):
    store.record_predictions([record(f"p{i}", f"T-{i}") for i in range(50)])
    errors = []
    start = threading.Barrier(50)

    def agent(i: int) -> None:
        try:
            start.wait()
            # Each agent corrects its own ticket and, all at once, the same shared ticket (twice).
            store.add_corrections([fix(f"p{i}", "critical", agent=f"agent-{i}"), fix("p0", "high", agent=f"agent-{i}")])
            store.add_corrections([fix("p0", "high", agent=f"agent-{i}")])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    frame = store.corrections_frame()
    # agent-0's own ticket is p0, which it then corrects to "high": 49 + 50 rows.
    assert len(frame) == 99 and frame["correction_id"].is_unique
    assert (frame[frame["ticket_id"] == "T-0"]["label"] == "high").all()
    assert frame.groupby(["ticket_id", "task", "agent_id"]).size().max() == 1


def test_the_same_correction_posted_at_once_is_stored_once(store):
    store.record_predictions([record("p1", "T-1"), record("p2", "T-2")])
    start = threading.Barrier(20)
    results, errors = [], []

    def post(i: int) -> None:
        start.wait()
        try:  # half name the keys in one order, half in the other
            pair = [fix("p1", "high", agent="agent-x"), fix("p2", "medium", agent="agent-x")]
            results.extend(store.add_corrections(pair if i % 2 else pair[::-1]))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 40
    frame = store.corrections_frame()
    assert len(frame) == 2 and len({r.id for r in results}) == 2


def test_feedback_stats_give_override_rates_per_task_class_version_and_hour(store):
    store.record_predictions([
        record("p1", "T-1", urgency="low", at=T0),
        record("p2", "T-2", urgency="low", at=T0 + timedelta(hours=1), version="2"),
        record("p3", "T-3", urgency="high", at=T0 + timedelta(hours=1), version="2"),
        record("p4", "T-4", urgency="low", at=T0, version="2"),
    ])
    store.add_corrections([fix("p1", "critical"), fix("p1", "high", agent="agent-2"),  # one ticket, two agents
                           fix("p3", "high", misrouted=True),  # confirms the label: not an override
                           fix("p2", "medium")])
    stats = store.feedback_stats()
    assert stats.predictions == 4 and stats.corrections == 4

    def rates(group):
        return {(r.task, r.key): (r.predictions, r.overridden, r.misrouted) for r in group}

    assert rates(stats.by_task)[("urgency", "urgency")] == (4, 2, 1)
    assert rates(stats.by_task)[("sentiment", "sentiment")] == (4, 0, 0)
    assert rates(stats.by_class)[("urgency", "low")] == (3, 2, 0)
    assert rates(stats.by_class)[("urgency", "high")] == (1, 0, 1)
    assert rates(stats.by_model_version)[("urgency", "1")] == (1, 1, 0)
    assert rates(stats.by_model_version)[("urgency", "2")] == (3, 1, 1)
    assert rates(stats.by_hour)[("urgency", "02")] == (2, 1, 0)
    assert rates(stats.by_hour)[("urgency", "03")] == (2, 1, 1)
    assert next(r for r in stats.by_class if r.key == "low").rate == pytest.approx(2 / 3)


def test_recent_predictions_filter_for_the_console(store):
    store.record_predictions([
        record("old", "T-1", at=T0, review=True, queue="billing"),
        record("new", "T-2", at=T0 + timedelta(minutes=1), queue="billing"),
        record("other", "T-3", at=T0 + timedelta(minutes=2), review=True, queue="it"),
    ])
    ids = lambda **query: [p.prediction_id for p in store.recent_predictions(**query)]  # noqa: E731
    assert ids() == ["other", "new", "old"]
    assert ids(limit=1) == ["other"]
    assert ids(queue="billing") == ["new", "old"]
    assert ids(only_review=True) == ["other", "old"]
    assert ids(task="urgency", only_review=True, queue="billing") == ["old"]
    assert ids(task="sentiment", only_review=True) == []
    assert ids(task="urgency", max_confidence=0.5) == ["other", "new", "old"]
    assert ids(task="urgency", max_confidence=0.4) == []
    assert ids(task="category") == []


def test_api_keys_are_stored_hashed_and_can_be_revoked(store):
    assert not store.has_keys()
    token = store.create_key("agent", "night shift")
    assert store.has_keys() and store.authenticate(token) == "agent"
    assert store.authenticate(token + "x") is None and store.authenticate("") is None
    with store.engine.connect() as connection:
        rows = connection.execute(select(ApiKey.__table__)).mappings().all()
        dump = repr([dict(r) for r in rows]) + repr(connection.execute(text("SELECT * FROM api_keys")).all())
    assert token not in dump and token[12:] not in dump
    assert rows[0]["key_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert store.active_keys() == {rows[0]["key_hash"]: "agent"}
    [info] = store.list_keys()
    assert info.role == "agent" and info.name == "night shift" and token.startswith(info.prefix)
    assert store.revoke_key(info.id) and not store.revoke_key(info.id)
    assert store.authenticate(token) is None and not store.has_keys()
    with pytest.raises(ValueError, match="role must be one of"):
        store.create_key("root")


def test_an_unreachable_database_raises_store_unavailable_and_a_lazy_store_recovers(tmp_path):
    with pytest.raises(StoreUnavailable, match="unavailable"):
        Store(UNREACHABLE)
    lazy = Store(UNREACHABLE, migrate=False)
    with pytest.raises(StoreUnavailable):
        lazy.record_predictions([record("p1", "T-1")])
    with pytest.raises(StoreUnavailable):
        lazy.add_corrections([fix("p1")])
    # The same store object, once its database answers, migrates on first use.
    lazy.engine = Store(f"sqlite:///{tmp_path / 'late.db'}", migrate=False).engine
    lazy._sessions.configure(bind=lazy.engine)
    assert lazy.record_predictions([record("p1", "T-1")]) == 1
