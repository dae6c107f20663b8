"""The user-facing CLI and the pipeline steps around the engine, on tiny real models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from weights2data.cli import main
from weights2data.models import save_model
from weights2data.specs import FinetuneSpec, GradientSpec, RetrainSpec, TaskSpec

from . import oracles
from .conftest import SENTENCES, save_finetuned_pair

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1] * 4)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_tokenizer):
    """A tiny base and a real 3-class finetune of it, saved as HF folders."""
    root = tmp_path_factory.mktemp("models")
    save_finetuned_pair(root, tiny_tokenizer, LABELS, extra={"metrics": {"num_classes": 3}})
    pool = root / "pool.csv"
    texts = [f"{s} number {i}" for i, s in enumerate(SENTENCES * 2)]
    pd.DataFrame({"body": texts}).to_csv(pool, index=False)
    return root


def _select(root, *extra, out="sel.parquet"):
    """The CLI's select with what the oracles compute pinned (a later flag in ``extra`` wins)."""
    pinned = ["--strategy", "select", "--checkpoints", "1", "--max-length", "32"]
    return main(
        [
            "select",
            *pinned,
            "--truncate",
            "left",
            "--base",
            str(root / "base"),
            "--final",
            str(root / "final"),
            "--pool",
            str(root / "pool.csv"),
            "--text-column",
            "body",
            "--out",
            str(root / out),
            *extra,
        ]
    )


@pytest.mark.parametrize("strategy", ["select", "select_batch", "topk_balanced", "random", "pmin"])
def test_cli_select_writes_k_distinct_rows(checkpoints, strategy):
    assert (
        _select(
            checkpoints,
            "-k",
            "10",
            "--strategy",
            strategy,
            "--batch-size",
            "4",
            out=f"{strategy}.parquet",
        )
        == 0
    )
    picked = pd.read_parquet(checkpoints / f"{strategy}.parquet")
    assert len(picked) == 10 and picked["index"].is_unique
    assert set(picked.columns) >= {"index", "text", "pseudolabel", "score", "rank"}
    assert picked["pseudolabel"].between(0, 2).all()


def test_cli_select_is_deterministic(checkpoints):
    _select(checkpoints, "-k", "12", out="a.parquet")
    _select(checkpoints, "-k", "12", out="b.parquet")
    a, b = (pd.read_parquet(checkpoints / f) for f in ("a.parquet", "b.parquet"))
    pd.testing.assert_frame_equal(a, b)


def test_cli_select_sft_with_sketch(checkpoints):
    assert (
        _select(
            checkpoints, "-k", "5", "--task-type", "sft", "--sketch-dim", "64", out="sft.parquet"
        )
        == 0
    )
    assert len(pd.read_parquet(checkpoints / "sft.parquet")) == 5


def test_cli_select_says_what_it_runs_and_why(checkpoints, capsys):
    """By default the Adam-aware SELECT at C = 2 on 64 tokens cut on the right, said first."""
    args = ["select", "--base", str(checkpoints / "base"), "--final", str(checkpoints / "final")]
    args += ["--pool", str(checkpoints / "pool.csv"), "--text-column", "body", "-k", "6"]
    assert main([*args, "--out", str(checkpoints / "default.parquet")]) == 0
    err = capsys.readouterr().err
    assert "strategy select_pre: the Adam-aware space" in err and "--optimizer is adam" in err
    assert "at 2 points from the base" in err and "64 tokens, cut on the right" in err
    assert err.index("strategy select_pre") < err.index("must be how the final was trained")
    assert main([*args, "--optimizer", "sgd", "--out", str(checkpoints / "sgd.parquet")]) == 0
    assert "the paper's space g (precondition none for sgd)" in capsys.readouterr().err


def test_k_larger_than_pool_is_a_clear_error(checkpoints, capsys):
    assert _select(checkpoints, "-k", "1000") == 2
    err = capsys.readouterr().err
    assert "K=1000" in err and "pool" in err and "Traceback" not in err
    assert not (checkpoints / "sel.parquet").exists()


