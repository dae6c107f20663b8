"""A LoRA adapter as the final model: trained here with peft over a tiny base, then run
through the pipeline's steps (autolabel → gradient store → select → retrain) and `select`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from weights2data.cli import main
from weights2data.data.files import write_dataset
from weights2data.formats import encode_classification, label_token_ids
from weights2data.models import load_model, load_weights, output_matrix, save_model
from weights2data.specs import FinetuneSpec, GradientSpec, RetrainSpec, TaskSpec

from . import oracles
from .conftest import SENTENCES

LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1] * 4)
FINETUNE = FinetuneSpec(lr=3e-3, batch_size=4, max_length=16, loss="label_masked")
TASK = TaskSpec(dataset="task", type="classification", train_size=12, val_size=8, test_size=8)
ADAPTED = ["c_attn", "c_fc"]


def train_lora(base_dir, tokenizer, out, steps: int = 100):
    """A real LoRA finetune of the base on the 3-class task (label-masked loss), saved by peft."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(
        load_model(base_dir),
        LoraConfig(r=4, lora_alpha=8, target_modules=ADAPTED, fan_in_fan_out=True),
    )
    label_rows = torch.as_tensor(label_token_ids(tokenizer, 3))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = encode_classification(tokenizer, SENTENCES, 16, "left")
    targets = torch.as_tensor(LABELS)
    model.train()
    for _ in range(steps):
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        at_label = logits[torch.arange(len(targets)), batch.label_pos][:, label_rows]
        loss = torch.nn.functional.cross_entropy(at_label, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    return float(loss.detach())


@pytest.fixture(scope="module")
def lora_pair(tmp_path_factory, tiny_tokenizer):
    """root/base (tiny GPT-2), root/adapter (a LoRA finetune of it), a task and a pool."""
    from transformers import GPT2Config, GPT2LMHeadModel

    root = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tiny_tokenizer), n_positions=32, n_embd=32, n_layer=2, n_head=2
    )
    save_model(GPT2LMHeadModel(config), tiny_tokenizer, root / "base")
    assert train_lora(root / "base", tiny_tokenizer, root / "adapter") < 0.8  # ln 3 = 1.10
    rows = [
        {
            "text": f"{SENTENCES[i % 8]} {split} {i}",
            "label": int(LABELS[i]),
            "label_name": "abc"[LABELS[i]],
            "split": split,
            "group": f"{split}{i}",
        }
        for split, n in (("train", 12), ("val", 8), ("test", 8))
        for i in range(n)
    ]
    write_dataset(pd.DataFrame(rows), root / "task.parquet")
    texts = [f"{s} number {i}" for i, s in enumerate(SENTENCES * 2)]
    pd.DataFrame({"text": texts, "group": [str(i) for i in range(len(texts))]}).to_parquet(
        root / "pool.parquet"
    )
    return root


def as_json(spec) -> str:
    from weights2data.specs import as_dict

    return json.dumps(as_dict(spec))


def test_adapter_folder_loads_merged_with_its_exact_update(lora_pair):
    base = load_model(lora_pair / "base")
    loaded = load_weights(lora_pair / "adapter", base=lora_pair / "base")
    final, updates = loaded.module, loaded.updates
    assert sorted(updates) == [
        f"transformer.h.{i}.{m}" for i in (0, 1) for m in ("attn.c_attn", "mlp.c_fc")
    ]
    name = "transformer.h.1.mlp.c_fc"
    merged = final.get_submodule(name).weight - base.get_submodule(name).weight
    torch.testing.assert_close(merged, updates[name], rtol=1e-4, atol=1e-6)
    assert torch.equal(output_matrix(final), output_matrix(base))  # LoRA left the head alone
    # the adapter names its base folder itself, so --base may be left out
    again = load_model(lora_pair / "adapter")
    assert torch.equal(again.get_submodule(name).weight, final.get_submodule(name).weight)


