"""Bad inputs the README's table lists: each stops with a named error and writes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from weights2data.cli import main
from weights2data.config import validate_config
from weights2data.errors import UserError
from weights2data.formats import pad_token_id
from weights2data.models import save_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    root = tmp_path_factory.mktemp("pair")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tiny_tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    base = GPT2LMHeadModel(cfg)
    save_model(base, tiny_tokenizer, root / "base")
    final = GPT2LMHeadModel(cfg)
    final.load_state_dict(base.state_dict())
    with torch.no_grad():
        final.lm_head.weight.add_(0.01)
    save_model(final, tiny_tokenizer, root / "final")
    with torch.no_grad():
        final.lm_head.weight[0, 0] = float("nan")
    save_model(final, tiny_tokenizer, root / "nan")
    pd.DataFrame({"text": ["one text", "another text", "a third"]}).to_csv(root / "pool.csv")
    pd.DataFrame({"text": []}).to_csv(root / "empty.csv")
    return root


def select(root: Path, final: str, pool: str, out: Path, *extra: str) -> int:
    return main(
        [
            "select",
            "--base",
            str(root / "base"),
            "--final",
            str(root / final),
            "--pool",
            str(root / pool),
            "-k",
            "2",
            "--num-classes",
            "2",
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "final, pool, message",
    [
        ("nan", "pool.csv", "NaN or inf"),
        ("final", "empty.csv", "has no rows"),
        ("final", "missing.csv", "missing.csv"),
        ("does_not_exist", "pool.csv", "does not exist"),
    ],
)
def test_bad_select_inputs(pair, tmp_path, capsys, final, pool, message):
    out = tmp_path / "sel.parquet"
    assert select(pair, final, pool, out) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_pickle_weights_are_never_loaded(pair, tmp_path, capsys):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(pair / "final", folder)
    (folder / "model.safetensors").unlink()
    torch.save({}, folder / "pytorch_model.bin")
    assert select(pair, str(folder), "pool.csv", tmp_path / "x.parquet") == 2
    assert "safetensors" in capsys.readouterr().err


def test_unknown_strategy_in_config_is_named():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    bad = copy.deepcopy(config)
    bad.setdefault("selection", {})["strategies"] = ["select", "oracle"]
    with pytest.raises(UserError, match="oracle"):
        validate_config(bad)


def test_tokenizer_without_pad_or_eos_is_named():
    class Bare:
        pad_token_id = None
        eos_token_id = None

    with pytest.raises(UserError, match="pad"):
        pad_token_id(Bare())


def test_tokenizer_without_pad_falls_back_to_eos(tiny_tokenizer):
    class NoPad:
        pad_token_id = None
        eos_token_id = tiny_tokenizer.eos_token_id

    assert pad_token_id(NoPad()) == tiny_tokenizer.eos_token_id
