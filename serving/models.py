"""The models the service holds: each task's classifier under the served alias.

A ``ModelSet`` loads every task's model from the MLflow registry, reports tasks it
could not load instead of failing, and can swap in a new version of one task while
requests are being answered (``refresh``): the new model is built completely, then
one reference is replaced under a lock, so a request sees either the old or the new
model, never a half-loaded one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from serving.settings import ServingSettings

if TYPE_CHECKING:  # imported where used: `bentoml serve`'s supervisor imports this module, never scores
    from features.predictor import TicketClassifier

logger = logging.getLogger("nightdesk.serving")

#: Run metrics shown by ``/models`` (the ones a helpdesk lead reads first).
HEADLINE_METRICS = ("accuracy", "macro_f1", "weighted_f1", "ece", "review_rate")


@dataclass(frozen=True)
class LoadedModel:
    """One task's model with where it came from."""

    task: str
    classifier: TicketClassifier
    name: str
    version: str
    alias: str
    run_id: str | None
    created_at: datetime | None
    trained_at: datetime | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    #: The classifier's ``features.online.OnlinePredictor`` (same answers, less per-call
    #: overhead), built with it so that a refresh swaps both at once; None: score with
    #: ``classifier.predict_frame``.
    online: Any = None


@dataclass(frozen=True)
class MissingModel:
    task: str
    name: str
    alias: str
    reason: str
    status: str = "missing"  # "missing": nothing under the alias; "error": it failed to load


ModelSlot = LoadedModel | MissingModel
#: Loads a task's model (or says why it cannot), given the version already held;
#: returns None when that version is still the current one. MLflow in production, fakes in tests.
Loader = Callable[[str, "str | None"], "ModelSlot | None"]


class ModelSet:
    """Each task's current model, replaced atomically by ``refresh``."""

    def __init__(self, tasks: tuple[str, ...], loader: Loader):
        self._tasks = tuple(tasks)
        self._loader = loader
        self._slots: dict[str, ModelSlot] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._tasks

    def load(self) -> ModelSet:
        for task in self._tasks:
            slot = self._loader(task, None)
            assert slot is not None, "a loader given no known version must return a slot"
            self._install(task, slot)
        return self

    def snapshot(self) -> dict[str, ModelSlot]:
        """A consistent view of every task (one request uses one snapshot throughout)."""
        with self._lock:
            return dict(self._slots)

    def loaded(self) -> dict[str, LoadedModel]:
        return {task: slot for task, slot in self.snapshot().items() if isinstance(slot, LoadedModel)}

    def refresh(self) -> list[str]:
        """Reload every task whose alias now points elsewhere; returns the tasks that changed."""
        changed = []
        for task in self._tasks:
            current = self.snapshot().get(task)
            known_version = current.version if isinstance(current, LoadedModel) else None
            slot = self._loader(task, known_version)
            if slot is None:
                continue
            if isinstance(slot, MissingModel) and isinstance(current, LoadedModel):
                # Keep answering with the model we have rather than dropping the task.
                logger.warning("%s: %s; keeping version %s", task, slot.reason, current.version)
                continue
            if isinstance(slot, MissingModel) and isinstance(current, MissingModel) and slot.reason == current.reason:
                continue
            self._install(task, slot)
            changed.append(task)
        return changed

    def start_polling(self, interval_s: float) -> None:
        """Check the alias every ``interval_s`` seconds in a daemon thread (0 = never)."""
        if interval_s <= 0 or self._poller is not None:
            return
        self._poller = threading.Thread(target=self._poll, args=(interval_s,), name="nightdesk-model-poll", daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.refresh()
            except Exception:  # a registry hiccup must not kill the poller
                logger.exception("model refresh failed; will retry in %.0f s", interval_s)

    def _install(self, task: str, slot: ModelSlot) -> None:
        with self._lock:
            self._slots[task] = slot
        if isinstance(slot, LoadedModel):
            logger.info("%s: serving %s version %s (@%s)", task, slot.name, slot.version, slot.alias)
        else:
            logger.warning("%s: NOT SERVED: %s", task, slot.reason)


class MlflowLoader:
    """Loads a task's model under the served alias from the MLflow registry."""

    def __init__(self, settings: ServingSettings):
        from training import tracking

        self._settings = settings
        self._client = tracking.connect(settings)

    def __call__(self, task: str, known_version: str | None) -> ModelSlot | None:
        from features.online import OnlinePredictor
        from training import tracking

        settings, alias = self._settings, self._settings.serving_alias
        name = settings.model_name(task)
        version = tracking.version_by_alias(self._client, settings, task, alias)
        if version is None:
            return MissingModel(task, name, alias, f"no version of {name} has the alias @{alias}")
        if str(version.version) == known_version:
            return None
        try:
            classifier = tracking.load_classifier(f"models:/{name}/{version.version}")
        except Exception as error:  # a broken artifact is reported, and the other tasks still serve
            logger.exception("%s: loading %s version %s failed", task, name, version.version)
            return MissingModel(task, name, alias, f"version {version.version} failed to load: {error}", "error")
        run_id = version.run_id
        metrics, trained_at = self._run_facts(run_id)
        return LoadedModel(
            task=task,
            classifier=classifier,
            name=name,
            version=str(version.version),
            alias=alias,
            run_id=run_id,
            created_at=_from_millis(version.creation_timestamp),
            trained_at=trained_at,
            metrics=metrics,
            online=OnlinePredictor.build(classifier),
        )

    def _run_facts(self, run_id: str | None) -> tuple[dict[str, float], datetime | None]:
        if not run_id:
            return {}, None
        try:
            run = self._client.get_run(run_id)
        except Exception:
            logger.warning("run %s of a served model is not readable; /models shows no metrics", run_id)
            return {}, None
        metrics = {k: float(v) for k, v in run.data.metrics.items() if k in HEADLINE_METRICS}
        return metrics, _from_millis(run.info.start_time)


def _from_millis(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)


def load_model_set(settings: ServingSettings) -> ModelSet:
    return ModelSet(settings.serving_tasks, MlflowLoader(settings)).load()
