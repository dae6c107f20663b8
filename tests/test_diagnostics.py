"""Regime diagnostics, paired statistics, balanced accuracy and balanced tasks."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from weights2data.alignment import (
    checkpoint_cosines,
    class_counts,
    cosine,
    selection_alignment,
    selection_sum,
)
from weights2data.cli import main
from weights2data.data.splits import task_splits
from weights2data.diagnostics import (
    accuracy,
    body_drift,
    head_body_split,
    layer_drift,
    probe_accuracy,
    truth_gradient_sum,
)
from weights2data.errors import UserError
from weights2data.losses import make_loss
from weights2data.models import LM, load_model, output_matrix
from weights2data.models.arch import layer_of
from weights2data.report.cells import Metric
from weights2data.report.diagnostics import ordering_check, write_diagnostics
from weights2data.report.paired import paired_rows
from weights2data.stats import paired_difference
from weights2data.train import TrainConfig, balanced_accuracy

from . import oracles
from .conftest import SENTENCES, save_finetuned_pair

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1] * 4)
FINETUNE = {"max_length": 16, "truncate": "left", "loss": "label_masked"}


# --------------------------------------------------------------------------- statistics


def test_paired_difference_by_hand():
    # differences 1, 2, 4: mean 7/3, std 1.5275, t(0.975, 2) = 4.3027 -> half-width 3.7946
    out = paired_difference({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert out["mean"] == pytest.approx(7 / 3)
    assert out["ci"] == pytest.approx(4.302653 * np.std([1, 2, 4], ddof=1) / math.sqrt(3))
    assert not out["significant"] and out["low"] < 0 < out["high"]
    steady = paired_difference({0: 1.0, 1: 1.1, 2: 0.9}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert steady["significant"] and steady["low"] > 0
    # only the seeds both ran count; one seed gives no interval and no verdict
    one = paired_difference({0: 1.0, 5: 3.0}, {0: 0.5, 7: 0.0})
    assert one["seeds"] == 1 and one["mean"] == 0.5 and not one["significant"]
    assert math.isnan(one["ci"])


def test_paired_rows_direction_for_lower_is_better():
    records = pd.DataFrame(
        {
            "model": ["m"] * 6,
            "strategy": ["select"] * 3 + ["random"] * 3,
            "seed": [0, 1, 2] * 2,
            "ppl": [10.0, 11.0, 12.0, 12.0, 13.0, 14.5],
        }
    )
    row = paired_rows(records, "model", "ppl", higher_is_better=False).iloc[0]
    assert row["mean_diff"] == pytest.approx(-(2 + 2 + 2.5) / 3)
    assert bool(row["better"]) and bool(row["significant"])


def test_gap_closed_is_the_share_of_random_to_expert_over_shared_seeds():
    acc = {"random": [0.5, 0.6, 0.7], "select_pre": [0.6, 0.6, 0.8], "expert": [0.9, 0.8, 0.9]}
    records = pd.DataFrame(
        [
            {"task": "t", "strategy": s, "seed": seed, "acc": v}
            for s, values in acc.items()
            for seed, v in enumerate(values)
        ]
        + [{"task": "t", "strategy": "select", "seed": 3, "acc": 0.9}]  # no shared seed
    )
    rows = paired_rows(records, "task", "acc").set_index(["strategy", "reference"])
    # (0.6667 - 0.6) / (0.8667 - 0.6): by hand
    assert rows.loc[("select_pre", "random"), "gap_closed"] == pytest.approx(0.2 / 0.8)
    assert math.isnan(rows.loc[("select_pre", "select"), "gap_closed"])  # not against Random
    assert math.isnan(rows.loc[("select", "random"), "gap_closed"])  # no seed in common
    no_expert = paired_rows(records[records.strategy != "expert"], "task", "acc")
    assert no_expert["gap_closed"].isna().all()


def test_balanced_accuracy_by_hand():
    labels = np.array([0, 0, 0, 1])
    assert balanced_accuracy(labels, np.zeros(4, dtype=int)) == 0.5  # plain accuracy 0.75
    assert balanced_accuracy(labels, np.array([0, 0, 1, 1])) == pytest.approx((2 / 3 + 1) / 2)
    assert math.isnan(balanced_accuracy(np.zeros(0), np.zeros(0)))


def test_evaluate_reports_the_counted_accuracies(pair, tiny_tokenizer):
    from weights2data.train import evaluate

    final = load_model(pair / "final")
    labels = np.roll(LABELS, 3)  # not what it learned: some texts right, classes unevenly
    out = evaluate(final, tiny_tokenizer, SENTENCES, labels, TrainConfig(num_classes=3))
    logits = oracles.label_logits_alone(final, tiny_tokenizer, SENTENCES, 3, max_length=32)
    predictions = logits.argmax(-1).numpy()
    balanced = oracles.balanced_accuracy_by_hand(labels, predictions, 3)
    assert out["balanced_acc"] == pytest.approx(balanced, rel=1e-12)
    assert out["acc"] == pytest.approx(np.mean(predictions == labels), rel=1e-12)
    assert abs(balanced - out["acc"]) > 0.01  # the two accuracies differ on this split
    expect = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels)).item()
    assert out["loss"] == pytest.approx(expect, rel=1e-5)


# --------------------------------------------------------------------------- balanced tasks


def _labelled_table(counts: dict[int, int]) -> pd.DataFrame:
    rows = [
        {"text": f"{split} {label} {i}", "label": label, "split": split}
        for split in ("train", "val", "test")
        for label, n in counts.items()
        for i in range(n)
    ]
    table = pd.DataFrame(rows)
    table["label_name"] = table["label"].astype(str)
    table["group"] = table["text"]
    return table


def test_balanced_task_takes_equal_rows_per_class():
    table = _labelled_table({0: 40, 1: 10, 2: 20})
    task = {"type": "classification", "train_size": 24, "val_size": 6, "test_size": 9}
    plain = task_splits(table, task, 0, 0)["train"]["label"].value_counts().to_dict()
    assert plain == {0: 14, 2: 7, 1: 3}  # the split's own proportions
    splits = task_splits(table, dict(task, balance=True), 0, 0)
    assert splits["train"]["label"].value_counts().to_dict() == {0: 8, 1: 8, 2: 8}
    assert splits["test"]["label"].value_counts().to_dict() == {0: 3, 1: 3, 2: 3}
    with pytest.raises(UserError, match="multiple of 3"):
        task_splits(table, dict(task, balance=True, train_size=25), 0, 0)
    with pytest.raises(UserError, match="class 1 has 10"):
        task_splits(table, dict(task, balance=True, train_size=33), 0, 0)


# --------------------------------------------------------------------------- alignment


def test_selection_alignment_matches_numpy():
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(20, 2, 5)).astype(np.float32)
    target, truth = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    selection = pd.DataFrame({"index": [3, 7, 1], "pseudolabel": [0, 2, 2]})
    S = grads[[3, 7, 1]].astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(selection_sum(grads, selection["index"]), S)
    out = selection_alignment(grads, target, truth, selection)
    expect = np.mean(
        [S[c] @ truth[c] / np.linalg.norm(S[c]) / np.linalg.norm(truth[c]) for c in (0, 1)]
    )
    assert out["cos_sel_truth"] == pytest.approx(expect)
    assert out["cos_sel_delta"] == pytest.approx(np.mean(checkpoint_cosines(S, target)))
    assert class_counts(selection, 4) == [1, 0, 2, 0]
    assert math.isnan(cosine(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="past the gradient store"):
        selection_alignment(grads, target, truth, pd.DataFrame({"index": [20]}))


# --------------------------------------------------------------------------- expert side


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_tokenizer):
    """A tiny two-block base and a real 3-class finetune of it, saved as HF folders."""
    return save_finetuned_pair(tmp_path_factory.mktemp("pair"), tiny_tokenizer, LABELS, n_layer=2)


def test_truth_gradient_sum_is_the_sum_of_exact_gradients(pair, tiny_tokenizer):
    """S_true against per-text gradients from torch.func, Δ against the weights themselves."""
    spec = {"k": 64, "projection": "auto", "checkpoints": 1}
    task = {"dataset": "truth", "type": "classification"}
    total, target, scaled = truth_gradient_sum(
        pair / "base",
        pair / "final",
        (SENTENCES, LABELS),
        (dict(spec, precondition="rms"), task, FINETUNE),
        3,
        0,
    )
    base, final = load_model(pair / "base"), load_model(pair / "final")
    grads = oracles.label_gradients(base, tiny_tokenizer, SENTENCES, LABELS, 3)
    np.testing.assert_allclose(total[0], grads.sum(0), rtol=1e-5, atol=1e-6)
    # the Adam-aware sum: each text's gradient over the true texts' per-coordinate RMS
    rms = np.sqrt(np.square(grads).mean(axis=0))
    np.testing.assert_allclose(scaled[0], (grads / rms).sum(0), rtol=1e-4, atol=1e-5)
    delta = oracles.label_delta(base, final, tiny_tokenizer, 3)
    np.testing.assert_allclose(target[0], delta, rtol=1e-6, atol=1e-8)
    # two checkpoints: θ0, then halfway to θf; the same Δ in both rows
    total2, target2, none = truth_gradient_sum(
        pair / "base",
        pair / "final",
        (SENTENCES, LABELS),
        (dict(spec, checkpoints=2, precondition="none"), task, FINETUNE),
        3,
        0,
    )
    assert none is None and total2.shape == (2, total.shape[1])
    np.testing.assert_allclose(total2[0], total[0], rtol=1e-6)
    halfway = oracles.interpolate(base, final, 0.5)
    grads_half = oracles.label_gradients(halfway, tiny_tokenizer, SENTENCES, LABELS, 3)
    np.testing.assert_allclose(total2[1], grads_half.sum(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(total2[1], total2[0], rtol=1e-3)
    np.testing.assert_allclose(target2[1], target2[0])


def test_head_body_split_of_an_unchanged_pair(pair, tiny_tokenizer):
    base = load_model(pair / "base")
    loss = make_loss("label_masked", tiny_tokenizer, 3, 16, "left")
    out = head_body_split(
        LM(base),
        LM(copy.deepcopy(base)),
        tiny_tokenizer,
        (SENTENCES, LABELS),
        loss,
        train=(SENTENCES, LABELS),
    )
    same = out["base_head_base_body"]
    assert out["final_head_final_body"] == same == out["base_head_final_body"]
    assert out["head_change_base_body"] == pytest.approx(np.mean(LABELS == 0))  # ΔW = 0: argmax 0
    assert out["state_cos"] == pytest.approx(1.0)
    assert 0.0 <= out["probe_base"] <= 1.0


def test_head_body_split_of_a_finetune(pair, tiny_tokenizer):
    base, final = load_model(pair / "base"), load_model(pair / "final")
    loss = make_loss("label_masked", tiny_tokenizer, 3, 16, "left")
    out = head_body_split(LM(base), LM(final), tiny_tokenizer, (SENTENCES, LABELS), loss)
    assert out["final_head_final_body"] > 0.5  # the finetune learned its training texts
    assert out["state_cos"] < 1.0 and "probe_base" not in out


def test_accuracy_and_probe_by_hand():
    rows = np.array([[1.0, 0.0], [0.0, 1.0]])
    states = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]])
    assert accuracy(rows, states, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    assert probe_accuracy(x[:100], y[:100], x[100:], y[100:], 2) >= 0.95


def test_layer_drift_names_the_moved_block(pair):
    base = load_model(pair / "base")
    moved = copy.deepcopy(base)
    with torch.no_grad():
        for name, p in moved.named_parameters():
            if name.startswith("transformer.h.1."):
                p.mul_(1.1)
    drift = {row["layer"]: row["relative_drift"] for row in layer_drift(base, moved)}
    assert drift["transformer.h.1"] == pytest.approx(0.1, rel=1e-6)
    assert drift["transformer.h.0"] == 0.0 and drift["transformer.wte"] == 0.0
    assert 0.0 < body_drift(base, moved) < 0.1
    head_only = copy.deepcopy(base)
    with torch.no_grad():
        output_matrix(head_only).mul_(2.0)
    assert body_drift(base, head_only) == 0.0  # the tied output matrix is not body
    assert layer_of("model.layers.3.mlp.up_proj.weight", "model.layers") == "model.layers.3"
    assert layer_of("lm_head.weight", "model.layers") == "lm_head"


def test_diagnose_cli(pair, tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    pd.DataFrame({"text": SENTENCES * 2, "label": np.concatenate([LABELS, LABELS])}).to_csv(
        truth, index=False
    )
    out = tmp_path / "report.json"
    argv = ["diagnose", "--base", str(pair / "base"), "--final", str(pair / "final")]
    assert main(argv + ["--truth", str(truth), "--max-length", "16", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "transformer.h.1" in printed and "head / body split" in printed
    assert "cos(S_true, Δ)" in printed and "verdict:" in printed
    report = json.loads(out.read_text())
    assert -1.0 <= report["cos_truth_delta"] <= 1.0 and report["head_body"]["n_eval"] > 0
    assert main(argv) == 0  # without --truth: drift only
    unlabelled = tmp_path / "plain.csv"
    pd.DataFrame({"text": SENTENCES}).to_csv(unlabelled, index=False)
    assert main(argv + ["--truth", str(unlabelled)]) == 2
    assert "needs a label for every text" in capsys.readouterr().err
    assert main(["diagnose", "--base", str(pair / "base"), "--final", str(pair / "base")]) == 2
    assert "equals the base" in capsys.readouterr().err


# --------------------------------------------------------------------------- the table


def _store(folder, grads, target):
    folder.mkdir(parents=True)
    grads.astype(np.float32).tofile(folder / "grads.f32")
    target.astype(np.float32).tofile(folder / "target.f32")
    N, C, D = grads.shape
    (folder / "meta.json").write_text(json.dumps({"N": N, "C": C, "D": D}))


def _diagnostics_spec(tmp_path):
    rng = np.random.default_rng(1)
    experts, runs = [], []
    for seed in range(3):
        grads = rng.normal(size=(30, 1, 6))
        truth = grads[:10].sum(axis=0)  # the "true" texts are rows 0-9
        target = truth + rng.normal(scale=0.1, size=truth.shape)
        store = tmp_path / f"store{seed}"
        _store(store, grads, target)
        np.save(tmp_path / f"sum{seed}.npy", truth)
        regime = tmp_path / f"regime{seed}.json"
        regime.write_text(
            json.dumps(
                {
                    "cos_truth_delta": cosine(truth, target),
                    "body_drift": 0.1,
                    "num_classes": 2,
                    "head_body": {"final_head_final_body": 0.9, "probe_base": 0.6},
                }
            )
        )
        experts.append({"group": "t", "seed": seed, "regime": str(regime)})
        picks = {"select": list(range(8)), "random": list(range(12, 20))}
        for strategy, idx in picks.items():
            sel = tmp_path / f"{strategy}{seed}.parquet"
            pd.DataFrame({"index": idx, "pseudolabel": [0, 1] * 4}).to_parquet(sel)
            acc = 0.8 + 0.01 * seed if strategy == "select" else 0.6
            retrain = tmp_path / f"{strategy}{seed}.json"
            retrain.write_text(json.dumps({"test_acc": acc, "test_balanced_acc": acc - 0.1}))
            runs.append(
                {
                    "group": "t",
                    "strategy": strategy,
                    "seed": seed,
                    "selection": str(sel),
                    "retrain": str(retrain),
                    "store": str(store),
                    "regime": str(regime),
                    "truth_sum": str(tmp_path / f"sum{seed}.npy"),
                }
            )
    return {"group": "task", "experts": experts, "runs": runs}


def test_diagnostics_table(tmp_path):
    paths = write_diagnostics(_diagnostics_spec(tmp_path), tmp_path / "diag")
    md = paths["md"].read_text()
    assert "| t | 0.99" in md and "holds" in md  # Δ ≈ S_true here
    assert "4/4; 4/4; 4/4" in md  # class counts per seed
    assert "t: 3 of 3" in md  # cos(S_sel, S_true) ordered SELECT above Random in every seed
    assert "better, significant" in md
    tidy = pd.read_csv(paths["csv"])
    assert len(tidy) == 3 + 6 and set(tidy.strategy) == {"expert", "select", "random"}
    sel = tidy[tidy.strategy == "select"]
    rnd = tidy[tidy.strategy == "random"]
    assert (sel["cos_sel_truth"].to_numpy() > rnd["cos_sel_truth"].to_numpy()).all()


def test_ordering_check_counts_disagreements():
    runs = pd.DataFrame(
        {
            "group": ["t"] * 4,
            "strategy": ["select", "random"] * 2,
            "seed": [0, 0, 1, 1],
            "cos_sel_truth": [0.5, 0.4, 0.5, 0.4],
            "acc": [0.7, 0.6, 0.5, 0.6],  # seed 1: SELECT aligned better but scored lower
        }
    )
    row = ordering_check(runs, "acc").iloc[0]
    assert (row["agree"], row["seeds"]) == (1, 2)


def test_regime_step_writes_the_numbers_and_s_true(pair, tmp_path, tiny_tokenizer):
    from weights2data.data.files import write_dataset

    rows = [
        {"text": f"{s} {split} {i}", "label": int(LABELS[i % len(LABELS)]), "split": split}
        for split in ("train", "val", "test")
        for i, s in enumerate(SENTENCES)
    ]
    table = pd.DataFrame(rows)
    table["label_name"] = table["label"].map({0: "a", 1: "b", 2: "c"})
    table["group"] = table["text"]
    write_dataset(table, tmp_path / "task.parquet")
    task = {"type": "classification", "train_size": 24, "val_size": 6, "test_size": 12}
    spec = {"k": 64, "projection": "auto", "checkpoints": 2}
    out, total = tmp_path / "regime.json", tmp_path / "regime.npy"
    argv = ["regime", "--base", str(pair / "base"), "--final", str(pair / "final")]
    argv += ["--dataset", str(tmp_path / "task.parquet"), "--task", json.dumps(task)]
    argv += ["--finetune", json.dumps(FINETUNE), "--spec", json.dumps(spec), "--seed", "0"]
    argv += ["--keys", '{"task": "t"}', "--out", str(out), "--sum-out", str(total)]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["task"] == "t" and record["num_classes"] == 3 and record["n_true"] == 24
    # S_true of the train split under θ0 and halfway to θf, by torch.func; Δ from the weights
    train = task_splits(table, task, 0, 0)["train"]
    base, final = load_model(pair / "base"), load_model(pair / "final")
    delta = oracles.label_delta(base, final, tiny_tokenizer, 3)
    grads = [
        oracles.label_gradients(
            model, tiny_tokenizer, train["text"].tolist(), train["label"].to_numpy(), 3
        )
        for model in (base, oracles.interpolate(base, final, 0.5))
    ]
    sums = [g.sum(0) for g in grads]
    np.testing.assert_allclose(np.load(total), np.stack(sums), rtol=1e-5, atol=1e-6)
    cosines = [oracles.cosine(s, delta) for s in sums]
    np.testing.assert_allclose(record["cos_truth_delta_per_checkpoint"], cosines, rtol=1e-5)
    assert record["cos_truth_delta"] == pytest.approx(sum(cosines) / 2, rel=1e-5)
    # an Adam expert (the default optimizer): the same in Adam's geometry, D over both θ's
    rms = np.sqrt(np.mean([np.square(g).mean(axis=0) for g in grads], axis=0))
    scaled = [oracles.cosine((g / rms).sum(0), delta) for g in grads]
    assert record["cos_truth_delta_rms"] == pytest.approx(sum(scaled) / 2, rel=1e-4)
    assert record["head_body"]["n_eval"] == 12 and 0 <= record["head_body"]["probe_base"] <= 1


def test_paired_table_files(tmp_path):
    from weights2data.report.paired import write_paired_table

    records = pd.DataFrame(
        {
            "task": ["a"] * 6 + ["b"] * 2,
            "strategy": ["select", "random"] * 3 + ["select", "random"],
            "seed": [0, 0, 1, 1, 2, 2, 0, 0],
            "acc": [0.50, 0.40, 0.52, 0.41, 0.49, 0.40, 0.3, 0.4],
        }
    )
    rows = paired_rows(records, "task", "acc", scale=100.0)
    paths = write_paired_table(rows, "task", [Metric("acc", "Acc (points)", 1)], tmp_path / "p")
    md = paths["md"].read_text()
    # a: differences 10, 11, 9 -> mean 10.0, CI 10 ± 2.48; b: one seed, no interval
    row_a = "| a | SELECT − Random | Acc (points) | 10.0 | [7.5, 12.5] | 3 | better, significant |"
    assert row_a in md
    assert "| b | SELECT − Random | Acc (points) | -10.0 | — | 1 | worse, not significant |" in md
    assert len(pd.read_csv(paths["csv"])) == 2
