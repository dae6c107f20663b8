"""Finetune a causal LM on a classification or SFT task, keep the best-by-validation model.

Used for the expert (final) models and for retraining the base on a selection: same code, so
the two are comparable by construction.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .device import autocast, device_of, to_device
from .errors import UserError
from .formats import encode_classification, encode_lm, label_token_ids, lm_targets
from .models import final_hidden, output_matrix
from .progress import tqdm
from .specs import FinetuneSpec
from .trainable import parse_trainable, prepare

CLASSIFICATION_LOSSES = ("label_masked", "full_vocab")
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig(FinetuneSpec):
    """One finetuning run: the config's `finetune` settings (``FinetuneSpec``) and the task."""

    task_type: str = "classification"  # classification | sft
    num_classes: int = 0
    eval_batch_size: int = 128

    def validate(self) -> None:
        if self.task_type not in ("classification", "sft"):
            raise UserError(f"task type must be 'classification' or 'sft', got {self.task_type!r}.")
        if self.task_type == "classification":
            if self.loss not in CLASSIFICATION_LOSSES:
                raise UserError(f"loss must be one of {CLASSIFICATION_LOSSES}, got {self.loss!r}.")
            if self.num_classes < 2:
                raise UserError("a classification task needs at least 2 classes.")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        parse_trainable(self.trainable)


def make_optimizer(params, cfg: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """``fused``: one kernel per step (7.7x faster on SmolLM2's 28M-entry head on the Intel
    Xeon); used where the trunk is frozen, so ``trainable: all`` keeps its exact numbers."""
    options = {"fused": True} if fused else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **options)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **options)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def label_logits(model, batch, label_ids: torch.Tensor, full_vocab: bool) -> torch.Tensor:
    """Logits at the label position only (B×C or B×V): no B×T×V tensor is ever built."""
    batch = to_device(batch, device_of(model))
    hidden = final_hidden(model, batch.input_ids, batch.attention_mask)
    h = hidden[torch.arange(hidden.shape[0], device=hidden.device), batch.label_pos]
    weight = output_matrix(model)
    return h @ (weight.T if full_vocab else weight[label_ids.to(weight.device)].T)


def classification_loss(model, batch, labels, label_ids, loss: str, reduction="mean"):
    """Cross-entropy at the label position; returns (loss, predicted class)."""
    labels, label_ids = labels.to(device_of(model)), label_ids.to(device_of(model))
    if loss == "label_masked":
        logits = label_logits(model, batch, label_ids, full_vocab=False)
        return F.cross_entropy(logits, labels, reduction=reduction), logits.argmax(-1)
    logits = label_logits(model, batch, label_ids, full_vocab=True)
    out = F.cross_entropy(logits, label_ids[labels], reduction=reduction)
    return out, logits[:, label_ids].argmax(-1)


def lm_loss(model, batch, reduction="mean"):
    """Next-token cross-entropy; ``reduction='sum'`` returns (total, token count)."""
    batch = to_device(batch, device_of(model))
    if getattr(model, "_w2d_trunk", None) is not None:  # the top on cached trunk states
        hidden = final_hidden(model, batch.input_ids, batch.attention_mask)
        logits = hidden @ output_matrix(model).T
    else:
        with autocast(batch.input_ids.device):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 up, f64 kept
    targets, valid = lm_targets(batch)
    per_token = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)
    per_token = per_token * valid
    if reduction == "sum":
        return per_token.sum(), valid.sum()
    return per_token.sum() / valid.sum().clamp(min=1)


def _batches(n: int, size: int, order: np.ndarray | None = None):
    idx = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield idx[start : start + size]


