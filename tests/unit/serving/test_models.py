"""ModelSet: missing tasks are reported, refresh swaps whole models."""

from __future__ import annotations

import threading

from serving.models import LoadedModel, MissingModel, ModelSet


class FakeLoader:
    def __init__(self, versions: dict[str, str | None]):
        self.versions = versions
        self.calls = 0

    def __call__(self, task, known_version):
        self.calls += 1
        version = self.versions.get(task)
        if version is None:
            return MissingModel(task, f"m-{task}", "champion", "no champion")
        if version == known_version:
            return None
        return LoadedModel(task, object(), f"m-{task}", version, "champion", None, None, None)  # type: ignore[arg-type]


def test_a_task_without_a_champion_is_reported_not_fatal():
    models = ModelSet(("urgency", "sentiment"), FakeLoader({"urgency": "1"})).load()
    assert set(models.loaded()) == {"urgency"}
    assert isinstance(models.snapshot()["sentiment"], MissingModel)


def test_refresh_swaps_only_changed_tasks_and_keeps_a_model_whose_alias_vanished():
    loader = FakeLoader({"urgency": "1", "sentiment": "4"})
    models = ModelSet(("urgency", "sentiment"), loader).load()
    before = models.snapshot()
    loader.versions.update(urgency="2", sentiment=None)
    assert models.refresh() == ["urgency"]
    after = models.snapshot()
    assert after["urgency"].version == "2"
    assert after["sentiment"] is before["sentiment"]  # still served rather than dropped
    assert models.refresh() == []


def test_a_snapshot_is_unaffected_by_later_swaps():
    loader = FakeLoader({"urgency": "1"})
    models = ModelSet(("urgency",), loader).load()
    snapshot = models.snapshot()
    loader.versions["urgency"] = "2"
    models.refresh()
    assert snapshot["urgency"].version == "1"


def test_polling_refreshes_in_the_background_and_stops():
    loader = FakeLoader({"urgency": "1"})
    models = ModelSet(("urgency",), loader).load()
    loader.versions["urgency"] = "2"
    models.start_polling(0.01)
    deadline = threading.Event()
    for _ in range(200):
        if models.loaded()["urgency"].version == "2":
            break
        deadline.wait(0.01)
    models.stop_polling()
    assert models.loaded()["urgency"].version == "2"


def test_polling_is_off_at_zero():
    models = ModelSet(("urgency",), FakeLoader({"urgency": "1"})).load()
    models.start_polling(0)
    assert models._poller is None
