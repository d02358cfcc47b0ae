"""training.pipelines: calibration strategy, per-task defaults and fitting several tasks at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedShuffleSplit

from features.predictor import linear_weights
from training.config import ModelConfig, TrainConfig, load_config
from training.pipelines import build_pipeline, calibration_split, fit_classifier, fit_classifiers


def test_small_data_is_calibrated_by_cross_validation():
    labels = pd.Series(["a"] * 50 + ["b"] * 50)
    assert calibration_split(labels, ModelConfig(calibration_folds=3), seed=1) == {"cv": 3, "ensemble": False}


def test_large_data_is_calibrated_on_one_held_out_slice():
    labels = pd.Series(["a"] * 600 + ["b"] * 400)
    model = ModelConfig(calibration_cv_max_rows=500, calibration_holdout_rows=200)
    split = calibration_split(labels, model, seed=1)
    assert split["ensemble"] is True
    assert isinstance(split["cv"], StratifiedShuffleSplit)
    ((train, held_out),) = split["cv"].split(np.zeros(len(labels)), labels)
    assert len(held_out) == 200 and len(train) == 800


def test_a_class_with_one_example_is_refused_on_either_path():
    labels = pd.Series(["a"] * 99 + ["b"])
    for model in (ModelConfig(), ModelConfig(calibration_cv_max_rows=10)):
        with pytest.raises(ValueError, match="at least 2 training examples"):
            calibration_split(labels, model, seed=1)


def test_the_held_out_path_gives_a_working_explained_model(tickets):
    config = load_config("urgency")
    config = config.model_copy(update={"model": config.model.model_copy(update={"calibration_cv_max_rows": 500})})
    model = fit_classifier(tickets.iloc[:1000], "urgency", config)
    answer = model.predict_frame(tickets.iloc[1000:1050])
    assert len(model.pipeline.named_steps["classifier"].calibrated_classifiers_) == 1
    assert answer["top_features"].map(len).gt(0).mean() > 0.5


def test_the_packaged_category_model_is_a_joint_multi_class_svm(tickets):
    classifier = build_pipeline("category", load_config("category")).named_steps["classifier"]
    assert classifier.estimator.multi_class == "crammer_singer"


@pytest.mark.parametrize("categories", [["billing", "technical"], None], ids=["binary", "multi-class"])
def test_crammer_singer_weights_explain_every_class(tickets, categories):
    frame = tickets if categories is None else tickets[tickets["category"].isin(categories)]
    model = fit_classifier(frame.iloc[:600], "category", load_config("category"))
    weights = linear_weights(model.pipeline.named_steps["classifier"])
    assert weights.shape == (len(model.labels), len(model.feature_names))


def test_metadata_weight_scales_the_metadata_columns(tickets):
    def metadata_values(weight: float) -> np.ndarray:
        config = load_config("urgency")
        features = config.features.model_copy(update={"metadata_weight": weight})
        pipeline = build_pipeline("urgency", TrainConfig.model_validate({**config.model_dump(), "features": features}))
        columns = pipeline.named_steps["features"]
        matrix = columns.fit_transform(tickets.iloc[:200])
        metadata = [i for i, name in enumerate(columns.get_feature_names_out()) if not name.startswith("text__")]
        assert len(metadata) >= 10  # one-hot channel and tier, the clock columns
        return matrix[:, metadata].toarray()

    np.testing.assert_allclose(metadata_values(0.5), 0.5 * metadata_values(1.0))


def test_fit_classifiers_fits_each_task_with_its_own_config(tickets):
    train = tickets.iloc[:500]
    models = fit_classifiers(train, ["category", "sentiment"], n_jobs=2)
    assert set(models) == {"category", "sentiment"}
    for task, model in models.items():
        assert model.task == task
        assert set(model.labels) == set(train[task])
    # sentiment's packaged config has no metadata columns
    assert not any(name.startswith("channel_") for name in models["sentiment"].feature_names)


def test_text_feature_settings_reach_the_text_transformer():
    text = build_pipeline("sentiment", load_config("sentiment")).named_steps["features"].transformers[0][1]
    assert text.mask_mentions is True and text.word_ngram_range == tuple(load_config("sentiment").features.word_ngram_range)
    plain = load_config("category").model_copy(update={"features": load_config("category").features.model_copy(
        update={"mask_mentions": False})})
    assert build_pipeline("category", plain).named_steps["features"].transformers[0][1].mask_mentions is False
