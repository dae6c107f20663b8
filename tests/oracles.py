"""Independent references for the numbers the pipeline computes, used as test oracles.

Each runs a text alone (no padding) through the Hugging Face model in float64 and derives what
it needs from the model's own logits: ``torch.func`` differentiates the loss with respect to the
output matrix in its output role only (the tied input embedding keeps its weights), so these
share no code with the closed form, the store or the training loop they check.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad

from weights2data.formats import label_token_ids


def _output_name(model) -> str:
    head = model.get_output_embeddings()
    return next(name for name, module in model.named_modules() if module is head) + ".weight"


def _kept_ids(tokenizer, text: str, max_length: int, truncate: str) -> torch.Tensor:
    ids = tokenizer.encode(text, add_special_tokens=False)
    keep = max_length - 1
    return torch.tensor([ids[-keep:] if truncate == "left" else ids[:keep]])


def label_logits_alone(
    model, tokenizer, texts, num_classes: int, max_length: int = 16, truncate: str = "left"
) -> torch.Tensor:
    """N×C float64 logits of the label letters at each text's last kept token."""
    model = copy.deepcopy(model).double().eval()
    label_ids = label_token_ids(tokenizer, num_classes)
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = _kept_ids(tokenizer, text, max_length, truncate)
            rows.append(model(input_ids=ids).logits[0, -1, label_ids])
    return torch.stack(rows)


def label_gradients(
    model,
    tokenizer,
    texts,
    labels,
    num_classes: int,
    max_length: int = 16,
    truncate: str = "left",
    full_vocab: bool = False,
) -> np.ndarray:
    """N×(C·d) float64: d loss / d W[label rows] of the label-masked cross-entropy, per text;
    with ``full_vocab`` N×(V·d): d loss / d W of the cross-entropy over the whole vocabulary."""
    model = copy.deepcopy(model).double().eval().requires_grad_(False)
    name = _output_name(model)
    weight = model.get_output_embeddings().weight.detach().clone()
    label_ids = torch.tensor(label_token_ids(tokenizer, num_classes))

    def loss(w: torch.Tensor, ids: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {name: w}, args=(ids,), tie_weights=False).logits
        if full_vocab:
            return F.cross_entropy(logits[0, -1][None], label_ids[label][None])
        return F.cross_entropy(logits[0, -1, label_ids][None], label[None])

    rows = []
    for text, label in zip(texts, labels, strict=True):
        ids = _kept_ids(tokenizer, text, max_length, truncate)
        g = grad(loss)(weight, ids, torch.tensor(int(label)))
        rows.append((g if full_vocab else g[label_ids]).flatten().detach().numpy())
    return np.stack(rows)


def label_delta(base, final, tokenizer, num_classes: int) -> np.ndarray:
    """θ0 − θf of the output matrix's label rows, flattened (C·d), float64."""
    label_ids = label_token_ids(tokenizer, num_classes)
    w0 = base.get_output_embeddings().weight.detach().double()
    wf = final.get_output_embeddings().weight.detach().double()
    return (w0[label_ids] - wf[label_ids]).flatten().numpy()


def interpolate(base, final, t: float):
    """A copy of ``base`` with every parameter at θ0 + t (θf − θ0), set from the state dicts."""
    out = copy.deepcopy(base)
    fs = final.state_dict()
    out.load_state_dict({k: v + t * (fs[k] - v) for k, v in base.state_dict().items()})
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def balanced_accuracy_by_hand(labels, predictions, num_classes: int) -> float:
    """Mean recall over the classes present, from a confusion matrix counted one row at a time."""
    confusion = [[0] * num_classes for _ in range(num_classes)]
    for y, p in zip(labels, predictions, strict=True):
        confusion[int(y)][int(p)] += 1
    recalls = [row[c] / sum(row) for c, row in enumerate(confusion) if sum(row) > 0]
    return sum(recalls) / len(recalls)


def retrain_by_hand(base_dir, tokenizer, selection, dataset, specs, seed: int = 0) -> dict:
    """The retraining recipe written out: the picked rows with their pseudolabels, finetuned
    best-by-val on the val split, then accuracies counted from the model's own logits.

    ``specs`` = (task, finetune, retrain). Returns best_epoch and the test and val accuracies.
    """
    import dataclasses

    import pandas as pd

    from weights2data.data.files import read_dataset
    from weights2data.data.splits import num_classes_of, task_splits
    from weights2data.experts import train_config
    from weights2data.models import load_model
    from weights2data.train import finetune

    task, spec, retrain = specs
    table = read_dataset(dataset)
    classes = num_classes_of(table)
    splits = task_splits(table, task, seed, 0)
    spec = dataclasses.replace(spec, epochs=retrain.max_epochs, patience=retrain.patience)
    chosen = pd.read_parquet(selection)
    val = (splits["val"]["text"].tolist(), splits["val"]["label"].to_numpy())
    model, info = finetune(
        load_model(base_dir),
        tokenizer,
        (chosen["text"].tolist(), chosen["pseudolabel"].to_numpy()),
        val,
        train_config(task, spec, classes),
        seed,
        progress=False,
    )
    out = {"best_epoch": info["best_epoch"]}
    for name in ("test", "val"):
        part = splits[name]
        logits = label_logits_alone(
            model, tokenizer, part["text"].tolist(), classes, spec.max_length, spec.truncate
        )
        predictions, truth = logits.argmax(-1).numpy(), part["label"].to_numpy()
        out[f"{name}_acc"] = float(np.mean(predictions == truth))
        out[f"{name}_balanced_acc"] = balanced_accuracy_by_hand(truth, predictions, classes)
    return out
