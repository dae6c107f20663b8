"""The ablations: their pure pieces (CIs, replacement draws, leaked pools, variant names), their
reports on hand-made records, and their place in the Snakemake DAG (README walkthrough)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from weights2data import ablation_steps as ab
from weights2data.config import SCHEMA
from weights2data.errors import UserError
from weights2data.report import ablations as reports
from weights2data.report.ablation_kinds import REPORTS, write_report
from weights2data.report.cells import format_cell
from weights2data.stats import confidence_interval

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------- statistics


def test_confidence_interval_matches_student_t_by_hand():
    out = confidence_interval([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302652729911275; std = 1; ci = t * 1 / sqrt(3)
    assert out["n"] == 3 and out["mean"] == pytest.approx(2.0)
    assert out["std"] == pytest.approx(1.0)
    assert out["ci"] == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)


def test_confidence_interval_edge_cases():
    one = confidence_interval([0.5])
    assert one["n"] == 1 and one["mean"] == 0.5 and math.isnan(one["ci"])
    assert confidence_interval([])["n"] == 0
    same = confidence_interval([2.0, 2.0, float("nan")])
    assert same["n"] == 2 and same["ci"] == 0.0
    wider = confidence_interval([1.0, 2.0, 3.0], level=0.99)["ci"]
    assert wider > confidence_interval([1.0, 2.0, 3.0])["ci"]
    with pytest.raises(UserError):
        confidence_interval([1.0, 2.0], level=95)


def test_summarize_scales_and_groups():
    frame = pd.DataFrame(
        {"strategy": ["select", "select", "random"], "seed": [0, 1, 0], "acc": [0.5, 0.7, 0.4]}
    )
    summary = reports.summarize(frame, ["strategy"], ["acc", "otd"])  # otd absent: skipped
    sel = summary[summary.strategy == "select"].iloc[0]
    assert sel["mean"] == pytest.approx(60.0) and sel["n"] == 2
    rnd = summary[summary.strategy == "random"].iloc[0]
    assert rnd["mean"] == pytest.approx(40.0) and math.isnan(rnd["ci"])
    assert format_cell(60.0, 12.7062, 2, 1) == "60.0 ± 12.7"
    assert format_cell(40.0, float("nan"), 1, 1) == "40.0"
    assert format_cell(float("nan"), 0.0, 0, 1) == "—"


# --------------------------------------------------------------------------- F4 replacement


@pytest.mark.parametrize("n_selected", [10, 37, 500])
def test_replacement_plan_is_exact_in_counts(n_selected):
    for fraction in [i / 10 for i in range(11)]:
        kept, added = ab.replacement_plan(n_selected, 1000, fraction, trial=2, seed=1)
        m = int(math.floor(fraction * n_selected + 0.5))
        assert len(added) == m and len(kept) == n_selected - m
        assert (
            len(set(added.tolist())) == m
            and added.min(initial=0) >= 0
            and added.max(initial=0) < 1000
        )
        assert np.all(np.diff(kept) > 0) and (kept.size == 0 or kept.max() < n_selected)
    kept, added = ab.replacement_plan(n_selected, 1000, 0.0, 0, 0)
    assert added.size == 0 and kept.tolist() == list(range(n_selected))
    kept, added = ab.replacement_plan(n_selected, 1000, 1.0, 0, 0)
    assert kept.size == 0 and added.size == n_selected


def test_replacement_plan_is_deterministic_and_varies_by_trial():
    a = ab.replacement_plan(100, 300, 0.3, trial=1, seed=4)
    b = ab.replacement_plan(100, 300, 0.3, trial=1, seed=4)
    c = ab.replacement_plan(100, 300, 0.3, trial=2, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1]) or not np.array_equal(a[0], c[0])


def test_replacement_plan_rejects_impossible_requests():
    with pytest.raises(UserError, match="true training set has 5"):
        ab.replacement_plan(100, 5, 0.5, 0, 0)
    with pytest.raises(UserError):
        ab.replacement_count(10, 1.5)


# --------------------------------------------------------------------------- F3 leakage


def _texts(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} {i}" for i in range(n)], "group": range(n)})


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_leaked_pool_has_the_asked_fraction_and_is_true(fraction):
    truth = _texts("true", 200)
    n_extra = ab.leak_extra_count(len(truth), fraction)
    pool = ab.leaked_pool(truth, _texts("other", n_extra), seed=3)
    assert len(pool) == 200 + n_extra
    assert int(pool["is_true"].sum()) == 200
    assert abs(pool["is_true"].mean() - fraction) <= 1.0 / len(pool)
    assert set(pool.loc[pool.is_true, "text"]) == set(truth["text"])
    # source_row points back into each source
    for _, row in pool.iterrows():
        src = truth if row["is_true"] else _texts("other", n_extra)
        assert src["text"].iloc[row["source_row"]] == row["text"]


def test_leaked_pool_is_shuffled_deterministically_and_drops_duplicates():
    truth, extra = _texts("t", 20), _texts("o", 30)
    extra.loc[0, "text"] = "t 5"  # an extra text equal to a true one
    a = ab.leaked_pool(truth, extra, seed=0)
    b = ab.leaked_pool(truth, extra, seed=0)
    c = ab.leaked_pool(truth, extra, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert a["text"].tolist() != c["text"].tolist()
    assert len(a) == 49 and a["text"].is_unique and int(a["is_true"].sum()) == 20
    assert a["is_true"].iloc[:20].sum() not in (0, 20)  # true texts are not all up front


def test_leak_extra_count_rejects_bad_fractions():
    assert ab.leak_extra_count(1000, 0.25) == 3000
    assert ab.leak_extra_count(1000, 1.0) == 0
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(UserError):
            ab.leak_extra_count(1000, bad)


def _dataset(prefix: str, n_train: int, labels: int) -> pd.DataFrame:
    n = n_train + 40
    return pd.DataFrame(
        {
            "text": [f"{prefix} text {i}" for i in range(n)],
            "label": [i % labels if labels else -1 for i in range(n)],
            "label_name": [f"c{i % labels}" if labels else "" for i in range(n)],
            "split": ["train"] * n_train + ["val"] * 20 + ["test"] * 20,
            "group": [f"{prefix}{i}" for i in range(n)],
        }
    )


def test_build_leaked_pool_uses_the_experts_training_texts(tmp_path):
    from weights2data.data.files import write_dataset
    from weights2data.data.splits import sample_split, task_splits

    task_table, pool_table = _dataset("task", 300, 3), _dataset("pool", 2000, 0)
    write_dataset(task_table, tmp_path / "task.parquet")
    write_dataset(pool_table, tmp_path / "pool.parquet")
    task = {"type": "classification", "train_size": 100, "val_size": 10, "test_size": 10}
    out = tmp_path / "leak" / "0.parquet"
    pool = ab.build_leaked_pool(
        tmp_path / "task.parquet", task, tmp_path / "pool.parquet", 0.2, 0, 0, out
    )
    truth = task_splits(task_table, task, 0, 0)["train"]
    assert set(pool.loc[pool.is_true, "text"]) == set(truth["text"])
    assert int(pool["is_true"].sum()) == 100 and len(pool) == 500
    meta = json.loads(Path(str(out) + ".json").read_text())
    assert meta["fraction"] == pytest.approx(0.2) and meta["n_extra"] == 400
    # the other texts are the first rows of the seed's regular pool (embeddings reusable)
    regular = sample_split(pool_table, "train", 1000, 0)
    extra = pool[~pool.is_true].sort_values("source_row")
    assert extra["text"].tolist() == regular["text"].iloc[:400].tolist()


def test_leaked_embeddings_reuse_the_right_rows(tmp_path):
    truth, regular = _texts("t", 4), _texts("o", 6)
    pool = ab.leaked_pool(truth, regular.iloc[:3], seed=0)
    pool.to_parquet(tmp_path / "leak.parquet")
    regular.to_parquet(tmp_path / "regular.parquet")
    truth_emb = np.arange(4 * 3, dtype=np.float32).reshape(4, 3)
    regular_emb = -np.arange(6 * 3, dtype=np.float32).reshape(6, 3) - 1
    np.save(tmp_path / "truth.npy", truth_emb)
    np.save(tmp_path / "regular.npy", regular_emb)
    emb = ab.leaked_embeddings(
        tmp_path / "leak.parquet",
        tmp_path / "regular.parquet",
        tmp_path / "regular.npy",
        tmp_path / "truth.npy",
        tmp_path / "out.npy",
    )
    for i, row in pool.iterrows():
        source = truth_emb if row["is_true"] else regular_emb
        assert np.array_equal(emb[i], source[row["source_row"]])
    assert np.array_equal(np.load(tmp_path / "out.npy"), emb)


def test_recovery_of_counts_true_texts_among_the_selected():
    pool = pd.DataFrame({"is_true": [True, False, True, True, False]})
    selection = pd.DataFrame({"index": [0, 1, 3]})
    assert ab.recovery_of(selection, pool) == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
    }
    with pytest.raises(UserError, match="is_true"):
        ab.recovery_of(selection, pool.rename(columns={"is_true": "x"}))


# --------------------------------------------------------------------------- store variants


def test_variant_names():
    main = {"model": "base", "loss": None, "projection": "auto", "k": 1024, "checkpoints": 1}
    assert ab.variant_name(main, dict(main)) == "main"
    assert ab.variant_name(main, dict(main, checkpoints=4)) == "C4"
    sketch = dict(main, loss="full_vocab", projection="tensorsketch", k=64)
    assert ab.variant_name(main, sketch) == "fullvocab-tensorsketch-k64"
    exact = dict(main, loss="full_vocab", projection="none", k=64)
    assert ab.variant_name(main, exact) == "fullvocab-exact"  # k has no effect when exact
    with pytest.raises(UserError):
        ab.variant_name(main, dict(main, bogus=1))


# --------------------------------------------------------------------------- reports


def _retrain(path: Path, **metrics) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({f"test_{k}": v for k, v in metrics.items()}))
    return str(path)


def _outputs_exist(stem: Path) -> None:
    for ext in (".csv", ".md", ".pdf", ".png"):
        assert Path(str(stem) + ext).stat().st_size > 0, ext


def test_sweep_report_lines_and_reference(tmp_path):
    runs = []
    for seed in (0, 1, 2):
        for k in (100, 500):
            for s, acc in (("select", 0.6 + k / 5000), ("topk", 0.4)):
                path = _retrain(tmp_path / f"{s}{k}{seed}.json", acc=acc + seed / 100, loss=1.0)
                runs.append({"x": k, "strategy": s, "seed": seed, "retrain": path})
        path = _retrain(tmp_path / f"r{seed}.json", acc=0.5 + seed / 100, loss=1.0)
        runs.append({"x": None, "strategy": "random", "seed": seed, "retrain": path})
    spec = {"runs": runs, "x_name": "K", "x_label": "K (texts)", "log_x": True, "note": "N."}
    stem = tmp_path / "out" / "scaling"
    write_report("sweep", spec, stem)
    _outputs_exist(stem)
    md = Path(f"{stem}.md").read_text()
    assert "| SELECT | Test accuracy (%) | 63.0 ± 2.5 | 71.0 ± 2.5 | — |" in md
    assert "| Random | Test accuracy (%) | — | — | 51.0 ± 2.5 |" in md
    assert "95% Student-t" in md and "n = 3" in md
    csv = pd.read_csv(f"{stem}.csv")
    assert {"K", "strategy", "mean", "ci95", "n"} <= set(csv.columns)


def test_sweep_report_carries_the_premise_diagnostic(tmp_path):
    runs = []
    for seed in (0, 1):
        for count, cos in ((1, 0.3), (4, 0.6)):
            path = _retrain(tmp_path / f"s{count}{seed}.json", acc=0.5, loss=1.0)
            regime = tmp_path / f"regime{count}{seed}.json"
            regime.write_text(json.dumps({"cos_truth_delta": cos + seed / 10}))
            runs.append(
                {"x": count, "strategy": "select", "seed": seed, "retrain": path, "regime": regime}
            )
    frame = reports.collect(runs)
    assert frame["cos_truth_delta"].tolist() == [0.3, 0.6, 0.4, 0.7]
    spec = {"runs": runs, "x_name": "C", "metrics": ["acc", "cos_truth_delta"]}
    stem = tmp_path / "out" / "checkpoints"
    write_report("sweep", spec, stem)
    md = Path(f"{stem}.md").read_text()
    assert "cos(S_true, Δ)" in md and "0.650 ± 0.635" in md  # t(0.975, 1) · 0.0707


def test_leakage_report_has_recovery(tmp_path):
    pool = pd.DataFrame({"text": list("abcdef"), "is_true": [True, True, False] * 2})
    pool.to_parquet(tmp_path / "pool.parquet")
    pd.DataFrame({"index": [0, 1, 2]}).to_parquet(tmp_path / "sel.parquet")
    (tmp_path / "sim.json").write_text(json.dumps({"vocab": 50.0, "otd": 1.25}))
    runs = [
        {
            "x": 0.5,
            "strategy": "select",
            "seed": 0,
            "retrain": _retrain(tmp_path / "r.json", acc=0.8, loss=0.5),
            "similarity": str(tmp_path / "sim.json"),
            "selection": str(tmp_path / "sel.parquet"),
            "pool_file": str(tmp_path / "pool.parquet"),
        }
    ]
    stem = tmp_path / "leakage"
    write_report("leakage", {"runs": runs}, stem)
    _outputs_exist(stem)
    md = Path(f"{stem}.md").read_text()
    assert "| SELECT | Recovery precision (%) | 66.7 |" in md
    assert "| SELECT | Recovery recall (%) | 50.0 |" in md
    assert "| SELECT | OT distance (sq. Euclidean) | 1.250 |" in md


def test_replacement_pools_and_optimizer_reports(tmp_path):
    rec = [
        {"fraction": f, "trial": t, "vocab": 50 + 50 * f, "otd": 2 - f}
        for f in (0, 1)
        for t in (0, 1)
    ]
    (tmp_path / "rep.json").write_text(json.dumps({"records": rec}))
    spec = {"runs": [{"strategy": "select", "seed": 0, "path": str(tmp_path / "rep.json")}]}
    write_report("replacement", spec, tmp_path / "replacement")
    _outputs_exist(tmp_path / "replacement")
    assert (
        "| SELECT | Vocab containment (%) | 50.0 ± 0.0 | 100.0 ± 0.0 |"
        in (tmp_path / "replacement.md").read_text()
    )

    runs = [
        {
            "task": t,
            "pool": p,
            "strategy": "select",
            "seed": 0,
            "retrain": _retrain(tmp_path / f"{t}{p}.json", acc=0.5, loss=1.0),
        }
        for t in ("news", "wiki")
        for p in ("pool_a", "pool_b")
    ]
    write_report("pools", {"runs": runs}, tmp_path / "pools")
    _outputs_exist(tmp_path / "pools")
    assert "| news | 50.0 | 50.0 |" in (tmp_path / "pools.md").read_text()

    runs = [
        {
            "expert_optimizer": e,
            "retrain_optimizer": r,
            "strategy": s,
            "seed": 0,
            "retrain": _retrain(tmp_path / f"{e}{r}{s}.json", loss=1.0, ppl=2.0 + (s == "random")),
        }
        for e in ("adam", "sgd")
        for r in ("adam", "sgd")
        for s in ("random", "select")
    ]
    write_report("optimizer", {"runs": runs}, tmp_path / "optimizer")
    _outputs_exist(tmp_path / "optimizer")
    md = (tmp_path / "optimizer.md").read_text()
    assert "| adam | 3.00 | 3.00 | 2.00 | 2.00 |" in md and "Test perplexity" in md


def test_layers_report_pairs_select_with_random_by_seed(tmp_path):
    runs = []
    for task, base_acc in (("bbc", 0.6), ("wiki", 0.4)):
        for seed in (0, 1):
            name = f"{task}{seed}"
            random = _retrain(tmp_path / f"{name}random.json", acc=base_acc + 0.01 * seed)
            runs.append(
                {
                    "task": task,
                    "layers": None,
                    "strategy": "random",
                    "seed": seed,
                    "retrain": random,
                }
            )
            for i, layers in enumerate(("head", "blocks.-1")):
                regime = tmp_path / f"{name}{i}regime.json"
                regime.write_text(json.dumps({"cos_truth_delta": 0.1 * (i + 1)}))
                acc = base_acc + 0.01 * seed + 0.05 * i
                runs.append(
                    {
                        "task": task,
                        "layers": layers,
                        "strategy": "select",
                        "seed": seed,
                        "retrain": _retrain(tmp_path / f"{name}{i}.json", acc=acc),
                        "regime": str(regime),
                    }
                )
    spec = {"runs": runs, "layers": ["head", "blocks.-1"]}
    write_report("layers", spec, tmp_path / "layers")
    _outputs_exist(tmp_path / "layers")
    md = (tmp_path / "layers.md").read_text()
    assert "| wiki | blocks.-1 | 45.5 ± 6.4 | 40.5 ± 6.4 | 5.0 ± 0.0 | 0.200 ± 0.000 |" in md
    assert "| bbc | head | 60.5 ± 6.4 | 60.5 ± 6.4 | 0.0 ± 0.0 | 0.100 ± 0.000 |" in md


def test_every_report_kind_is_on_the_command_line():
    from weights2data.steps.ablation import REPORT_KINDS

    assert REPORT_KINDS == tuple(sorted(REPORTS))


def test_reports_reject_bad_input(tmp_path):
    with pytest.raises(UserError, match="unknown ablation report"):
        write_report("nope", {"runs": []}, tmp_path / "x")
    with pytest.raises(UserError, match="no runs"):
        write_report("sweep", {"runs": []}, tmp_path / "x")
    path = _retrain(tmp_path / "r.json", acc=0.5)
    with pytest.raises(UserError, match="unknown strategy"):
        write_report(
            "sweep",
            {"runs": [{"x": 1, "strategy": "magic", "seed": 0, "retrain": path}]},
            tmp_path / "x",
        )


# --------------------------------------------------------------------------- the DAG


def _snakemake(*args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--configfile", str(ROOT / "config.yaml"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _walkthrough() -> str:
    doc = (ROOT / "docs" / "ablations.md").read_text()
    start = doc.index("## How to add an ablation")
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end > 0 else None]


def test_worked_example_ablation_is_five_files_and_in_the_dry_run_dag(tmp_path):
    """docs/ablations.md shows the real rule file (a generated block) of an ablation that is
    its schema section, that file, its sizes in the two configs and a caption; the dry run
    plans its report."""
    section = _walkthrough()
    (rel,) = re.findall(r"<!-- (workflow/rules/ablations/(\w+)\.smk) -->", section)
    path, name = rel
    rule_file = (ROOT / path).read_text()
    assert f'register_ablation(\n    "{name}"' in rule_file
    assert rule_file in section  # the block is the file itself, not a copy that can drift
    schema = yaml.safe_load(SCHEMA.read_text())
    assert name in schema["properties"]["ablations"]["properties"]
    for config in ("config.yaml", "config/smoke.yaml"):
        assert name in yaml.safe_load((ROOT / config).read_text())["ablations"], config
    assert (ROOT / "workflow" / "report" / f"ablation_{name}.rst").stat().st_size > 0
    out = _snakemake("-n", "--directory", str(tmp_path), f"figures/ablations/{name}.md")
    assert re.search(r"^(local)?rule ablation_report:", out, flags=re.M)
    assert f"ablation={name}" in out


def test_leaked_pools_resolve_to_their_own_rules(tmp_path):
    out = _snakemake(
        "-n",
        "--directory",
        str(tmp_path),
        "data/pools/leak_ag_news_0.25/0.parquet",
        "data/embeddings/pools/leak_ag_news_0.25/0.npy",
    )
    assert re.search(r"^(local)?rule leak_pool:", out, flags=re.M)
    assert re.search(r"^(local)?rule leak_embeddings:", out, flags=re.M)
    assert "data/datasets/leak_" not in out  # rule pool_subset never claimed a leaked pool
    assert "pool=leak_" not in out  # nor did embed_pool (they would bind pool=leak_...)