@torch.no_grad()
def evaluate(model, tokenizer, texts: list[str], labels, cfg: TrainConfig) -> dict:
    """Mean loss, accuracy and balanced accuracy (classification), or loss and perplexity over
    all tokens (SFT). Balanced accuracy (mean recall over the classes present) is reported
    because an imbalanced test split rewards predicting its big classes."""
    was_training = model.training
    model.eval()
    total, count, correct = 0.0, 0, 0
    preds: list[torch.Tensor] = []
    if cfg.task_type == "classification":
        label_ids = torch.tensor(label_token_ids(tokenizer, cfg.num_classes))
        y_all = torch.tensor(np.asarray(labels), dtype=torch.long)  # a copy: may be read-only
        for sel in _batches(len(texts), cfg.eval_batch_size):
            batch = encode_classification(
                tokenizer, [texts[i] for i in sel], cfg.max_length, cfg.truncate
            )
            y = y_all[sel]
            loss, pred = classification_loss(model, batch, y, label_ids, cfg.loss, "sum")
            total += float(loss)
            count += len(sel)
            correct += int((pred.cpu() == y).sum())
            preds.append(pred.cpu())
        result = {
            "loss": total / max(count, 1),
            "acc": correct / max(count, 1),
            "balanced_acc": balanced_accuracy(
                y_all.numpy(), torch.cat(preds).numpy() if preds else np.zeros(0)
            ),
        }
    else:
        for sel in _batches(len(texts), cfg.eval_batch_size):
            batch = encode_lm(tokenizer, [texts[i] for i in sel], cfg.max_length)
            loss_sum, n_tok = lm_loss(model, batch, "sum")
            total += float(loss_sum)
            count += int(n_tok)
        mean = total / max(count, 1)
        result = {"loss": mean, "ppl": math.exp(min(mean, 50.0))}
    model.train(was_training)
    return result


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Macro recall over the classes that occur in ``labels`` (NaN for no labels)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.unique(labels)
    if classes.size == 0:
        return float("nan")
    return float(np.mean([(predictions[labels == c] == c).mean() for c in classes]))


def _is_better(current: dict, best: dict | None, task_type: str) -> bool:
    if best is None:
        return True
    if task_type == "classification" and current["acc"] != best["acc"]:
        return current["acc"] > best["acc"]
    return current["loss"] < best["loss"]


def finetune(
    model,
    tokenizer,
    train: tuple[list[str], np.ndarray | None],
    val: tuple[list[str], np.ndarray | None],
    cfg: TrainConfig,
    seed: int,
    progress: bool = True,
):
    """Train the parameters ``cfg.trainable`` names (all, head, top:N); evaluate on val each
    epoch; return the best-by-val model and history.

    Model selection is on validation only (accuracy, ties broken by loss; SFT: loss). Early
    stopping after ``patience`` epochs without improvement (None: run all epochs).
    """
    cfg.validate()
    texts, labels = train
    if len(texts) == 0:
        raise UserError("the training set is empty; check the selection or the task size.")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    label_ids = (
        torch.tensor(label_token_ids(tokenizer, cfg.num_classes))
        if cfg.task_type == "classification"
        else None
    )
    rows = label_ids.tolist() if label_ids is not None and cfg.loss == "label_masked" else None
    trainable = prepare(model, cfg.trainable, rows, decays=cfg.weight_decay > 0)
    frozen = parse_trainable(cfg.trainable).freezes
    opt = make_optimizer(trainable.parameters, cfg, fused=frozen)
    y_all = torch.as_tensor(np.array(labels), dtype=torch.long) if label_ids is not None else None
    best, best_state, stale, history = None, None, 0, []
    steps_per_epoch = math.ceil(len(texts) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps_per_epoch, disable=not progress, desc="finetune")
    try:
        for epoch in range(cfg.epochs):
            trainable.train_mode()  # again after each evaluation, which ends in train()
            train_loss = 0.0
            for sel in _batches(len(texts), cfg.batch_size, rng.permutation(len(texts))):
                chunk = [texts[i] for i in sel]
                if label_ids is not None:
                    batch = encode_classification(tokenizer, chunk, cfg.max_length, cfg.truncate)
                    loss, _ = classification_loss(model, batch, y_all[sel], label_ids, cfg.loss)
                else:
                    loss = lm_loss(model, encode_lm(tokenizer, chunk, cfg.max_length))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                trainable.after_step()
                train_loss += float(loss.detach()) * len(sel)
                bar.update(1)
            scores = evaluate(model, tokenizer, val[0], val[1], cfg)
            scores.update(epoch=epoch + 1, train_loss=train_loss / len(texts))
            history.append(scores)
            bar.set_postfix(val_loss=f"{scores['loss']:.3f}")
            if _is_better(scores, best, cfg.task_type):
                best, best_state, stale = scores, _snapshot(model, frozen), 0
            else:
                stale += 1
                if cfg.patience is not None and stale >= cfg.patience:
                    break
    finally:
        bar.close()
        trainable.close()
    model.load_state_dict(best_state, strict=not frozen)
    model.eval()
    return model, {"best_epoch": best["epoch"], "history": history}


def _snapshot(model, frozen: bool) -> dict:
    """The weights to come back to: all of them, or only those that train when the trunk is
    frozen (a copy of SmolLM2's whole state is 540 MB per improving epoch)."""
    if not frozen:
        return copy.deepcopy(model.state_dict())
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
