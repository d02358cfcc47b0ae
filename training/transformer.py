"""Fitting the transformer kinds: pure functions (tickets and config in, a fitted model out).

- ``embedding``: frozen encoder, mean-pooled sentence embeddings, a logistic-regression head.
- ``finetune``: the whole encoder with a linear head, trained with AdamW, linear
  warm-up and decay, dynamic padding and early stopping on validation loss.
- ``ensemble``: one or more transformers (``transformer.ensemble_of``, each with
  its own encoder if wanted) and the TF-IDF model, probabilities averaged with the
  weights that score best on validation (one member at 1.0 when mixing does not help).

Every decision (early stopping, temperature, ensemble weights, ONNX agreement) is
taken on a validation slice carved from the TRAINING tickets
(``transformer.validation_fraction``); the caller's held-out split is never seen.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from features.encoders import embed_texts, length_ordered_batches, limit_cpu_threads, load_encoder, load_tokenizer, resolve_encoder, tokenize, torch_device
from features.transformer_predictor import (
    EnsembleClassifier,
    TextNetwork,
    TransformerClassifier,
    model_texts,
    run_torch,
    softmax,
)
from training.config import TrainConfig

#: Turns texts into sentence embeddings; the benchmarks pass one that caches to disk.
logger = logging.getLogger("nightdesk.training")
Embedder = Callable[[list[str]], np.ndarray]
WEIGHT = "__sample_weight__"


@dataclass(frozen=True)
class Carved:
    """Training tickets split into the part a model is fitted on and a validation slice."""

    fit: pd.DataFrame
    validation: pd.DataFrame


def carve_validation(train: pd.DataFrame, task: str, fraction: float, seed: int) -> Carved:
    """A stratified validation slice of the training tickets (random when a class is too small)."""
    labels = train[task].astype(str)
    rows = max(len(labels.unique()), int(round(len(train) * fraction)))
    stratify = labels if labels.value_counts().min() >= 2 and rows >= labels.nunique() else None
    fit, validation = train_test_split(train, test_size=rows, random_state=seed, stratify=stratify)
    return Carved(fit, validation)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the validation log loss of ``softmax(logits / T)``."""

    def nll(log_t: float) -> float:
        p = softmax(logits / math.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    return float(math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


def label_indices(values: pd.Series, labels: tuple[str, ...]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.asarray([index[str(v)] for v in values], dtype=np.int64)


def fit_transformer_model(train: pd.DataFrame, task: str, config: TrainConfig, *,
                          sample_weight: np.ndarray | None = None, embedder: Embedder | None = None):
    """Fit ``config.model_type`` (embedding, finetune or ensemble) on ``train``."""
    kinds = {"embedding": fit_embedding, "finetune": fit_finetune, "ensemble": fit_ensemble}
    if config.model_type not in kinds:
        raise ValueError(f"model_type {config.model_type!r} is not a transformer kind ({', '.join(kinds)})")
    return kinds[config.model_type](with_weights(train, sample_weight), task, config, embedder=embedder)


def with_weights(train: pd.DataFrame, sample_weight: np.ndarray | None) -> pd.DataFrame:
    """The tickets with their sample weights as a column, so carving a validation slice keeps them aligned."""
    weighted = train.copy()
    weighted[WEIGHT] = 1.0 if sample_weight is None else np.asarray(sample_weight, dtype=float)
    return weighted


def weights_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[WEIGHT].to_numpy(dtype=float) if WEIGHT in frame.columns else np.ones(len(frame))


# ---------------------------------------------------------------------------------- embedding


def fit_embedding(train: pd.DataFrame, task: str, config: TrainConfig, *, embedder: Embedder | None = None,
                  carved: Carved | None = None) -> TransformerClassifier:
    t = config.transformer
    _check_classes(train, task)
    limit_cpu_threads(t.threads)
    carved = carved or carve_validation(train, task, t.validation_fraction, config.seed)
    labels = tuple(sorted(train[task].astype(str).unique()))
    model = _empty_model(task, "embedding", labels, config)
    model.network = TextNetwork(load_encoder(t.encoder)).to(torch_device()).eval()
    model.tokenizer = load_tokenizer(t.encoder)
    embed = embedder or (lambda texts: embed_texts(model.network.encoder, model.tokenizer, texts,
                                                   max_length=t.max_length, batch_size=64))
    fit_texts, _ = model_texts(carved.fit, config.max_text_chars)
    val_texts, _ = model_texts(carved.validation, config.max_text_chars)
    head = LogisticRegression(C=t.head_C, max_iter=2000, class_weight=t.class_weight)
    head.fit(embed(fit_texts), carved.fit[task].astype(str).to_numpy(), sample_weight=weights_of(carved.fit))
    if tuple(head.classes_) != labels:
        raise ValueError(f"{task}: a class is missing from the fitting part of the training data")
    model.head = head
    return _finish(model, val_texts, label_indices(carved.validation[task], labels), config,
                   val_embeddings=embed(val_texts), calibration_texts=fit_texts)


# ---------------------------------------------------------------------------------- finetune


def fit_finetune(train: pd.DataFrame, task: str, config: TrainConfig, *, embedder: Embedder | None = None,
                 carved: Carved | None = None) -> TransformerClassifier:
    del embedder  # fine-tuning changes the encoder: cached embeddings do not apply
    t = config.transformer
    _check_classes(train, task)
    limit_cpu_threads(t.threads)
    torch.manual_seed(config.seed)
    carved = carved or carve_validation(train, task, t.validation_fraction, config.seed)
    labels = tuple(sorted(train[task].astype(str).unique()))
    model = _empty_model(task, "finetune", labels, config)
    model.tokenizer = load_tokenizer(t.encoder)
    device = torch_device()
    network = freeze_lower_layers(TextNetwork(load_encoder(t.encoder), len(labels)), t.frozen_layers).to(device)
    fit_texts, _ = model_texts(carved.fit, config.max_text_chars)
    val_texts, _ = model_texts(carved.validation, config.max_text_chars)
    y_fit = label_indices(carved.fit[task], labels)
    y_val = label_indices(carved.validation[task], labels)
    model.network = train_network(network, model.tokenizer, fit_texts, y_fit, val_texts, y_val, config,
                                  sample_weight=weights_of(carved.fit)).eval()
    return _finish(model, val_texts, y_val, config, calibration_texts=fit_texts)


def freeze_lower_layers(network: TextNetwork, layers: int) -> TextNetwork:
    """Freeze the token embeddings and the lowest ``layers`` encoder layers (0: train everything).

    On a CPU the backward pass is most of a step's cost; gradients then stop at
    the first trained layer, and the upper layers (which adapt most) still learn.
    """
    if layers <= 0:
        return network
    encoder = network.encoder
    if not (hasattr(encoder, "embeddings") and hasattr(getattr(encoder, "encoder", None), "layer")):
        raise ValueError(f"transformer.frozen_layers needs a BERT-style encoder; {type(encoder).__name__} is not")
    blocks = list(encoder.embeddings.parameters())
    for layer in encoder.encoder.layer[:layers]:
        blocks += list(layer.parameters())
    for parameter in blocks:
        parameter.requires_grad_(False)
    return network


def train_network(network: TextNetwork, tokenizer, texts: list[str], y: np.ndarray, val_texts: list[str],
                  y_val: np.ndarray, config: TrainConfig, sample_weight: np.ndarray | None = None) -> TextNetwork:
    """AdamW with linear warm-up and decay; keeps the weights with the lowest validation loss.

    Validation runs ``evaluations_per_epoch`` times an epoch; training stops after
    ``patience`` evaluations without improvement (or at ``max_steps``).
    """
    t = config.transformer
    generator = np.random.default_rng(config.seed)
    batches_per_epoch = math.ceil(len(texts) / t.batch_size)
    total_steps = batches_per_epoch * t.epochs if t.max_steps is None else min(t.max_steps, batches_per_epoch * t.epochs)
    head_params = list(network.head.parameters())
    head_ids = {id(p) for p in head_params}
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in network.parameters() if id(p) not in head_ids and p.requires_grad],
          "lr": t.learning_rate},
         {"params": head_params, "lr": t.head_learning_rate}],
        weight_decay=t.weight_decay,
    )
    warmup = max(1, int(total_steps * t.warmup_fraction))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup))))
    loss_fn = torch.nn.CrossEntropyLoss(weight=_class_weights(y, len(network.head.weight), t.class_weight),
                                        reduction="none")
    sample_weight = np.ones(len(texts), dtype=np.float32) if sample_weight is None else sample_weight.astype(np.float32)
    evaluate_every = max(1, batches_per_epoch // t.evaluations_per_epoch)
    best_loss, best_state, stale, step = math.inf, None, 0, 0
    device = next(network.parameters()).device
    lengths = np.asarray([len(text) for text in texts])
    while step < total_steps:
        network.train()
        for rows in shuffled_length_groups(lengths, t.batch_size, generator):
            batch = {k: torch.from_numpy(v).to(device) for k, v in tokenize(tokenizer, [texts[i] for i in rows], t.max_length).items()}
            per_ticket = loss_fn(network(**batch), torch.from_numpy(y[rows]).to(device))
            weights = torch.from_numpy(sample_weight[rows]).to(device)
            loss = (per_ticket * weights).sum() / weights.sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step % evaluate_every == 0 or step == total_steps:
                val_loss = validation_loss(network, tokenizer, val_texts, y_val, t.max_length)
                logger.info("fine-tuning step %d/%d: validation loss %.4f", step, total_steps, val_loss)
                network.train()
                if val_loss < best_loss - 1e-4:
                    best_loss, stale = val_loss, 0
                    best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
                else:
                    stale += 1
                if stale > t.patience:
                    step = total_steps
            if step >= total_steps:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    return network


def shuffled_length_groups(lengths: np.ndarray, batch_size: int, generator: np.random.Generator,
                           group_batches: int = 50) -> list[np.ndarray]:
    """Random batches of similar-length texts: shuffle, sort within groups of 50 batches, shuffle the batches.

    Dynamic padding then pads each batch only to its own longest text, which on a
    CPU saves a large share of the compute; the order stays random across epochs.
    """
    order = generator.permutation(len(lengths))
    group = batch_size * group_batches
    batches = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


def validation_loss(network: TextNetwork, tokenizer, texts: list[str], y: np.ndarray, max_length: int) -> float:
    network.eval()
    logits = network_outputs(network, tokenizer, texts, max_length)
    p = softmax(logits)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def network_outputs(network: TextNetwork, tokenizer, texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """The network's outputs in input order, computed in batches of similar length."""
    outputs = None
    for rows in length_ordered_batches(texts, batch_size):
        values = run_torch(network, tokenize(tokenizer, [texts[i] for i in rows], max_length))
        if outputs is None:
            outputs = np.zeros((len(texts), values.shape[1]), dtype=np.float32)
        outputs[rows] = values
    return outputs if outputs is not None else np.zeros((0, 0), dtype=np.float32)


def _class_weights(y: np.ndarray, n_labels: int, mode: str | None):
    if mode is None:
        return None
    counts = np.bincount(y, minlength=n_labels).astype(np.float32)
    return torch.from_numpy(len(y) / (n_labels * np.clip(counts, 1, None)))


# ---------------------------------------------------------------------------------- ensemble


def fit_ensemble(train: pd.DataFrame, task: str, config: TrainConfig, *, embedder: Embedder | None = None) -> EnsembleClassifier:
    """The transformer members (``transformer.ensemble_of``) and the TF-IDF model, mixed with the best validation weights.

    Every member is fitted on the same fitting part; the weights are chosen on the
    validation slice. ``embedder`` (cached embeddings) serves only members that use
    the config's own encoder.
    """
    from training.pipelines import fit_classifier

    train = train if WEIGHT in train.columns else with_weights(train, None)
    carved = carve_validation(train, task, config.transformer.validation_fraction, config.seed)
    members = []
    for member in config.transformer.ensemble_members():
        member_config = config.with_transformer(encoder=member.encoder)
        fit = fit_embedding if member.kind == "embedding" else fit_finetune
        own_encoder = resolve_encoder(member.encoder) == resolve_encoder(config.transformer.encoder)
        members.append(fit(train, task, member_config, embedder=embedder if own_encoder else None, carved=carved))
    tfidf = fit_classifier(carved.fit, task, config, sample_weight=weights_of(carved.fit))
    return ensemble_from([*members, tfidf], carved.validation, task)


def ensemble_from(members: Sequence, validation: pd.DataFrame, task: str) -> EnsembleClassifier:
    """The fitted members (transformers and one TF-IDF model) mixed with the weights and temperature
    that fit ``validation`` best."""
    labels = tuple(members[0].labels)
    if any(tuple(m.labels) != labels for m in members):
        raise ValueError(f"{task}: a class is missing from the fitting part of the training data")
    y_val = label_indices(validation[task], labels)
    probabilities = [m.predict_proba(validation) for m in members]
    weights = choose_ensemble_weights(probabilities, y_val)
    ensemble = EnsembleClassifier(task=task, members=tuple(members), weights=weights)
    mixed = ensemble.combine(probabilities)
    return replace(ensemble, temperature=fit_temperature(np.log(np.clip(mixed, 1e-12, None)), y_val))


def weight_grid(members: int, steps: int) -> np.ndarray:
    """Every weight vector for ``members`` members in multiples of ``1 / steps`` that sums to 1.

    Rows in lexicographic order, highest first weight first (2 members: [1, 0], [0.9, 0.1], ...).
    """
    def compositions(total: int, parts: int):
        if parts == 1:
            yield (total,)
            return
        for first in range(total, -1, -1):
            for rest in compositions(total - first, parts - 1):
                yield (first, *rest)

    return np.asarray(list(compositions(steps, members)), dtype=float) / steps


def choose_ensemble_weights(probabilities: Sequence[np.ndarray], y: np.ndarray, steps: int = 10) -> tuple[float, ...]:
    """Per member, the weight of the mix with the best validation macro-F1 (log loss breaks ties).

    The weights are multiples of ``1 / steps`` summing to 1 (66 mixes for three
    members at the default 0.1). A single member weighted 1 is among them, so a mix
    is chosen only when it beats every member alone on validation.
    """
    stacked = np.stack(probabilities)  # [members, tickets, classes]
    rows = np.arange(len(y))

    def score(weights: np.ndarray) -> tuple[float, float]:
        mixed = np.tensordot(weights, stacked, axes=1)
        f1 = f1_score(y, mixed.argmax(axis=1), average="macro", labels=np.arange(mixed.shape[1]), zero_division=0)
        log_loss = -np.log(np.clip(mixed[rows, y], 1e-12, None)).mean()
        return round(float(f1), 6), -float(log_loss)

    best = max(weight_grid(len(probabilities), steps), key=score)
    return tuple(round(float(w), 6) for w in best)  # 0.3, not 0.30000000000000004


def choose_ensemble_weight(transformer_proba: np.ndarray, tfidf_proba: np.ndarray, y: np.ndarray) -> float:
    """The transformer's weight in a two-member mix (``choose_ensemble_weights`` for two)."""
    return choose_ensemble_weights([transformer_proba, tfidf_proba], y)[0]


# ---------------------------------------------------------------------------------- shared


def _check_classes(train: pd.DataFrame, task: str) -> None:
    labels = train[task].astype(str)
    if labels.nunique() < 2:
        raise ValueError(f"{task}: training data has a single class ({labels.iloc[0]!r}); need at least two")
    smallest = labels.value_counts()
    if smallest.min() < 2:
        raise ValueError(f"every class needs at least 2 training examples; {smallest.idxmin()!r} has {smallest.min()}")


def _empty_model(task: str, kind: str, labels: tuple[str, ...], config: TrainConfig) -> TransformerClassifier:
    t = config.transformer
    return TransformerClassifier(
        task=task, kind=kind, labels=labels, encoder_source=resolve_encoder(t.encoder), max_length=t.max_length,
        max_text_chars=config.max_text_chars, explain_max_tickets=t.explain_max_tickets,
    )


def _finish(model: TransformerClassifier, val_texts: list[str], y_val: np.ndarray, config: TrainConfig,
            val_embeddings: np.ndarray | None = None, calibration_texts: list[str] | None = None) -> TransformerClassifier:
    """Temperature on validation logits, then the ONNX int8 export if it agrees with PyTorch.

    ``calibration_texts`` (training texts, never the validation slice) set the
    activation smoothing of the int8 export.
    """
    if val_embeddings is not None:
        from features.transformer_predictor import head_logits

        logits = head_logits(model.head, val_embeddings)
    else:
        logits = model.logits(val_texts)
    model.temperature = fit_temperature(logits, y_val)
    if config.transformer.onnx:
        try_onnx(model, val_texts, config.transformer.onnx_min_agreement,
                 calibration_texts=(calibration_texts or [])[:CALIBRATION_TEXTS])
    return model


# ---------------------------------------------------------------------------------- ONNX int8

#: Training texts whose activations set the smoothing scales (more changes the scales little).
CALIBRATION_TEXTS = 512
#: SmoothQuant's migration strength: the share of each input channel's range moved into the weights.
#: 0.8 gave the int8 sentence embeddings closest to PyTorch's on BANKING77 and airline tweets (0.5-1.0 tried).
SMOOTHING_ALPHA = 0.8


@dataclass(frozen=True)
class QuantisationPlan:
    """Which weight MatMuls are quantised to int8; the rest stay float."""

    name: str
    keep_float: Callable[[str, torch.nn.Linear], bool]


#: Tried in order, fastest first; the first whose labels agree with PyTorch is used.
#: The feed-forward down-projection (e.g. 1536 -> 384, it reads the GELU output) is
#: the largest single source of int8 error in MiniLM; keeping it float costs ~40 % of the speed.
QUANTISATION_PLANS = (
    QuantisationPlan("all weight MatMuls", lambda name, linear: False),
    QuantisationPlan("feed-forward down-projections in float",
                     lambda name, linear: name.startswith("encoder.") and linear.in_features > linear.out_features),
)


def try_onnx(model: TransformerClassifier, val_texts: list[str], min_agreement: float,
             calibration_texts: list[str] | None = None) -> None:
    """Switch ``model`` to an int8 ONNX network when it agrees with PyTorch on ``min_agreement`` of labels.

    The plans of ``QUANTISATION_PLANS`` are tried fastest first; the first that
    agrees is used, else the model stays on PyTorch and the note gives the
    last plan's agreement.
    """
    torch_labels = model.proba_from_texts(val_texts).argmax(axis=1)
    for plan in QUANTISATION_PLANS:
        try:
            onnx_bytes = export_int8_onnx(model.network.cpu(), model.tokenizer, model.max_length,
                                          calibration_texts=calibration_texts, keep_float=plan.keep_float)
        except Exception as error:  # noqa: BLE001 - any exporter failure means: stay on PyTorch, and say why
            model.backend, model.onnx_session = "torch", None
            model.backend_note = f"ONNX export failed: {type(error).__name__}: {error}"[:500]
            return
        model.use_onnx(onnx_bytes)
        model.backend = "onnx"
        agreement = float((model.proba_from_texts(val_texts).argmax(axis=1) == torch_labels).mean()) if val_texts else 1.0
        model.onnx_agreement = agreement
        if agreement >= min_agreement:
            model.backend_note = f"ONNX int8 agreed with PyTorch on {agreement:.4f} of validation labels ({plan.name})"
            return
        model.backend, model.onnx_session = "torch", None
        model.backend_note = (f"ONNX int8 agreed with PyTorch on {agreement:.4f} of validation labels "
                              f"(< {min_agreement}; {plan.name})")


class SmoothedLinear(torch.nn.Module):
    """``linear(x)`` computed as ``(x / s) @ (s * W)``: the same in float, friendlier to int8.

    Dynamic int8 quantisation gives a MatMul's input one scale per tensor, so a few
    wide input channels (MiniLM has them) squeeze all others into a few levels.
    Dividing each input channel by ``s`` and multiplying the weight's matching input
    column by ``s`` moves that range into the weights, which are quantised per
    channel (SmoothQuant, Xiao et al. 2023). Used only for the export.
    """

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("inverse_scale", (1.0 / scale).to(linear.weight.dtype))
        self.linear = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(linear.weight * scale)
            if linear.bias is not None:
                self.linear.bias.copy_(linear.bias)

    def forward(self, x):
        return self.linear(x * self.inverse_scale)


def smoothed_copy(network: TextNetwork, tokenizer, texts: list[str], max_length: int,
                  alpha: float = SMOOTHING_ALPHA) -> TextNetwork:
    """A copy of ``network`` whose Linear layers are ``SmoothedLinear``, scaled from ``texts``' activations.

    Per input channel j: ``s_j = max|x_j| ** alpha / max|W_j| ** (1 - alpha)``.
    """
    network = copy.deepcopy(network).eval()
    linears = {name: module for name, module in network.named_modules() if isinstance(module, torch.nn.Linear)}
    ranges: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module, inputs, output):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0)
            ranges[name] = torch.maximum(ranges[name], x) if name in ranges else x
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in linears.items()]
    try:
        for rows in length_ordered_batches(texts, 64):
            run_torch(network, tokenize(tokenizer, [texts[i] for i in rows], max_length))
    finally:
        for handle in handles:
            handle.remove()
    for name, linear in linears.items():
        if name not in ranges:  # never reached by the texts (cannot happen for a plain encoder)
            continue
        weight_range = linear.weight.detach().abs().amax(dim=0).clamp(min=1e-5)
        scale = (ranges[name].clamp(min=1e-5).pow(alpha) / weight_range.pow(1 - alpha)).clamp(min=1e-5)
        parent, _, attribute = name.rpartition(".")
        setattr(network.get_submodule(parent) if parent else network, attribute, SmoothedLinear(linear, scale))
    return network


