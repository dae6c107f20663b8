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
from torch import nn

from .errors import UserError
from .formats import Tokenized, batches
from .losses import TaskLoss, make_loss
from .models.lm import LM, ModelLike, as_lm
from .models.regime import Trainable, parse_trainable, prepare
from .progress import tqdm
from .specs import FinetuneSpec

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


def task_loss(tokenizer, cfg: TrainConfig) -> TaskLoss:
    """The loss object this run trains and evaluates with (``losses``)."""
    name = cfg.loss if cfg.task_type == "classification" else "lm"
    return make_loss(name, tokenizer, cfg.num_classes, cfg.max_length, cfg.truncate)


@torch.no_grad()
def evaluate(
    model: ModelLike, tokenizer, texts: list[str] | Tokenized, labels, cfg: TrainConfig
) -> dict:
    """Mean loss, accuracy and balanced accuracy (classification), or loss and perplexity over
    all tokens (SFT). Balanced accuracy (mean recall over the classes present) is reported
    because an imbalanced test split rewards predicting its big classes. ``texts`` may come
    tokenized already (``Encoding.tokenize``), as a finetune's validation split does."""
    lm = as_lm(model) if not isinstance(model, LM) else model
    was_training = lm.module.training
    lm.module.eval()
    loss = task_loss(tokenizer, cfg)
    if not isinstance(texts, Tokenized):
        texts = loss.encoding.tokenize(tokenizer, texts)
    if cfg.task_type == "classification":
        result = _evaluate_classes(lm, loss, (texts, labels), cfg.eval_batch_size)
    else:
        total, count = 0.0, 0
        for sel in batches(len(texts), cfg.eval_batch_size):
            loss_sum, n_tok = loss.batch_loss(lm, texts.batch(sel), None, "sum")
            total += float(loss_sum)
            count += int(n_tok)
        mean = total / max(count, 1)
        result = {"loss": mean, "ppl": math.exp(min(mean, 50.0))}
    lm.module.train(was_training)
    return result


def _evaluate_classes(lm: LM, loss: TaskLoss, data, batch_size: int) -> dict:
    texts, labels = data
    y_all = torch.tensor(np.asarray(labels), dtype=torch.long)  # a copy: may be read-only
    total, correct, preds = 0.0, 0, []
    for sel in batches(len(texts), batch_size):
        batch = texts.batch(sel)
        y = y_all[sel]
        summed, pred = loss.batch_loss(lm, batch, y, "sum")
        total += float(summed)
        correct += int((pred.cpu() == y).sum())
        preds.append(pred.cpu())
    count = max(len(texts), 1)
    predictions = torch.cat(preds).numpy() if preds else np.zeros(0)
    return {
        "loss": total / count,
        "acc": correct / count,
        "balanced_acc": balanced_accuracy(y_all.numpy(), predictions),
    }


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
    model: ModelLike,
    tokenizer,
    train: tuple[list[str], np.ndarray | None],
    val: tuple[list[str], np.ndarray | None],
    cfg: TrainConfig,
    seed: int,
    progress: bool = True,
) -> tuple[LM | nn.Module, dict]:
    """Train the parameters ``cfg.trainable`` names (all, head, top:N); evaluate on val each
    epoch; return the best-by-val model (an ``LM`` given an ``LM``, else the bare module) and
    the history.

    Model selection is on validation only (accuracy, ties broken by loss; SFT: loss). Early
    stopping after ``patience`` epochs without improvement (None: run all epochs).
    """
    cfg.validate()
    lm = as_lm(model)
    _check_regime(lm, cfg.trainable)
    if len(train[0]) == 0:
        raise UserError("the training set is empty; check the selection or the task size.")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    loss = task_loss(tokenizer, cfg)
    rows = list(loss.label_ids) if cfg.loss == "label_masked" and loss.label_ids else None
    trainable = prepare(lm.module, cfg.trainable, rows)
    lm.head_rows = trainable.head_rows
    frozen = parse_trainable(cfg.trainable).freezes
    run = _Run(lm, loss, trainable, make_optimizer(trainable.parameters, cfg, frozen))
    # tokenized once: every epoch and validation pass only pads its batches
    train = (loss.encoding.tokenize(tokenizer, train[0]), train[1])
    val = (loss.encoding.tokenize(tokenizer, val[0]), val[1])
    best, best_state, stale, history = None, None, 0, []
    bar = tqdm(
        total=cfg.epochs * math.ceil(len(train[0]) / cfg.batch_size),
        disable=not progress,
        desc="finetune",
    )
    try:
        for epoch in range(cfg.epochs):
            train_loss = run.epoch(train, rng.permutation(len(train[0])), cfg.batch_size, bar)
            scores = evaluate(lm, tokenizer, val[0], val[1], cfg)
            scores.update(epoch=epoch + 1, train_loss=train_loss)
            history.append(scores)
            bar.set_postfix(val_loss=f"{scores['loss']:.3f}")
            if _is_better(scores, best, cfg.task_type):
                best, best_state, stale = scores, _snapshot(lm.module, trainable, frozen), 0
            else:
                stale += 1
                if cfg.patience is not None and stale >= cfg.patience:
                    break
        _restore(lm.module, trainable, best_state, frozen)
    finally:
        bar.close()
        lm.head_rows = None
        trainable.close()
    lm.module.eval()
    trained = lm if isinstance(model, LM) else lm.module
    return trained, {"best_epoch": best["epoch"], "history": history}


def _check_regime(lm: LM, trainable: str) -> None:
    """A model reading a trunk cache trains exactly the cache's top: another regime would
    leave blocks the cache skips untrained while the record claims them."""
    if lm.cache is not None and lm.regime.name != parse_trainable(trainable).name:
        raise UserError(
            f"the model reads its trunk from {lm.cache.names()} (trainable: {lm.regime.name}) "
            f"but the finetune trains trainable: {trainable}; open it with regime {trainable} "
            "and a cache built for it."
        )


@dataclass
class _Run:
    """What every step of one finetune shares."""

    lm: LM
    loss: TaskLoss
    trainable: object
    opt: torch.optim.Optimizer

    def epoch(self, data, order: np.ndarray, batch_size: int, bar) -> float:
        """One pass over the training texts in ``order``; the mean training loss."""
        texts, labels = data
        y_all = None if labels is None else torch.as_tensor(np.array(labels), dtype=torch.long)
        self.trainable.train_mode()  # again after each evaluation, which ends in train()
        total = 0.0
        for sel in batches(len(texts), batch_size, order):
            batch = texts.batch(sel)
            loss = self.loss.batch_loss(self.lm, batch, None if y_all is None else y_all[sel])
            loss = loss[0] if isinstance(loss, tuple) else loss
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach()) * len(sel)
            bar.update(1)
        return total / len(texts)


def _snapshot(model, trainable: Trainable, frozen: bool):
    """The weights to come back to: all of them, or only those that train when the trunk is
    frozen (a copy of SmolLM2's whole state is 540 MB per improving epoch)."""
    if not frozen:
        return copy.deepcopy(model.state_dict())
    return [p.detach().clone() for p in trainable.parameters]


def _restore(model, trainable: Trainable, state, frozen: bool) -> None:
    """Put the best epoch's weights back (before ``close`` writes split head rows back)."""
    if not frozen:
        model.load_state_dict(state)
        return
    with torch.no_grad():
        for param, saved in zip(trainable.parameters, state, strict=True):
            param.copy_(saved)
