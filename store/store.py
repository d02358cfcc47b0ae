"""``Store``: the database of served predictions, agents' corrections and API keys.

Every method is one transaction. Database trouble (unreachable, locked) surfaces as
``StoreUnavailable``; nothing is half-written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Engine, case, create_engine, event, exists, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from features.masking import mask_pii
from store import keys
from store.errors import InvalidCorrection, PredictionNotFound, StoreUnavailable
from store.schemas import (
    ROLES,
    ApiKeyInfo,
    CorrectionIn,
    CorrectionResult,
    FeedbackStats,
    OverrideRate,
    PredictionRecord,
    RecentPrediction,
    TaskOutcome,
)
from store.tables import ApiKey, Correction, Prediction, PredictionTask

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("nightdesk.store")

MIGRATIONS = Path(__file__).parent / "migrations"

#: Columns of ``corrections_frame`` (the retraining input), in order.
CORRECTION_COLUMNS: tuple[str, ...] = (
    "correction_id", "ticket_id", "task", "label", "original_label", "agent_id", "reason", "misrouted",
    "created_at", "updated_at", "prediction_id", "model_name", "model_version", "subject", "body", "channel",
    "customer_tier", "language", "ticket_created_at", "customer_timezone",
)


#: Execution option of sessions that only read (SQLite then skips taking the write lock).
READ_ONLY = "nightdesk_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """The store at a SQLAlchemy URL (``sqlite:///file.db`` or ``postgresql+psycopg://...``).

    ``migrate=True`` (default) brings the schema to the latest migration now; with
    ``False`` that happens on first use (a service may start while its database is down).
    """

    def __init__(self, url: str, *, migrate: bool = True, connect_timeout_s: float = 5.0):
        self.url = url
        self.engine = _engine(url, connect_timeout_s)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        if migrate:
            self.ensure_schema()

    @classmethod
    def open(cls, url: str, **options) -> Store:
        return cls(url, **options)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # ----------------------------------------------------------------- schema

    def ensure_schema(self) -> None:
        """Run the Alembic migrations up to head (once per ``Store``; safe across processes)."""
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with _unavailable_on_db_errors(), self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            self._migrated = True

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with _unavailable_on_db_errors(), self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the database answers."""
        with self._session(read_only=True) as session:
            session.execute(select(1))

    @contextmanager
    def _session(self, read_only: bool = False) -> Iterator[Session]:
        self.ensure_schema()
        with _unavailable_on_db_errors(), self._sessions.begin() as session:
            if read_only:  # SQLite: a plain BEGIN, so reads never wait for the write lock
                session.connection(execution_options={READ_ONLY: True})
            yield session

    # ----------------------------------------------------------------- predictions

    def record_predictions(self, records: Iterable[PredictionRecord | PredictionRows]) -> int:
        """Store predictions (text PII-masked here). Ids already stored are skipped, so a retry is safe.

        A prediction is a validated ``PredictionRecord`` or, from a caller that writes many
        (the service's recorder), the same content as ``PredictionRows``. Returns how many were new.
        """
        rows = {r.prediction["id"]: r for r in map(_as_rows, records)}
        if not rows:
            return 0
        with self._session() as session:
            known = set(session.scalars(select(Prediction.id).where(Prediction.id.in_(list(rows)))))
            fresh = [r for r in rows.values() if r.prediction["id"] not in known]
            if not fresh:
                return 0
            # Core executemany of plain dicts: no ORM objects per row.
            session.execute(Prediction.__table__.insert(), [_masked(r.prediction) for r in fresh])
            tasks = [task for r in fresh for task in r.tasks]
            if tasks:
                session.execute(PredictionTask.__table__.insert(), tasks)
        return len(fresh)

    def recent_predictions(self, task: str | None = None, queue: str | None = None, only_review: bool = False,
                           max_confidence: float | None = None, limit: int = 100) -> list[RecentPrediction]:
        """Newest first. ``only_review`` and ``max_confidence`` select flagged tickets: needing review,
        or (with both) needing review *or* at most that confident; ``task`` limits the check to one task
        and keeps only predictions that answered it."""
        query = select(Prediction).order_by(Prediction.created_at.desc(), Prediction.id).limit(max(1, limit))
        if queue:
            query = query.where(Prediction.queue == queue)
        conditions = []
        if only_review:
            conditions.append(PredictionTask.needs_review.is_(True))
        if max_confidence is not None:
            conditions.append(PredictionTask.confidence <= max_confidence)
        if task or conditions:
            match = exists().where(PredictionTask.prediction_id == Prediction.id)
            if task:
                match = match.where(PredictionTask.task == task)
            if conditions:
                match = match.where(or_(*conditions))
            query = query.where(match)
        with self._session(read_only=True) as session:
            predictions = list(session.scalars(query))
            ids = [p.id for p in predictions]
            outcomes: dict[str, dict[str, TaskOutcome]] = {i: {} for i in ids}
            if ids:
                for row in session.scalars(select(PredictionTask).where(PredictionTask.prediction_id.in_(ids))):
                    outcomes[row.prediction_id][row.task] = _outcome(row)
        return [RecentPrediction(prediction_id=p.id, ticket_id=p.ticket_id, created_at=p.created_at,
                                 subject=p.subject, body=p.body, channel=p.channel, customer_tier=p.customer_tier,
                                 language=p.language, ticket_created_at=p.ticket_created_at,
                                 customer_timezone=p.customer_timezone, queue=p.queue, outcomes=outcomes[p.id],
                                 routing=p.routing)
                for p in predictions]

    def prediction_count(self) -> int:
        with self._session(read_only=True) as session:
            return session.scalar(select(func.count()).select_from(Prediction)) or 0

    # ----------------------------------------------------------------- corrections

    def add_corrections(self, items: list[CorrectionIn]) -> list[CorrectionResult]:
        """Record corrections in one transaction: all of them, or (on any error) none.

        Each is checked against the prediction it corrects: the label must be one of that
        model's classes (the keys of its recorded probabilities). A repeat by the same agent
        for the same ticket and task updates the stored one (status ``updated``) or leaves it
        (``unchanged``). Raises ``PredictionNotFound``, ``InvalidCorrection``, ``StoreUnavailable``.
        """
        if not items:
            return []
        with self._session() as session:
            answers = [self._answer_corrected(session, item) for item in items]
            missing = [{"index": i, **ref} for i, (ref, answer) in enumerate(answers) if answer is None]
            if missing:
                raise PredictionNotFound(missing)
            problems = [p for i, (item, (_, answer)) in enumerate(zip(items, answers))
                        for p in _label_problems(i, item, answer)]
            if problems:
                raise InvalidCorrection(problems)
            # Rows are written in key order, so two requests touching the same rows cannot deadlock.
            order = sorted(range(len(items)), key=lambda i: (answers[i][1][0].ticket_id, items[i].task,
                                                             items[i].agent_id, i))
            results: dict[int, CorrectionResult] = {}
            for i in order:
                results[i] = _upsert_correction(session, items[i], answers[i][1])
            return [results[i] for i in range(len(items))]

    @staticmethod
    def _answer_corrected(session: Session, item: CorrectionIn) -> tuple[dict, tuple | None]:
        """The (prediction, task answer or None) a correction refers to; None when no prediction fits."""
        if item.prediction_id is not None:
            ref = {"prediction_id": item.prediction_id}
            prediction = session.get(Prediction, item.prediction_id)
            if prediction is None or (item.ticket_id is not None and item.ticket_id != prediction.ticket_id):
                return ref, None
        else:
            ref = {"ticket_id": item.ticket_id}
            prediction = session.scalars(
                select(Prediction).where(Prediction.ticket_id == item.ticket_id,
                                         exists().where(PredictionTask.prediction_id == Prediction.id,
                                                        PredictionTask.task == item.task))
                .order_by(Prediction.created_at.desc()).limit(1)).first()
            if prediction is None:
                prediction = session.scalars(select(Prediction).where(Prediction.ticket_id == item.ticket_id)
                                             .order_by(Prediction.created_at.desc()).limit(1)).first()
            if prediction is None:
                return ref, None
        return ref, (prediction, session.get(PredictionTask, (prediction.id, item.task)))

    def corrections_frame(self, task: str | None = None) -> pd.DataFrame:
        """Every stored correction with the masked ticket of the prediction it corrects (for retraining).

        One row per (ticket, task, agent); ``updated_at`` is when its current label was set
        (use it to let the latest correction win). Columns: ``CORRECTION_COLUMNS``.
        """
        import pandas as pd  # here, not at import: the service's store writer needs no pandas

        query = (select(Correction, Prediction).join(Prediction, Correction.prediction_id == Prediction.id)
                 .order_by(Correction.id))
        if task is not None:
            query = query.where(Correction.task == task)
        with self._session(read_only=True) as session:
            rows = [_correction_frame_row(c, p) for c, p in session.execute(query)]
        frame = pd.DataFrame(rows, columns=list(CORRECTION_COLUMNS))
        for column in ("created_at", "updated_at", "ticket_created_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        frame["misrouted"] = frame["misrouted"].astype(bool)
        frame["correction_id"] = frame["correction_id"].astype("int64")
        return frame

    def feedback_stats(self) -> FeedbackStats:
        """How often agents overrode the model: per task, predicted class, model version and hour (UTC)."""
        overridden = exists().where(Correction.prediction_id == PredictionTask.prediction_id,
                                    Correction.task == PredictionTask.task,
                                    Correction.label != Correction.original_label)
        misrouted = exists().where(Correction.prediction_id == PredictionTask.prediction_id,
                                   Correction.task == PredictionTask.task, Correction.misrouted.is_(True))
        counts = (func.count(), func.sum(case((overridden, 1), else_=0)), func.sum(case((misrouted, 1), else_=0)))
        created = Prediction.created_at
        if self.dialect == "postgresql":
            created = func.timezone("UTC", Prediction.created_at)
        groups = {
            "by_task": PredictionTask.task,
            "by_class": PredictionTask.label,
            "by_model_version": PredictionTask.model_version,
            "by_hour": func.extract("hour", created),
        }
        result = {}
        with self._session(read_only=True) as session:
            for name, key in groups.items():
                query = (select(PredictionTask.task, key, *counts)
                         .join(Prediction, Prediction.id == PredictionTask.prediction_id)
                         .group_by(PredictionTask.task, key).order_by(PredictionTask.task, key))
                result[name] = [_rate(task, value, name, n, o, m) for task, value, n, o, m in session.execute(query)]
            total = session.scalar(select(func.count()).select_from(Prediction)) or 0
            corrections = session.scalar(select(func.count()).select_from(Correction)) or 0
        return FeedbackStats(predictions=total, corrections=corrections, **result)

    # ----------------------------------------------------------------- API keys

    def create_key(self, role: str, name: str | None = None) -> str:
        """A new API key; the token is returned once and only its hash is stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        token = keys.new_token()
        with self._session() as session:
            session.add(ApiKey(key_hash=keys.hash_token(token), prefix=token[:keys.SHOWN_CHARS], role=role,
                               name=name, created_at=utcnow()))
        return token

    def authenticate(self, token: str) -> str | None:
        """The role of an active key with this token, else None."""
        with self._session(read_only=True) as session:
            return session.scalar(select(ApiKey.role).where(ApiKey.key_hash == keys.hash_token(token),
                                                            ApiKey.revoked_at.is_(None)))

    def has_keys(self) -> bool:
        with self._session(read_only=True) as session:
            return session.scalar(select(exists().where(ApiKey.revoked_at.is_(None)))) or False

    def active_keys(self) -> dict[str, str]:
        """Hash of the token -> role, of every key not revoked (for an in-memory cache)."""
        with self._session(read_only=True) as session:
            rows = session.execute(select(ApiKey.key_hash, ApiKey.role).where(ApiKey.revoked_at.is_(None)))
            return {key_hash: role for key_hash, role in rows}

    def list_keys(self) -> list[ApiKeyInfo]:
        with self._session(read_only=True) as session:
            return [ApiKeyInfo.model_validate(k, from_attributes=True)
                    for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    def revoke_key(self, key_id: int) -> bool:
        """Revoke a key by id; False when there is no such active key."""
        with self._session() as session:
            result = session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                                     .values(revoked_at=utcnow()))
            return result.rowcount == 1


# --------------------------------------------------------------------- helpers


def _engine(url: str, connect_timeout_s: float) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _serialise_sqlite_writes(engine)
        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = max(1, int(connect_timeout_s))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _serialise_sqlite_writes(engine: Engine) -> None:
    """SQLite: WAL, foreign keys, and every transaction takes the write lock when it begins.

    pysqlite's own transaction handling begins lazily, so two threads that both read
    and then write deadlock and one fails with "database is locked" at once, whatever
    the timeout. ``BEGIN IMMEDIATE`` makes them wait their turn instead
    (the SQLAlchemy documentation's recipe for serialisable SQLite).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


@contextmanager
def _unavailable_on_db_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        raise StoreUnavailable(f"the database is unavailable: {_first_line(error.orig)}") from error
    except PoolTimeout as error:  # every connection busy for pool_timeout seconds
        raise StoreUnavailable("the database is busy: no free connection") from error
    except DBAPIError as error:
        if error.connection_invalidated:
            raise StoreUnavailable(f"the database connection was lost: {_first_line(error.orig)}") from error
        raise


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class PredictionRows(NamedTuple):
    """One prediction as the rows of its two tables (``predictions``, ``prediction_tasks``), with the text
    not yet masked. Column values as in ``_prediction_row``."""

    prediction: dict[str, Any]
    tasks: list[dict[str, Any]]


def _as_rows(record: PredictionRecord | PredictionRows) -> PredictionRows:
    if isinstance(record, PredictionRows):
        return record
    return PredictionRows(_prediction_row(record), [_task_row(record.prediction_id, task, o)
                                                    for task, o in record.outcomes.items()])


def _masked(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "subject": mask_pii(row["subject"] or ""), "body": mask_pii(row["body"] or "")}


def _prediction_row(record: PredictionRecord) -> dict:
    """The ``predictions`` row of a record (text unmasked: ``record_predictions`` masks it)."""
    routing = record.routing or None
    return {
        "id": record.prediction_id, "ticket_id": record.ticket_id, "created_at": record.created_at,
        "subject": record.subject or "", "body": record.body or "",
        "channel": record.channel, "customer_tier": record.customer_tier, "language": record.language,
        "ticket_created_at": record.ticket_created_at, "customer_timezone": record.customer_timezone,
        "queue": (routing or {}).get("queue"), "routing": routing,
    }


def _task_row(prediction_id: str, task: str, outcome: TaskOutcome) -> dict:
    return {"prediction_id": prediction_id, "task": task, **outcome.model_dump()}


def _outcome(row: PredictionTask) -> TaskOutcome:
    return TaskOutcome(label=row.label, probabilities=row.probabilities, confidence=row.confidence,
                       needs_review=row.needs_review, model_name=row.model_name, model_version=row.model_version)


def _label_problems(index: int, item: CorrectionIn, answer: tuple) -> list[dict]:
    prediction, task_answer = answer
    if task_answer is None:
        return [{"index": index, "field": "task",
                 "message": f"prediction {prediction.id} has no answer for task {item.task!r}",
                 "allowed": sorted(_answered_tasks(prediction))}]
    allowed = list(task_answer.probabilities)
    if item.label not in allowed:
        return [{"index": index, "field": "label",
                 "message": f"label {item.label!r} is not a class of {task_answer.model_name} "
                            f"version {task_answer.model_version}; allowed: {', '.join(allowed)}",
                 "allowed": allowed}]
    return []


def _answered_tasks(prediction: Prediction) -> list[str]:
    session = Session.object_session(prediction)
    return list(session.scalars(select(PredictionTask.task).where(PredictionTask.prediction_id == prediction.id)))


def _upsert_correction(session: Session, item: CorrectionIn, answer: tuple) -> CorrectionResult:
    prediction, task_answer = answer
    values = {"prediction_id": prediction.id, "label": item.label, "original_label": task_answer.label,
              "reason": mask_pii(item.reason) if item.reason else item.reason, "misrouted": item.misrouted,
              "model_name": task_answer.model_name, "model_version": task_answer.model_version}
    key = {"ticket_id": prediction.ticket_id, "task": item.task, "agent_id": item.agent_id}
    existing = session.scalars(select(Correction).filter_by(**key).with_for_update()).first()
    now = utcnow()
    if existing is None:
        status = "created"
        stmt = _insert_for(session).values(**key, **values, created_at=now, updated_at=now)
        # Another transaction may have inserted the same key since our look-up (PostgreSQL
        # runs them side by side): then this becomes the update it would have been.
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_={**values, "updated_at": now})
        session.execute(stmt)
        existing = session.scalars(select(Correction).filter_by(**key).execution_options(populate_existing=True)).one()
    elif all(getattr(existing, name) == value for name, value in values.items()):
        status = "unchanged"
    else:
        status = "updated"
        for name, value in values.items():
            setattr(existing, name, value)
        existing.updated_at = now
        session.flush()
    return CorrectionResult(id=existing.id, prediction_id=existing.prediction_id, ticket_id=existing.ticket_id,
                            task=existing.task, label=existing.label, original_label=existing.original_label,
                            agent_id=existing.agent_id, reason=existing.reason, misrouted=existing.misrouted,
                            model_name=existing.model_name, model_version=existing.model_version,
                            created_at=existing.created_at, updated_at=existing.updated_at, status=status)


def _insert_for(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Correction)


def _correction_frame_row(correction: Correction, prediction: Prediction) -> dict:
    return {
        "correction_id": correction.id, "ticket_id": correction.ticket_id, "task": correction.task,
        "label": correction.label, "original_label": correction.original_label, "agent_id": correction.agent_id,
        "reason": correction.reason, "misrouted": correction.misrouted, "created_at": correction.created_at,
        "updated_at": correction.updated_at, "prediction_id": correction.prediction_id,
        "model_name": correction.model_name, "model_version": correction.model_version,
        "subject": prediction.subject, "body": prediction.body, "channel": prediction.channel,
        "customer_tier": prediction.customer_tier, "language": prediction.language,
        "ticket_created_at": prediction.ticket_created_at, "customer_timezone": prediction.customer_timezone,
    }


def _rate(task: str, value, group: str, predictions: int, overridden, misrouted) -> OverrideRate:
    overridden, misrouted = int(overridden or 0), int(misrouted or 0)
    key = f"{int(value):02d}" if group == "by_hour" else str(value)
    return OverrideRate(task=task, key=key, predictions=predictions, overridden=overridden,
                        rate=overridden / predictions if predictions else 0.0, misrouted=misrouted)