def test_missing_text_column_is_named(checkpoints, capsys):
    code = main(
        [
            "select",
            "--base",
            str(checkpoints / "base"),
            "--final",
            str(checkpoints / "final"),
            "--pool",
            str(checkpoints / "pool.csv"),
            "-k",
            "3",
            "--out",
            str(checkpoints / "x.parquet"),
        ]
    )
    assert code == 2
    assert "text" in capsys.readouterr().err


def test_missing_input_file_is_named_not_a_traceback(tmp_path, capsys):
    selection = tmp_path / "selections" / "missing.parquet"
    code = main(
        [
            "select-pool",
            "--labels",
            str(selection),
            "--strategy",
            "random",
            "-k",
            "3",
            "--out",
            str(tmp_path / "out.parquet"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "missing.parquet does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_different_architectures_are_refused(checkpoints, tiny_tokenizer, tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tiny_tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    save_model(other, tiny_tokenizer, tmp_path / "llama")
    code = main(
        [
            "select",
            "--base",
            str(checkpoints / "base"),
            "--final",
            str(tmp_path / "llama"),
            "--pool",
            str(checkpoints / "pool.csv"),
            "--text-column",
            "body",
            "-k",
            "3",
            "--out",
            str(tmp_path / "x.parquet"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "GPT2LMHeadModel" in err and "LlamaForCausalLM" in err


def test_identical_models_are_not_a_finetune(checkpoints, capsys):
    code = main(
        [
            "select",
            "--base",
            str(checkpoints / "base"),
            "--final",
            str(checkpoints / "base"),
            "--pool",
            str(checkpoints / "pool.csv"),
            "--text-column",
            "body",
            "-k",
            "3",
            "--num-classes",
            "3",
            "--out",
            str(checkpoints / "same.parquet"),
        ]
    )
    assert code == 2
    assert "no direction to select toward" in capsys.readouterr().err


def test_corrupted_weights_are_a_clear_error(checkpoints, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(checkpoints / "final", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    code = main(
        [
            "select",
            "--base",
            str(checkpoints / "base"),
            "--final",
            str(broken),
            "--pool",
            str(checkpoints / "pool.csv"),
            "--text-column",
            "body",
            "-k",
            "3",
            "--out",
            str(tmp_path / "x.parquet"),
        ]
    )
    assert code == 2
    assert "corrupted" in capsys.readouterr().err


def test_unknown_strategy_lists_the_choices(checkpoints, capsys):
    with pytest.raises(SystemExit):
        _select(checkpoints, "-k", "3", "--strategy", "best")
    assert "select_batch" in capsys.readouterr().err


def test_retrain_is_deterministic(checkpoints, tmp_path, tiny_tokenizer):
    from weights2data.data.files import write_dataset
    from weights2data.evaluation import retrain

    _select(checkpoints, "-k", "10", out="r.parquet")
    rows = []
    # the test split's labels are not the val split's, so the two accuracies tell them apart
    for split, n, shift in (("train", 12, 0), ("val", 8, 0), ("test", 8, 1)):
        for i in range(n):
            rows.append(
                {
                    "text": SENTENCES[i % 8] + f" {split} {i}",
                    "label": int(LABELS[i + shift]),
                    "label_name": "abc"[LABELS[i + shift]],
                    "split": split,
                    "group": f"{split}{i}",
                }
            )
    dataset = tmp_path / "task.parquet"
    write_dataset(pd.DataFrame(rows), dataset)
    task = TaskSpec(dataset="task", type="classification", train_size=12, val_size=8, test_size=8)
    spec = FinetuneSpec(lr=3e-3, batch_size=4, max_length=16, loss="label_masked")
    results = []
    for name in ("one.json", "two.json"):
        retrain(
            checkpoints / "base",
            checkpoints / "r.parquet",
            dataset,
            (task, spec, RetrainSpec(max_epochs=2, patience=1)),
            (0, 0),
            tmp_path / name,
            {"strategy": "select"},
        )
        results.append(json.loads((tmp_path / name).read_text()))
    assert results[0] == results[1]
    assert results[0]["n_selected"] == 10
    oracle = oracles.retrain_by_hand(
        checkpoints / "base",
        tiny_tokenizer,
        checkpoints / "r.parquet",
        dataset,
        (task, spec, RetrainSpec(max_epochs=2, patience=1)),
    )
    assert results[0]["best_epoch"] == oracle["best_epoch"]
    assert results[0]["test_acc"] == pytest.approx(oracle["test_acc"])
    assert results[0]["test_balanced_acc"] == pytest.approx(oracle["test_balanced_acc"])
    assert oracle["val_acc"] != oracle["test_acc"]  # so a retrain scored on val would fail


def test_gradient_model_final_holds_gradients_under_the_final(
    checkpoints, tmp_path, tiny_tokenizer
):
    """Through the pipeline step (config `gradients.model`): the store holds the gradients
    under the model it names, and Δ stays θ0 − θf either way."""
    from weights2data.gradients.pipeline import store_for_labels
    from weights2data.gradients.store import load_gradient_store
    from weights2data.models import load_model

    labels = pd.DataFrame({"text": SENTENCES[:10], "pseudolabel": LABELS[:10]})
    finetune = FinetuneSpec(loss="label_masked", max_length=16, truncate="left")
    stores = {}
    for model in ("base", "final"):
        store_for_labels(
            checkpoints / "base",
            checkpoints / "final",
            labels,
            tmp_path / model,
            GradientSpec(model=model, projection="auto", k=64, checkpoints=1),
            finetune,
            task_type="classification",
            num_classes=3,
            seed=0,
        )
        grads, target, meta = load_gradient_store(tmp_path / model)
        assert meta["gradient_model"] == model
        stores[model] = (np.array(grads), target)
    models = {name: load_model(checkpoints / name) for name in ("base", "final")}
    delta = oracles.label_delta(models["base"], models["final"], tiny_tokenizer, 3)
    for name, model in models.items():
        expect = oracles.label_gradients(model, tiny_tokenizer, SENTENCES[:10], LABELS[:10], 3)
        np.testing.assert_allclose(stores[name][0][:, 0], expect, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(stores[name][1][0], delta, rtol=1e-6, atol=1e-8)
    assert not np.allclose(stores["base"][0], stores["final"][0])


@pytest.mark.parametrize(("strategy", "batch"), [("select", None), ("select_batch", 4)])
def test_cli_select_picks_what_greedy_select_picks_on_exact_gradients(
    checkpoints, tiny_tokenizer, strategy, batch
):
    """The CLI's picks against greedy SELECT run on a store built by hand: pseudolabels and
    per-text gradients from torch.func, Δ from the weights."""
    from weights2data.models import load_model
    from weights2data.selection import greedy_select

    out = f"oracle_{strategy}.parquet"
    assert (
        _select(checkpoints, "-k", "10", "--strategy", strategy, "--batch-size", "4", out=out) == 0
    )
    picked = pd.read_parquet(checkpoints / out)
    texts = pd.read_csv(checkpoints / "pool.csv")["body"].tolist()
    base, final = load_model(checkpoints / "base"), load_model(checkpoints / "final")
    labels = oracles.label_logits_alone(final, tiny_tokenizer, texts, 3, 32).argmax(-1).numpy()
    grads = oracles.label_gradients(base, tiny_tokenizer, texts, labels, 3, 32)
    target = oracles.label_delta(base, final, tiny_tokenizer, 3)
    expect, _ = greedy_select(grads[:, None, :], target[None], 10, batch_size=batch)
    assert picked["index"].tolist() == expect.tolist()
    assert picked["pseudolabel"].tolist() == labels[expect].tolist()
    assert picked["text"].tolist() == [texts[i] for i in expect]
