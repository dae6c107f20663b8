"""The config schema: defaults fill in, wrong keys and types stop with the key's name."""

import copy
from pathlib import Path

import pytest
import yaml

from weights2data.config import load_config, task_finetune, validate_config
from weights2data.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def default_config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize(
    "profile",
    [
        "config.yaml",
        "config/smoke.yaml",
        "config/toy.yaml",
        "config/smollm2.yaml",
        "config/paper_tasks.yaml",
        "config/standin.yaml",
    ],
)
def test_profiles_validate(profile):
    config = load_config(ROOT / profile)
    assert config["finetune"]["optimizer"] in ("adam", "adamw", "sgd")


def test_defaults_are_filled(default_config):
    config = validate_config(default_config)
    assert config["finetune"]["patience"] is None
    assert config["datasets"]["news_pretrain"]["val_fraction"] == 0.1
    assert config["bases"]["gpt2_tiny"]["block_size"] == 64


def test_unknown_key_is_named(default_config):
    bad = copy.deepcopy(default_config)
    bad["finetune"]["learning_rate"] = 0.1
    with pytest.raises(UserError, match="learning_rate"):
        validate_config(bad)


def test_wrong_type_is_named(default_config):
    bad = copy.deepcopy(default_config)
    bad["tasks"]["ag_news"]["train_size"] = "many"
    with pytest.raises(UserError, match="train_size|many"):
        validate_config(bad)


def test_bad_enum_is_rejected(default_config):
    bad = copy.deepcopy(default_config)
    bad["finetune"]["optimizer"] = "lion"
    with pytest.raises(UserError, match="lion"):
        validate_config(bad)


def test_dangling_reference_is_named(default_config):
    bad = copy.deepcopy(default_config)
    bad["tasks"]["ag_news"]["dataset"] = "nope"
    with pytest.raises(UserError, match="tasks.ag_news.dataset.*nope"):
        validate_config(bad)


def test_task_override_merges(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["tasks"]["ag_news"]["finetune"] = {"lr": 0.5}
    config = validate_config(cfg)
    merged = task_finetune(config, "ag_news")
    assert merged["lr"] == 0.5
    assert merged["optimizer"] == config["finetune"]["optimizer"]
