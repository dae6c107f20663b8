"""Regime diagnostics: does the paper's premise hold for this base / final pair?

SELECT assumes that the weight difference Δ = θ0 − θf of the output layer points along the
summed base-model gradient of the expert's true training texts (the paper's first-order
argument). These numbers measure that, and where the expert's skill lives:

- ``cos(S_true, Δ_c)``: the true texts' gradient sum, taken exactly as the store takes a pool
  text's (same loss, projection, checkpoints), against Δ; SELECT's own objective is the mean
  over checkpoints c of cos(S_c, Δ_c), so the same mean is reported;
- the head / body split on the test split: accuracy of (W_final on h_final), (W_base on
  h_final), (W_final on h_base) and (W_final − W_base on h_base), plus a linear probe on the
  base's label-position states (how much a head alone could do with base features);
- the relative drift ‖θf − θ0‖ / ‖θ0‖ per layer, and the mean cosine between base and final
  label-position states (a body that turned far means the head alone cannot explain the skill).

Evaluation side only: these read the true training set and never feed back into selection.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .alignment import checkpoint_cosines, mean_finite
from .atomic import write_json, write_npy
from .data.files import read_dataset
from .data.splits import num_classes_of, task_splits
from .errors import UserError
from .formats import batches
from .gradients.closed_form import head_inputs
from .gradients.pipeline import store_for_labels
from .gradients.store import load_gradient_store
from .losses import LabelMasked, make_loss
from .models.arch import check_same_architecture, find_blocks, layer_of, output_matrix
from .models.folders import load_tokenizer
from .models.lm import LM, ModelLike, ModelRef, open_lm
from .specs import FinetuneSpec, GradientSpec, TaskSpec, parse_spec

PROBE_L2 = 1e-3
PROBE_STEPS = 200
EVAL_BATCH = 128


# --------------------------------------------------------------------------- head / body


@torch.no_grad()
def label_states(lm: LM, tokenizer, texts: Sequence[str], loss: LabelMasked) -> np.ndarray:
    """Final hidden states at the label position (N×d, float64), in batches."""
    parts = [
        head_inputs(lm, tokenizer, [texts[i] for i in sel], None, loss).hidden
        for sel in batches(len(texts), EVAL_BATCH)
    ]
    width = lm.weight.shape[1]
    return torch.cat(parts).double().cpu().numpy() if parts else np.zeros((0, width))


def label_rows(lm: LM, loss: LabelMasked) -> np.ndarray:
    """The C label rows of the output matrix (C×d, float64)."""
    return loss.rows(lm).double().cpu().numpy()


def accuracy(rows: np.ndarray, states: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of argmax over the label logits ``states @ rowsᵀ``."""
    if len(labels) == 0:
        return math.nan
    return float(((states @ rows.T).argmax(axis=1) == labels).mean())


def probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
) -> float:
    """Test accuracy of an L2-regularised multinomial logistic regression (L-BFGS, float64).

    Features are standardised with the training mean and std; the fit is deterministic.
    """
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8
    x = torch.as_tensor((train_x - mean) / std)
    y = torch.as_tensor(np.array(train_y), dtype=torch.long)
    weight = torch.zeros((x.shape[1], num_classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=PROBE_STEPS, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y)
        loss = loss + PROBE_L2 * (weight**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        logits = torch.as_tensor((test_x - mean) / std) @ weight + bias
    return float((logits.argmax(dim=1).numpy() == test_y).mean())


def head_body_split(
    base: LM,
    final: LM,
    tokenizer,
    test: tuple[list[str], np.ndarray],
    loss: LabelMasked,
    train: tuple[list[str], np.ndarray] | None = None,
) -> dict[str, float]:
    """Which part of the finetune carries the skill, on labelled texts ``test`` (read at the
    label position as ``loss`` encodes them).

    ``train`` (the expert's training texts) fits the linear probe on base features; without it
    the probe is skipped.
    """
    texts, labels = test[0], np.asarray(test[1])
    h_base = label_states(base, tokenizer, texts, loss)
    h_final = label_states(final, tokenizer, texts, loss)
    w_base, w_final = label_rows(base, loss), label_rows(final, loss)
    both = np.linalg.norm(h_base, axis=1) * np.linalg.norm(h_final, axis=1)
    state_cos = np.einsum("nd,nd->n", h_base, h_final) / np.where(both > 0, both, np.inf)
    out = {
        "final_head_final_body": accuracy(w_final, h_final, labels),
        "base_head_final_body": accuracy(w_base, h_final, labels),
        "final_head_base_body": accuracy(w_final, h_base, labels),
        "head_change_base_body": accuracy(w_final - w_base, h_base, labels),
        "base_head_base_body": accuracy(w_base, h_base, labels),
        "state_cos": float(state_cos.mean()) if len(texts) else math.nan,
        "n_eval": int(len(texts)),
    }
    if train is not None and len(train[0]):
        features = label_states(base, tokenizer, train[0], loss)
        out["probe_base"] = probe_accuracy(
            features, np.asarray(train[1]), h_base, labels, len(loss.label_ids)
        )
    return out


def layer_drift(base, final) -> list[dict]:
    """‖θf − θ0‖ / ‖θ0‖ per layer, in parameter order (shared parameters counted once)."""
    check_same_architecture(base, final)
    finals = dict(final.named_parameters())
    sums: dict[str, list[float]] = {}
    blocks = find_blocks(base)
    prefix = blocks[0] if blocks else None
    for name, p0 in base.named_parameters():
        diff = (finals[name].detach().double() - p0.detach().double()).pow(2).sum().item()
        entry = sums.setdefault(layer_of(name, prefix), [0.0, 0.0, 0])
        entry[0] += diff
        entry[1] += p0.detach().double().pow(2).sum().item()
        entry[2] += p0.numel()
    return [
        {
            "layer": layer,
            "params": int(n),
            "relative_drift": math.sqrt(d / b) if b > 0 else math.nan,
        }
        for layer, (d, b, n) in sums.items()
    ]


def body_drift(base, final) -> float:
    """Relative drift of every parameter outside the output matrix (the body, pooled)."""
    head = output_matrix(base)
    finals = dict(final.named_parameters())
    diff = norm = 0.0
    for name, p0 in base.named_parameters():
        if p0 is head:
            continue
        diff += (finals[name].detach().double() - p0.detach().double()).pow(2).sum().item()
        norm += p0.detach().double().pow(2).sum().item()
    return math.sqrt(diff / norm) if norm > 0 else math.nan


# --------------------------------------------------------------------------- S_true


class TruthSums(NamedTuple):
    """What ``truth_gradient_sum`` returns."""

    raw: np.ndarray  # S_true, C×D
    target: np.ndarray  # Δ, C×D
    rms: np.ndarray | None  # S_true in the Adam-aware space (None: the store has none)

    def rms_cosine(self) -> float:
        """Mean over checkpoints of cos(S_true ⊘ D, Δ); NaN without an Adam-aware space."""
        if self.rms is None:
            return math.nan
        return mean_finite(checkpoint_cosines(self.rms, self.target))


def truth_gradient_sum(
    base: ModelLike,
    final: ModelLike,
    truth: tuple[list[str], np.ndarray | None],
    specs: tuple[GradientSpec | dict, TaskSpec | dict, FinetuneSpec | dict],
    num_classes: int | None,
    seed: int,
) -> TruthSums:
    """(S_true, Δ, S_true ⊘ D): the true texts' summed gradients (C×D, float64), the store's
    target, and the sum in the Adam-aware space (None when the spec resolves to none).

    Built by the store's own code with the store's spec and seed, so S_true lives in exactly
    the space of the pool's gradients (same projection draw, same checkpoints, same loss).
    D is fitted on the true texts themselves: the RMS Adam saw while it trained the expert,
    so cos(S_true ⊘ D, Δ) asks whether Adam's geometry explains Δ.
    ``truth`` = (texts, labels; None for SFT); ``specs`` = (gradients, task, finetune).
    """
    texts, labels = truth
    spec = parse_spec(GradientSpec, specs[0], "gradients")
    task = parse_spec(TaskSpec, specs[1], "task")
    finetune = parse_spec(FinetuneSpec, specs[2], "finetune")
    labels = np.zeros(len(texts), dtype=np.int64) if labels is None else labels
    frame = pd.DataFrame({"text": texts, "pseudolabel": np.asarray(labels, dtype=np.int64)})
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store_for_labels(
            base,
            final,
            frame,
            store,
            spec,
            finetune,
            task_type=task.type,
            num_classes=num_classes,
            seed=seed,
        )
        grads, target, meta = load_gradient_store(store)
        total = np.asarray(grads, dtype=np.float64).sum(axis=0)
        scaled = None
        if "precondition" in meta:
            pre, _, _ = load_gradient_store(store, preconditioned=True)
            scaled = np.asarray(pre, dtype=np.float64).sum(axis=0)
        return TruthSums(total, np.asarray(target, dtype=np.float64), scaled)


@dataclass(frozen=True)
class RegimeInputs:
    """The models, files and config slices of one regime job (one expert × one store variant);
    ``base`` and ``final`` carry the trunk caches the job reads."""

    base: ModelRef
    final: ModelRef
    dataset_path: Path
    task: TaskSpec
    finetune: FinetuneSpec
    gradients: GradientSpec
    seed: int
    split_seed: int


def regime(inputs: RegimeInputs, out_json: Path, out_sum: Path, keys: dict) -> dict:
    """Every expert-side diagnostic of one expert; writes the JSON and S_true (``.npy``)."""
    table = read_dataset(inputs.dataset_path)
    splits = task_splits(table, inputs.task, inputs.seed, inputs.split_seed)
    is_cls = inputs.task.classification
    num_classes = num_classes_of(table) if is_cls else None
    train = splits["train"]
    base, final = open_lm(inputs.base), open_lm(inputs.final)
    sums = truth_gradient_sum(
        base,
        final,
        (train["text"].tolist(), train["label"].to_numpy() if is_cls else None),
        (inputs.gradients, inputs.task, inputs.finetune),
        num_classes,
        inputs.seed,
    )
    per_c = checkpoint_cosines(sums.raw, sums.target)
    result = dict(
        keys,
        cos_truth_delta=mean_finite(per_c),
        cos_truth_delta_per_checkpoint=per_c,
        cos_truth_delta_rms=sums.rms_cosine(),
        n_true=len(train),
        num_classes=num_classes,
        body_drift=body_drift(base.module, final.module),
        layers=layer_drift(base.module, final.module),
    )
    if is_cls:
        tokenizer = load_tokenizer(inputs.base.path)
        finetune, test = inputs.finetune, splits["test"]
        loss = make_loss(
            "label_masked", tokenizer, num_classes, finetune.max_length, finetune.truncate
        )
        result["head_body"] = head_body_split(
            base,
            final,
            tokenizer,
            (test["text"].tolist(), test["label"].to_numpy()),
            loss,
            train=(train["text"].tolist(), train["label"].to_numpy()),
        )
    write_npy(out_sum, sums.raw)
    write_json(out_json, result)
    return result


def check_pair(base_dir: Path, final_dir: Path) -> tuple[LM, LM]:
    """Open a base and a final model and refuse a pair that cannot be a base and its finetune."""
    base = open_lm(base_dir)
    final = open_lm(ModelRef(Path(final_dir), base=Path(base_dir)))
    check_same_architecture(base.module, final.module)
    pairs = zip(base.module.parameters(), final.module.parameters(), strict=True)
    if not any(bool((p0 != p1).any()) for p0, p1 in pairs):
        raise UserError("the final model equals the base; give a finetune of this base.")
    return base, final
