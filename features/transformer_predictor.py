"""Saved transformer models with the same public interface as ``TicketClassifier``.

``TransformerClassifier`` (kinds ``embedding`` and ``finetune``) and
``EnsembleClassifier`` (one or more transformers and the TF-IDF model,
probabilities averaged with validation-chosen weights) answer ``labels``, ``predict_proba(frame)`` and ``predict_frame(frame)``
exactly like the TF-IDF model, so MLflow, serving and evaluation treat every
kind alike.

The network (encoder weights, tokenizer and, when it passed its agreement check,
an int8 ONNX file) lives in a folder beside the pickled object: ``save_artifacts``
writes it, ``attach`` loads it. Pickling keeps only the small parts (labels, head,
temperature, thresholds), so MLflow stores the weights as plain files.

Explanations: a transformer kind's class scores are a linear head on the mean of
the encoder's token vectors, so the predicted class's score splits exactly into one
share per token (the token's vector dotted with the class's head weights, centred
over the classes since softmax ignores a shift shared by all; divided by the token
count). A word's share is the sum of its sub-word tokens'; the words with the
largest positive shares are reported. One extra PyTorch pass over the tickets,
whichever backend scored them. The token vectors are contextual (each depends on
the whole ticket), so a share says how much of the score arrives through that
word's position, not what the score would be without the word; tokens cut off by
``max_length`` were never seen and get none. A head without linear weights, or a
tokenizer without character offsets, falls back to occlusion: each distinct word
removed in turn, one forward pass per word. Either way it runs for requests of at
most ``explain_max_tickets`` tickets (the service's single tickets and small
batches); larger batches get no explanation (empty lists). The ensemble explains
with its TF-IDF side's n-gram weights towards the ensemble's label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from features.encoders import length_ordered_batches, limit_cpu_threads, load_encoder, load_tokenizer, mean_pool, save_encoder, tokenize
from features.predictor import TicketClassifier, normalize_tickets, transform_columns
from features.schema import TEXT_COLUMNS
from features.transformers import join_ticket_text

ENCODER_FOLDER = "encoder"
HEAD_FILE = "head.pt"
ONNX_FILE = "model.int8.onnx"
#: Requirements a logged transformer model adds to the TF-IDF model's.
TRANSFORMER_REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "onnxruntime")
#: Occlusion looks at the first this-many distinct words (one forward pass each).
MAX_OCCLUDED_WORDS = 40
_WORD = re.compile(r"\w[\w'-]*|<[A-Z_]+>")


class TextNetwork(torch.nn.Module):
    """Encoder, mean pooling and an optional linear head: token ids in, one vector per text out.

    Without a head the output is the (L2-normalised) sentence embedding; with one,
    the class logits.
    """

    def __init__(self, encoder, n_labels: int | None = None, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = None if n_labels is None else torch.nn.Linear(encoder.config.hidden_size, n_labels)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = mean_pool(hidden, attention_mask)
        if self.head is None:
            return torch.nn.functional.normalize(pooled, dim=-1)
        return self.head(self.dropout(pooled))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def model_texts(frame: pd.DataFrame, max_text_chars: int | None) -> tuple[list[str], np.ndarray]:
    """The texts the network reads (same cleaning and masking as the TF-IDF model) and truncation flags."""
    tickets, truncated = normalize_tickets(frame, max_text_chars)
    rows = tickets[list(TEXT_COLUMNS)].to_numpy(dtype=object)
    return [join_ticket_text(row) for row in rows], truncated


@dataclass
class TransformerClassifier:
    """A fitted transformer model for one task.

    ``kind="embedding"``: frozen encoder, ``head`` is a scikit-learn linear model on
    the sentence embeddings. ``kind="finetune"``: the network's own linear head
    gives the logits. Either way the probabilities are ``softmax(logits / temperature)``.
    ``backend`` is "onnx" when the int8 ONNX export agreed with PyTorch on
    validation tickets, else "torch" (``backend_note`` says why).
    """

    task: str
    kind: Literal["embedding", "finetune"]
    labels: tuple[str, ...]
    encoder_source: str
    max_length: int = 64
    head: object | None = None
    temperature: float = 1.0
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = 0.5
    max_text_chars: int = 20_000
    top_k_features: int = 5
    explain_max_tickets: int = 32
    batch_size: int = 64
    backend: Literal["torch", "onnx"] = "torch"
    backend_note: str = ""
    onnx_agreement: float | None = None
    network: TextNetwork | None = field(default=None, repr=False)
    tokenizer: object | None = field(default=None, repr=False)
    onnx_session: object | None = field(default=None, repr=False)
    onnx_model: bytes | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ the shared interface

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        texts, _ = model_texts(frame, self.max_text_chars)
        return self.proba_from_texts(texts)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per ticket: label, confidence, needs_review, class probabilities, top features, truncated."""
        texts, truncated = model_texts(frame, self.max_text_chars)
        probabilities = self.proba_from_texts(texts)
        best = probabilities.argmax(axis=1)
        if not texts or len(texts) > self.explain_max_tickets:
            explanations = [[] for _ in texts]
        elif getattr(self.tokenizer, "is_fast", False) and (directions := self.class_directions()) is not None:
            explanations = self.attributed_words(texts, best, directions)
        else:
            explanations = [self.occlusion_words(t, int(c), p[c]) for t, c, p in zip(texts, best, probabilities)]
        return prediction_frame(self, probabilities, explanations, truncated)

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)

    # ------------------------------------------------------------------ scores

    def proba_from_texts(self, texts: list[str]) -> np.ndarray:
        return softmax(self.logits(texts) / self.temperature)

    def logits(self, texts: list[str]) -> np.ndarray:
        outputs = self.network_outputs(texts)
        if self.kind == "finetune":
            return outputs
        return head_logits(self.head, outputs)

    def network_outputs(self, texts: list[str]) -> np.ndarray:
        """The network's output per text (embedding or logits), batched by length, in input order."""
        self._require_network()
        outputs: np.ndarray | None = None
        for rows in length_ordered_batches(texts, self.batch_size):
            batch = tokenize(self.tokenizer, [texts[i] for i in rows], self.max_length)
            values = self._run(batch)
            if outputs is None:
                outputs = np.zeros((len(texts), values.shape[1]), dtype=np.float32)
            outputs[rows] = values
        if outputs is None:
            width = self.network.encoder.config.hidden_size if self.kind == "embedding" else len(self.labels)
            return np.zeros((0, width), dtype=np.float32)
        return outputs

    def _run(self, batch: dict) -> np.ndarray:
        if self.backend == "onnx" and self.onnx_session is not None:
            return self.onnx_session.run(None, batch)[0]
        return run_torch(self.network, batch)

    def class_directions(self) -> np.ndarray | None:
        """Per class, the head weights centred over the classes ([classes, hidden]); None without linear weights."""
        if self.kind == "finetune":
            weights = self.network.head.weight.detach().float().cpu().numpy() if self.network is not None else None
        else:
            weights = getattr(self.head, "coef_", None)
            if weights is not None and len(weights) == 1:  # binary: the scores are [0, s] (``head_logits``)
                weights = np.vstack([np.zeros_like(weights[0]), weights[0]])
        if weights is None or len(weights) != len(self.labels):
            return None
        weights = np.asarray(weights, dtype=np.float64)
        return weights - weights.mean(axis=0)

    def token_vectors(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The encoder's last-layer token vectors [texts, tokens, hidden] (PyTorch), the attention mask
        and each token's character span in its text (special tokens: (0, 0))."""
        self._require_network()
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt", return_token_type_ids=False, return_offsets_mapping=True)
        offsets = encoded.pop("offset_mapping").numpy()
        device = next(self.network.parameters()).device
        with torch.inference_mode():
            hidden = self.network.encoder(**{k: v.to(device) for k, v in encoded.items()}).last_hidden_state
        return hidden.float().cpu().numpy(), encoded["attention_mask"].numpy(), offsets

    def attributed_words(self, texts: list[str], predicted: np.ndarray, directions: np.ndarray) -> list[list[str]]:
        """Per text, the words with the largest positive shares of the predicted class's score
        (``directions``: ``class_directions()``)."""
        hidden, mask, offsets = self.token_vectors(texts)
        shares = np.einsum("bth,bh->bt", hidden, directions[np.asarray(predicted)]) * mask
        return [self._top_words(text, spans, row) for text, spans, row in zip(texts, offsets, shares)]

    def _top_words(self, text: str, spans: np.ndarray, shares: np.ndarray) -> list[str]:
        matches = list(_WORD.finditer(text))
        starts = np.array([m.start() for m in matches])
        by_word: dict[str, float] = {}
        for (start, end), share in zip(spans.tolist(), shares.tolist()):
            if end <= start or not len(starts):
                continue  # a special or padding token
            index = int(np.searchsorted(starts, start, side="right")) - 1
            if index < 0 or start >= matches[index].end():
                continue  # punctuation between words
            word = matches[index].group()
            by_word[word] = by_word.get(word, 0.0) + share
        ranked = sorted(by_word.items(), key=lambda item: -item[1])
        return [word for word, share in ranked[: self.top_k_features] if share > 0]

    def occlusion_words(self, text: str, predicted: int, probability: float) -> list[str]:
        """The words whose removal lowers the predicted class's probability most (largest drop first)."""
        words = list(dict.fromkeys(_WORD.findall(text)))[:MAX_OCCLUDED_WORDS]
        if not words:
            return []
        variants = [re.sub(rf"(?<![\w<]){re.escape(w)}(?![\w>])", " ", text) for w in words]
        drops = probability - self.proba_from_texts(variants)[:, predicted]
        order = np.argsort(-drops)[: self.top_k_features]
        return [words[i] for i in order if drops[i] > 0]

    # ------------------------------------------------------------------ persistence

    def save_artifacts(self, folder: Path) -> Path:
        """Write the tokenizer, encoder weights, head and (when used) the ONNX file into ``folder``."""
        self._require_network()
        folder = Path(folder)
        save_encoder(self.network.encoder, self.tokenizer, folder / ENCODER_FOLDER)
        if self.network.head is not None:
            torch.save(self.network.head.state_dict(), folder / HEAD_FILE)
        if self.backend == "onnx" and self.onnx_model is not None:
            (folder / ONNX_FILE).write_bytes(self.onnx_model)
        return folder

    def attach(self, folder: Path) -> TransformerClassifier:
        """Load the network (and ONNX session when the model uses it) from a ``save_artifacts`` folder."""
        folder = Path(folder)
        limit_cpu_threads()
        encoder = load_encoder(folder / ENCODER_FOLDER)
        network = TextNetwork(encoder, len(self.labels) if self.kind == "finetune" else None)
        if network.head is not None:
            network.head.load_state_dict(torch.load(folder / HEAD_FILE, weights_only=True))
        self.network = network.eval()
        self.tokenizer = load_tokenizer(folder / ENCODER_FOLDER)
        self.onnx_session = None
        if self.backend == "onnx" and (folder / ONNX_FILE).is_file():
            self.use_onnx((folder / ONNX_FILE).read_bytes())
        return self

    def use_onnx(self, model_bytes: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        # Idle threads must not spin: a service holds one session per task beside torch's
        # pool, and spinning threads of one model slowed the next model's single ticket
        # (3 models, one ticket each: p50 64 -> 26 ms without spinning; batches as fast).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.onnx_model = model_bytes
        self.onnx_session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def requirements(self) -> tuple[str, ...]:
        return TRANSFORMER_REQUIREMENTS

    def __getstate__(self) -> dict:
        # The network and sessions travel as files (save_artifacts), not inside the pickle.
        state = dict(self.__dict__)
        for key in ("network", "tokenizer", "onnx_session", "onnx_model"):
            state[key] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _require_network(self) -> None:
        if self.network is None or self.tokenizer is None:
            raise RuntimeError("the transformer network is not loaded: call attach(folder) with its artifacts folder")


@dataclass
class EnsembleClassifier:
    """A weighted average of its members' probabilities, sharpened or softened by ``temperature``.

    ``members``: one TF-IDF model (``TicketClassifier``, whose n-gram weights
    explain the ensemble's label) and one or more ``TransformerClassifier``s;
    ``weights``: one per member, summing to 1. A member weighted 0 is kept (it
    saves and loads with the rest) but never run. Each transformer member's
    network lives in its own sub-folder of the artifacts folder (``member_folders``).
    """

    task: str
    members: tuple
    weights: tuple[float, ...]
    temperature: float = 1.0
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = 0.5
    kind: str = "ensemble"
    member_folders: tuple[str | None, ...] = ()

    def __post_init__(self):
        self.members, self.weights = tuple(self.members), tuple(float(w) for w in self.weights)
        if len(self.weights) != len(self.members) or len(self.members) < 2:
            raise ValueError(f"an ensemble needs two or more members and one weight each "
                             f"({len(self.members)} members, {len(self.weights)} weights)")
        if min(self.weights) < 0 or not np.isclose(sum(self.weights), 1.0):
            raise ValueError(f"ensemble weights must be >= 0 and sum to 1, not {self.weights}")
        if sum(isinstance(m, TicketClassifier) for m in self.members) != 1:
            raise ValueError("an ensemble needs exactly one TF-IDF member (it explains the ensemble's labels)")
        for member in self.members:
            if tuple(member.labels) != tuple(self.members[0].labels):
                raise ValueError(f"the members' labels differ: {self.members[0].labels} vs {member.labels}")
        if not self.member_folders:
            self.member_folders = tuple(None if isinstance(m, TicketClassifier) else f"member-{i}"
                                        for i, m in enumerate(self.members))

    @property
    def tfidf(self) -> TicketClassifier:
        return next(m for m in self.members if isinstance(m, TicketClassifier))

    @property
    def transformers(self) -> list[TransformerClassifier]:
        return [m for m in self.members if not isinstance(m, TicketClassifier)]

    @property
    def transformer(self) -> TransformerClassifier:
        """The first transformer member (what run parameters describe)."""
        return self.transformers[0]

    @property
    def weight(self) -> float:
        """The transformer members' share of the mix (1 - the TF-IDF member's weight)."""
        return 1.0 - sum(w for m, w in zip(self.members, self.weights) if isinstance(m, TicketClassifier))

    @property
    def labels(self) -> tuple[str, ...]:
        return self.tfidf.labels

    @property
    def max_text_chars(self) -> int:
        return self.tfidf.max_text_chars

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.combine(self.member_probabilities(frame))

    def member_probabilities(self, frame: pd.DataFrame, tfidf_proba: np.ndarray | None = None) -> list[np.ndarray | None]:
        """Each member's probabilities (None for a member weighted 0: it is not run)."""
        out = []
        for member, weight in zip(self.members, self.weights):
            if weight == 0:
                out.append(None)
            elif isinstance(member, TicketClassifier) and tfidf_proba is not None:
                out.append(tfidf_proba)
            else:
                out.append(member.predict_proba(frame))
        return out

    def combine(self, probabilities: list[np.ndarray | None]) -> np.ndarray:
        """The weighted average of the members' probabilities (in member order), then the temperature."""
        mixed = sum(w * p for w, p in zip(self.weights, probabilities) if w > 0)
        return softmax(np.log(np.clip(mixed, 1e-12, None)) / self.temperature)

    def predict_labels(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[self.predict_proba(frame).argmax(axis=1)]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        tickets, truncated = normalize_tickets(frame, self.max_text_chars)
        features = transform_columns(self.tfidf.pipeline.named_steps["features"], tickets)
        tfidf_proba = self.tfidf.pipeline.named_steps["classifier"].predict_proba(features)
        probabilities = self.combine(self.member_probabilities(tickets, tfidf_proba))
        # TicketClassifier's n-gram explanation, asked about the ensemble's label.
        explanations = self.tfidf._explain(features, probabilities.argmax(axis=1))
        return prediction_frame(self, probabilities, explanations, truncated)

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)

    def save_artifacts(self, folder: Path) -> Path:
        folder = Path(folder)
        for member, sub in zip(self.members, self.member_folders):
            if sub is not None:
                member.save_artifacts(folder / sub)
        return folder

    def attach(self, folder: Path) -> EnsembleClassifier:
        for member, sub in zip(self.members, self.member_folders):
            if sub is not None:
                member.attach(Path(folder) / sub)
        return self

    def requirements(self) -> tuple[str, ...]:
        return TRANSFORMER_REQUIREMENTS

    def __setstate__(self, state: dict) -> None:
        if "members" not in state:  # saved before ensembles had N members: one transformer (artifacts at the root) + TF-IDF
            weight = state.pop("weight")
            state["members"] = (state.pop("transformer"), state.pop("tfidf"))
            state["weights"] = (weight, 1.0 - weight)
            state["member_folders"] = ("", None)
        self.__dict__.update(state)


def prediction_frame(model, probabilities: np.ndarray, explanations: list[list[str]], truncated: np.ndarray) -> pd.DataFrame:
    best = probabilities.argmax(axis=1)
    labels = [model.labels[i] for i in best]
    confidence = probabilities[np.arange(len(best)), best]
    return pd.DataFrame(
        {
            "label": labels,
            "confidence": confidence.astype(float),
            "needs_review": [bool(c < model.threshold_for(lab)) for c, lab in zip(confidence, labels)],
            "probabilities": [dict(zip(model.labels, map(float, row))) for row in probabilities],
            "top_features": explanations,
            "truncated": truncated,
        }
    )


def head_logits(head, embeddings: np.ndarray) -> np.ndarray:
    """A scikit-learn linear head's class scores; a binary head's single column becomes two."""
    scores = head.decision_function(embeddings)
    if scores.ndim == 1:
        scores = np.column_stack([np.zeros_like(scores), scores])
    return np.asarray(scores, dtype=np.float64)


def run_torch(network: TextNetwork, batch: dict) -> np.ndarray:
    device = next(network.parameters()).device
    with torch.inference_mode():
        tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        return network(**tensors).float().cpu().numpy()