def onnx_scope(module_name: str) -> str:
    """The node-name prefix torch's exporter gives a module's operators ("encoder.layer.0.output" ->
    "/encoder/layer.0/output/"): list indices stay joined to their list's name."""
    parts: list[str] = []
    for part in module_name.split("."):
        if part.isdigit() and parts:
            parts[-1] += f".{part}"
        else:
            parts.append(part)
    return "/" + "/".join(parts) + "/"


def export_int8_onnx(network: TextNetwork, tokenizer, max_length: int, *, calibration_texts: list[str] | None = None,
                     keep_float: Callable[[str, torch.nn.Linear], bool] | None = None, **quantise_options) -> bytes:
    """The network exported to ONNX (dynamic batch and length) and dynamically quantised to int8.

    By default only MatMuls with a weight operand are quantised, per output channel:
    the word embeddings (Gather) and the attention-score products stay float.
    With ``calibration_texts`` the Linear inputs are smoothed first (``smoothed_copy``);
    ``keep_float(name, linear)`` names Linear layers left in float; ``quantise_options``
    override ``quantize_dynamic``'s arguments (the benchmarks compare variants).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales: per-tensor int8 moved MiniLM's sentence embeddings
    # enough to flip ~20 % of a 10-class head's labels. Quantising the embedding
    # tables (Gather) too saves file size, not time, and cost agreement.
    options = {"weight_type": QuantType.QInt8, "per_channel": True, "op_types_to_quantize": ["MatMul"],
               **quantise_options}

    network = network.eval()
    float_scopes = [onnx_scope(name) for name, module in network.named_modules()
                    if isinstance(module, torch.nn.Linear) and keep_float and keep_float(name, module)]
    if calibration_texts:
        network = smoothed_copy(network, tokenizer, calibration_texts, max_length)
    example = {k: torch.from_numpy(v) for k, v in tokenize(tokenizer, ["an example ticket", "another one, longer"], max_length).items()}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # The tracer warns about shape checks it freezes (they hold for any padded
        # batch) and the quantiser logs advice on root: the agreement check is the real test.
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            plain, quantised = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
            torch.onnx.export(
                network, (example["input_ids"], example["attention_mask"]), str(plain),
                input_names=["input_ids", "attention_mask"], output_names=["scores"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "scores": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
            matmuls = [node.name for node in onnx.load(str(plain), load_external_data=False).graph.node
                       if node.op_type == "MatMul"]
            excluded = [name for name in matmuls if any(name.startswith(scope) for scope in float_scopes)]
            if float_scopes and not excluded:
                raise ValueError(f"no exported MatMul matches the layers to keep in float ({float_scopes[:2]} ...)")
            quantize_dynamic(str(plain), str(quantised), nodes_to_exclude=excluded, **options)
            return quantised.read_bytes()
        finally:
            logging.disable(logging.NOTSET)
