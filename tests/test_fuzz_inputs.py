"""Every file input of the steps, damaged four ways (truncated, empty, the wrong kind of file, a
missing column or field): each gets a one-line error that names the file, and nothing is
written. The README's bad-input table lists the kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weights2data.cli import main
from weights2data.config import load_config
from weights2data.data.build import build_dataset
from weights2data.data.files import write_dataset
from weights2data.errors import UserError

TASK = {"dataset": "bbc", "type": "classification", "train_size": 20, "val_size": 5, "test_size": 5}
DAMAGES = ("truncated", "empty", "wrong_kind", "missing_part")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """One good file of every kind the steps read."""
    root = tmp_path_factory.mktemp("inputs")
    write_dataset(build_dataset("bbc_news", max_rows=80), root / "dataset.parquet")
    texts = [f"a pool text number {i}" for i in range(12)]
    pd.DataFrame({"text": texts}).to_parquet(root / "pool.parquet", index=False)
    labels = pd.DataFrame({"text": texts, "pseudolabel": [i % 3 for i in range(12)]})
    labels.assign(loss=np.linspace(0.1, 1.2, 12)).to_parquet(root / "labels.parquet", index=False)
    selection = labels.iloc[:4].assign(index=range(4))
    selection.to_parquet(root / "selection.parquet", index=False)
    np.save(root / "pool_emb.npy", np.ones((12, 8), dtype=np.float32))
    np.save(root / "truth_emb.npy", np.ones((20, 8), dtype=np.float32))
    keys = {"base": "b", "task": "t", "strategy": "random", "seed": "0"}
    (root / "retrain.json").write_text(json.dumps({**keys, "test_acc": 0.5, "test_loss": 1.0}))
    (root / "similarity.json").write_text(json.dumps({**keys, "vocab": 40.0, "otd": 1.2}))
    (root / "expert.json").write_text(json.dumps({"seed": 0, "test_acc": 0.8, "test_loss": 0.5}))
    (root / "config.yaml").write_text((Path(__file__).parents[1] / "config.yaml").read_text())
    return root


def damage(good: Path, how: str, out: Path) -> Path:
    """A damaged copy of ``good`` (same name, in ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    bad = out / good.name
    data = good.read_bytes()
    if how == "truncated":  # a YAML file cut inside a flow list (a cut between keys can parse)
        half = len(data) // 2
        flow = data.find(b": [", half) if good.suffix == ".yaml" else -1
        bad.write_bytes(data[: flow + 3 if flow >= 0 else half])
    elif how == "empty":
        bad.write_bytes(b"")
    elif how == "wrong_kind":  # another step's file given to this flag
        other = {".parquet": b'{"a": 1}\n', ".npy": b"PAR1 not an array", ".json": b"PAR1\x00\xff"}
        bad.write_bytes(other.get(good.suffix, b"\x00\xff\x00 binary"))
    elif good.suffix == ".parquet":  # missing_part: a column the step needs
        frame = pd.read_parquet(good)
        frame.drop(columns=[frame.columns[0]]).to_parquet(bad, index=False)
    elif good.suffix == ".npy":
        np.save(bad, np.ones(5, dtype=np.float32))  # 1-D: not one row per text
    elif good.suffix == ".json":
        record = json.loads(data)
        bad.write_text(json.dumps({k: v for k, v in record.items() if k != "seed"}))
    else:  # yaml
        bad.write_text("- a list\n- not a mapping\n")
    return bad


# step → (the file its flag reads, the command with {name} placeholders for the inputs)
STEPS = {
    "labels": (
        "labels.parquet",
        "select-pool --labels {labels} --strategy random -k 2 --out {out}",
    ),
    "dataset": ("dataset.parquet", "pool --dataset {dataset} --size 5 --seed 0 --out {out}"),
    "pool": ("pool.parquet", "embed --texts {pool} --out {out}"),
    "selection": (
        "selection.parquet",
        "similarity --selection {selection} --pool-embeddings {pool_emb} "
        "--truth-embeddings {truth_emb} --dataset {dataset} --task {task} --seed 0 --out {out}",
    ),
    "pool_embeddings": (
        "pool_emb.npy",
        "similarity --selection {selection} --pool-embeddings {pool_emb} "
        "--truth-embeddings {truth_emb} --dataset {dataset} --task {task} --seed 0 --out {out}",
    ),
    "retrain_json": (
        "retrain.json",
        "table --kind classification --retrain {retrain} --similarity {similarity} "
        "--experts EXPERTS={expert} --out-stem {out}",
    ),
    "similarity_json": (
        "similarity.json",
        "table --kind classification --retrain {retrain} --similarity {similarity} "
        "--experts EXPERTS={expert} --out-stem {out}",
    ),
    "expert_json": ("expert.json", "experts-report --experts EXPERTS={expert} --out-stem {out}"),
}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", sorted(STEPS))
def test_a_damaged_input_gets_one_line_naming_it(files, tmp_path, capsys, kind, how):
    name, template = STEPS[kind]
    bad = damage(files / name, how, tmp_path / "bad")
    paths = {p.stem: str(p) for p in files.iterdir()}
    paths[bad.stem] = str(bad)
    out = tmp_path / "out" / "result"
    argv = template.format(**paths, task="TASK", out=out).split()
    argv = [json.dumps(TASK) if a == "TASK" else a for a in argv]
    # the experts' metrics files come with their coordinates, as the rules pass them
    at = {"base": "b", "task": "bbc", "seed": 0}
    argv = [json.dumps({a[8:]: at}) if a.startswith("EXPERTS=") else a for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"weights2data {argv[0]}: error:"), err
    assert str(bad) in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_config_is_named(files, tmp_path, how):
    bad = damage(files / "config.yaml", how, tmp_path)
    with pytest.raises(UserError, match=str(bad).replace(".", r"\.")) as caught:
        load_config(bad)
    assert "\n" not in str(caught.value)