def _steps(root, spec: GradientSpec, tag: str):
    """autolabel → gradient-store → select-pool → retrain on the adapter final; exit codes."""
    common = ["--dataset", str(root / "task.parquet"), "--task", as_json(TASK)]
    common += ["--finetune", as_json(FINETUNE)]
    labels, store = root / f"labels_{tag}.parquet", root / f"store_{tag}"
    codes = [
        main(
            [
                "autolabel",
                "--final",
                str(root / "adapter"),
                "--base",
                str(root / "base"),
                "--pool",
                str(root / "pool.parquet"),
                *common,
                "--out",
                str(labels),
            ]
        ),
        main(
            [
                "gradient-store",
                "--base",
                str(root / "base"),
                "--final",
                str(root / "adapter"),
                "--labels",
                str(labels),
                *common,
                "--spec",
                as_json(spec),
                "--seed",
                "0",
                "--out",
                str(store),
            ]
        ),
    ]
    if codes[-1] != 0:
        return codes
    selection = root / f"sel_{tag}.parquet"
    codes.append(
        main(
            [
                "select-pool",
                "--labels",
                str(labels),
                "--store",
                str(store),
                "--strategy",
                "select",
                "-k",
                "8",
                "--out",
                str(selection),
            ]
        )
    )
    codes.append(
        main(
            [
                "retrain",
                "--base",
                str(root / "base"),
                "--selection",
                str(selection),
                *common,
                "--retrain",
                as_json(RetrainSpec(max_epochs=2, patience=1)),
                "--seed",
                "0",
                "--out",
                str(root / f"retrain_{tag}.json"),
            ]
        )
    )
    return codes


def test_lora_final_runs_the_steps_end_to_end(lora_pair, tiny_tokenizer):
    spec = GradientSpec(layers="blocks.-1", k=64, batch_size=8)
    assert _steps(lora_pair, spec, "body") == [0, 0, 0, 0]
    meta = json.loads((lora_pair / "store_body" / "meta.json").read_text())
    assert [p["layer"] for p in meta["layers"]][0] == "transformer.h.1.attn.c_attn"
    assert meta["D"] == 4 * 64
    target = np.fromfile(lora_pair / "store_body" / "target.f32", dtype=np.float32)
    assert np.all(target[64:128] == 0)  # attn.c_proj: not adapted, so Δ is zero there
    assert np.any(target[:64] != 0) and np.any(target[128:192] != 0)
    selection = pd.read_parquet(lora_pair / "sel_body.parquet")
    assert len(selection) == 8 and selection["index"].is_unique
    result = json.loads((lora_pair / "retrain_body.json").read_text())
    assert result["n_selected"] == 8
    oracle = oracles.retrain_by_hand(
        lora_pair / "base",
        tiny_tokenizer,
        lora_pair / "sel_body.parquet",
        lora_pair / "task.parquet",
        (TASK, FINETUNE, RetrainSpec(max_epochs=2, patience=1)),
    )
    assert result["best_epoch"] == oracle["best_epoch"]
    assert result["test_acc"] == pytest.approx(oracle["test_acc"])
    assert result["test_balanced_acc"] == pytest.approx(oracle["test_balanced_acc"])


def test_lora_final_with_the_head_only_names_the_adapted_modules(lora_pair, capsys):
    codes = _steps(lora_pair, GradientSpec(layers="head", batch_size=8), "head")
    assert codes == [0, 2]
    err = capsys.readouterr().err
    assert "LoRA adapter" in err and "transformer.h.1.mlp.c_fc" in err and "blocks.-1" in err
    assert "Traceback" not in err
    assert not (lora_pair / "store_head").exists()


def test_cli_select_on_an_adapter(lora_pair, capsys):
    out = lora_pair / "cli.parquet"
    args = [
        "select",
        "--base",
        str(lora_pair / "base"),
        "--final",
        str(lora_pair / "adapter"),
        "--pool",
        str(lora_pair / "pool.parquet"),
        "--num-classes",
        "3",
        "-k",
        "5",
        "--max-length",
        "16",
        "--sketch-dim",
        "64",
        "--out",
        str(out),
    ]
    assert main([*args, "--layers", "head", "blocks.-1"]) == 0
    assert len(pd.read_parquet(out)) == 5
    assert main(args) == 2  # the default layers: head
    assert "LoRA adapter" in capsys.readouterr().err


def test_bad_adapter_folders_get_clear_errors(lora_pair, tmp_path):
    import shutil

    from weights2data.errors import UserError

    def broken(name, edit):
        folder = tmp_path / name
        shutil.copytree(lora_pair / "adapter", folder)
        edit(folder)
        return folder

    def config_with(**changes):
        def edit(folder):
            config = json.loads((folder / "adapter_config.json").read_text())
            (folder / "adapter_config.json").write_text(json.dumps({**config, **changes}))

        return edit

    pickle_only = broken("pickle", lambda f: (f / "adapter_model.safetensors").rename(f / "x.bin"))
    with pytest.raises(UserError, match="no adapter_model.safetensors"):
        load_model(pickle_only, base=lora_pair / "base")
    with pytest.raises(UserError, match="only LoRA adapters"):
        load_model(broken("ia3", config_with(peft_type="IA3")), base=lora_pair / "base")
    remote = broken("remote", config_with(base_model_name_or_path="org/some-model"))
    with pytest.raises(UserError, match="not a local model folder; pass the base folder"):
        load_model(remote)
