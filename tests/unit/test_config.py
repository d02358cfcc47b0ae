"""training.config: packaged defaults, user overrides, task sections and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.schema import TASKS
from training.config import ConfigError, TrainConfig, config_to_yaml, deep_merge, default_config_text, load_config


def write(tmp_path: Path, text: str, name: str = "experiment.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_defaults_load_for_every_task():
    raw = yaml.safe_load(default_config_text())
    for task in TASKS:
        config = load_config(task)
        assert isinstance(config, TrainConfig)
        assert config.seed == raw["seed"]
        assert config.model.kind == raw["model"]["kind"]
        assert config.split.validation_fraction == raw["split"]["validation_fraction"]
        assert config.promotion.recall_floor == raw["promotion"]["recall_floor"]


def test_packaged_task_sections_apply_only_to_their_task():
    raw = yaml.safe_load(default_config_text())
    for task in TASKS:
        section = raw.get("tasks", {}).get(task, {})
        config = load_config(task)
        expected_floors = section.get("promotion", {}).get("recall_floors", {})
        assert config.promotion.recall_floors == expected_floors
        assert config.features.metadata == section.get("features", {}).get("metadata", raw["features"]["metadata"])



def test_every_task_masks_mentions_by_default_so_task_models_share_a_batch_text():
    assert all(load_config(task).features.mask_mentions for task in TASKS)


def test_user_file_overrides_keys_and_keeps_the_rest(tmp_path):
    path = write(tmp_path, "seed: 7\nmodel:\n  C: 2.0\nfeatures:\n  char_ngram_range: [3, 4]\n")
    config = load_config("category", path)
    default = load_config("category")

    assert config.seed == 7
    assert config.model.C == 2.0
    assert config.features.char_ngram_range == (3, 4)
    # siblings of overridden keys keep their defaults (a deep merge, not a replacement)
    assert config.model.kind == default.model.kind
    assert config.model.calibration_folds == default.model.calibration_folds
    assert config.features.word_ngram_range == default.features.word_ngram_range


def test_user_task_section_overrides_shared_settings_for_that_task_only(tmp_path):
    path = write(
        tmp_path,
        "model:\n  C: 2.0\ntasks:\n  sentiment:\n    model:\n      C: 0.1\n"
        "  urgency:\n    promotion:\n      recall_floors: {high: 0.4}\n",
    )
    assert load_config("sentiment", path).model.C == 0.1
    assert load_config("category", path).model.C == 2.0
    urgency = load_config("urgency", path)
    assert urgency.model.C == 2.0
    # the user's urgency section merges with the packaged one: the packaged floors are kept
    packaged = load_config("urgency").promotion.recall_floors
    assert urgency.promotion.recall_floors == {**packaged, "high": 0.4}


@pytest.mark.parametrize("value", [True, False])
def test_user_shared_setting_beats_packaged_task_section_and_user_task_section_beats_both(tmp_path, value):
    # Order: packaged shared < packaged task section < user shared < user task section.
    path = write(tmp_path, f"features:\n  metadata: {str(value).lower()}\n")
    assert all(load_config(task, path).features.metadata is value for task in TASKS)
    path = write(tmp_path, f"features:\n  metadata: {str(value).lower()}\n"
                           f"tasks:\n  sentiment:\n    features: {{metadata: {str(not value).lower()}}}\n")
    assert load_config("sentiment", path).features.metadata is (not value)
    assert load_config("urgency", path).features.metadata is value


@pytest.mark.parametrize(
    "text, key",
    [
        ("model:\n  kernel: rbf\n", "model.kernel"),
        ("seeed: 3\n", "seeed"),
        ("tasks:\n  urgency:\n    promotion:\n      recal_floor: 0.3\n", "promotion.recal_floor"),
    ],
)
def test_unknown_key_is_a_config_error_naming_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config("urgency", path)
    message = str(error.value)
    assert str(path) in message
    assert key in message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("model:\n  C: -1\n", "model.C"),
        ("split:\n  strategy: random\n", "split.strategy"),
        ("features:\n  word_ngram_range: [3, 1]\n", "n-gram range"),
        ("model: 3\n", "model"),
    ],
)
def test_invalid_values_are_config_errors(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=fragment) as error:
        load_config("category", path)
    assert str(path) in str(error.value)


def test_bad_yaml_is_a_config_error(tmp_path):
    path = write(tmp_path, "model: [\n  C: 1\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_config("urgency", path)
    assert str(path) in str(error.value)


def test_top_level_must_be_a_mapping_and_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config("urgency", write(tmp_path, "- seed\n- 3\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config("urgency", tmp_path / "missing.yaml")


def test_an_empty_file_means_the_defaults(tmp_path):
    assert load_config("urgency", write(tmp_path, "# nothing yet\n")) == load_config("urgency")


def test_a_task_section_that_is_not_a_mapping_is_a_config_error(tmp_path):
    path = write(tmp_path, "tasks:\n  urgency: 5\n")
    with pytest.raises(ConfigError) as error:
        load_config("urgency", path)
    assert str(path) in str(error.value)


def test_a_tasks_list_error_names_the_file(tmp_path):
    path = write(tmp_path, "tasks: [urgency]\n")
    with pytest.raises(ConfigError, match="tasks") as error:
        load_config("urgency", path)
    assert str(path) in str(error.value)


def test_an_unknown_task_section_is_a_config_error(tmp_path):
    path = write(tmp_path, "tasks:\n  urgncy:\n    model: {C: 2.0}\n")
    with pytest.raises(ConfigError, match="urgncy"):
        load_config("urgency", path)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config("urgency", write(tmp_path, "model: {C: 1.5}\n"))
    again = TrainConfig.model_validate(yaml.safe_load(config_to_yaml(config)))
    assert again == config


def test_deep_merge_does_not_change_its_inputs():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    override = {"a": {"b": 10}, "e": {"f": 1}}
    merged = deep_merge(base, override)
    assert merged == {"a": {"b": 10, "c": 2}, "d": 3, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}
