"""The workflow itself: the DAG resolves, lints clean, and the smoke profile runs end to end
under Snakemake and under DVC, a second run of either doing nothing."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .project_copy import BIN, ROOT, copy_project, git, run, smoke_config
from .smoke_golden import GOLDEN, differences, snapshot


def test_default_dag_dry_runs_and_lints():
    out = run([str(BIN / "snakemake"), "-n", "--quiet", "rules"], ROOT)
    assert "finetune_expert" in out
    lint = run([str(BIN / "snakemake"), "--lint"], ROOT)
    assert "good condition" in lint


def _dry_run(profile: str, folder: Path) -> str:
    command = [str(BIN / "snakemake"), "-n", "--configfile", str(ROOT / "config" / profile)]
    command += ["--directory", str(folder), "--snakefile", str(ROOT / "Snakefile")]
    return run(command, ROOT)


def test_paper_profile_dry_runs(tmp_path):
    """The GPU profile's whole DAG resolves here (nothing runs: it only dry-runs)."""
    out = _dry_run("paper.yaml", tmp_path)
    for rule in ("pretrain_base", "finetune_expert", "gradient_store", "retrain", "table2"):
        assert rule in out
    assert "regime" in out and "diagnostics_table2" in out
    assert "Config file config.yaml is extended" not in out  # profiles replace the default


def test_toy_profile_dry_runs(tmp_path):
    """The old default: its own pretrained GPT-2 bases, every weight trained, no trunk caches."""
    out = _dry_run("toy.yaml", tmp_path)
    for rule in ("pretrain_base", "finetune_expert", "table2", "ablation_report", "diagnostics"):
        assert rule in out
    assert "gpt2_small" in out and "trunk_cache" not in out


def test_smollm2_profile_dry_runs(tmp_path):
    """The real-base profile: both frozen-trunk regimes on cached trunks, the Adam-aware SELECT."""
    out = _dry_run("smollm2.yaml", tmp_path)
    assert "trunk_cache" in out and "bbc_top1" in out and "rt_head" in out
    assert "select_pre" in out and "table2" not in out and "ablation_" not in out


def test_jobs_find_weights2data_without_an_activated_environment(tmp_path):
    """`.venv/bin/snakemake` from a shell whose PATH lacks the environment: jobs still find
    the `weights2data` of the environment that runs Snakemake."""
    project = copy_project(tmp_path / "p", smoke_config(ablations=False))
    bare = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    bare["PATH"] = "/usr/bin:/bin"
    assert shutil.which("weights2data", path=bare["PATH"]) is None
    proc = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "1", "data/datasets/bbc_news.parquet"],
        cwd=project,
        env=bare,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (project / "data" / "datasets" / "bbc_news.parquet").stat().st_size > 0


def test_editing_a_local_dataset_file_reruns_it_and_what_depends_on_it(tmp_path):
    config = smoke_config(ablations=False)
    config["datasets"]["mine"] = {"source": "local:mine.csv"}
    project = copy_project(tmp_path / "p", config)
    texts = [f"a short text about topic {i % 3} number {i}" for i in range(100)]
    pd.DataFrame({"text": texts, "label": [i % 3 for i in range(100)]}).to_csv(
        project / "mine.csv", index=False
    )
    snakemake = [str(BIN / "snakemake"), "--cores", "2"]
    run([*snakemake, "figures/table3.md"], project)
    assert "Nothing to be done" in run([*snakemake, "-n", "figures/table3.md"], project)
    with open(project / "mine.csv", "a") as fh:
        fh.write("one more text,1\n")
    plan = run([*snakemake, "-n", "figures/table3.md"], project)
    assert "rule dataset:" in plan and "output: data/datasets/mine.parquet" in plan
    assert plan.count("rule dataset:") == 1  # only the edited dataset reruns
    assert "rule table3:" in plan


def _planned(project: Path, env: dict, target: str) -> dict[str, int]:
    """Rule -> jobs that a dry run plans for ``target`` (empty: nothing to be done)."""
    out = run([str(BIN / "snakemake"), "-n", target, "--quiet", "rules"], project, env=env)
    rows = re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M)
    return {rule: int(n) for rule, n in rows if rule != "total"}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.mark.slow
def test_code_changes_rerun_exactly_the_steps_that_run_that_code(tmp_path):
    """Each rule's params carry its step's code fingerprint: a comment reruns nothing, a
    report function only reports, an embedding function the comparisons and not the
    retrainings, a gradient-store function the stores and what follows."""
    project = copy_project(tmp_path / "p", smoke_config(ablations=False))
    package = project / "src" / "weights2data"
    env = {"PYTHONPATH": str(project / "src")}  # the copy's code runs and is fingerprinted
    target = "figures/table1.md"
    run([str(BIN / "snakemake"), "--cores", "2", target], project, env=env)
    assert _planned(project, env, target) == {}

    _edit(package / "gradients" / "store.py", "def _store_meta(", "# a comment\ndef _store_meta(")
    assert _planned(project, env, target) == {}  # comments and docstrings are not code

    _edit(
        package / "report" / "tables.py", "def table1(", "def _unused():\n    pass\n\n\ndef table1("
    )
    assert set(_planned(project, env, target)) == {"table1", "all"} - {"all"} | {"table1"}

    # the comparison with the true set has its own module: an embedding change retrains nothing
    _edit(package / "comparison.py", "dict.fromkeys(texts)", "dict.fromkeys(list(texts))")
    planned = set(_planned(project, env, target))
    assert {"embed_truth_union", "similarity", "table1"} <= planned, planned
    assert not planned & {"retrain", "gradient_store", "select"}, planned

    _edit(package / "gradients" / "store.py", '"dtype": "float32"', '"dtype": "float" + "32"')
    planned = set(_planned(project, env, target))
    assert {"gradient_store", "select", "retrain", "table1"} <= planned, planned
    never = {"dataset", "pretrain_base", "finetune_expert", "pool_subset", "autolabel"}
    assert not planned & never, planned


# Rules whose outputs the DVC stages own; a job leaves its log under logs/<rule>/.
SHARED_RULES = (
    "dataset",
    "pretrain_base",
    "finetune_expert",
    "pool_subset",
    "leak_pool",
    "autolabel",
    "gradient_store",
)


def recomputed(project: Path) -> list[str]:
    """The DVC-shared artifacts whose jobs ran in this folder (each job leaves its log)."""
    return sorted(
        str(log.relative_to(project))
        for rule in SHARED_RULES
        for log in (project / "logs" / rule).rglob("*.log")
    )


def check_smoke_outputs(project: Path) -> None:
    figures = project / "figures"
    assert "bbc_news" in (figures / "experts.md").read_text()
    for name in ("table1", "table2"):
        for ext in (".md", ".csv", ".tex", ".pdf", ".png"):
            assert (figures / f"{name}{ext}").stat().st_size > 0
    table1 = (figures / "table1.md").read_text()
    for row in ("Random", "Top-K (Balanced)", "P-Min", "P-Max", "SELECT (Batch)", "Expert"):
        assert f"| {row} |" in table1
    assert "—" not in table1.split("Expert")[0]  # every strategy cell filled from a real run
    assert "| SELECT |" in (figures / "table1_summary.md").read_text()  # README's brief table
    assert (figures / "table3.md").exists() and (figures / "class_balance.png").exists()
    for name in ("table1_paired", "table2_paired", "diagnostics", "diagnostics_table2"):
        assert (figures / f"{name}.csv").stat().st_size > 0, name
    diagnostics = pd.read_csv(figures / "diagnostics.csv")
    expert = diagnostics[diagnostics.strategy == "expert"]
    assert expert["cos_truth_delta"].between(-1, 1).all()  # a real cosine from a real run
    assert expert["final_head_final_body"].notna().all() and expert["probe_base"].notna().all()
    runs = diagnostics[diagnostics.strategy != "expert"]
    assert runs["cos_sel_truth"].between(-1, 1).all() and runs["class_counts"].notna().all()
    assert "| SELECT |" in (figures / "diagnostics.md").read_text()
    for name in ("scaling", "leakage", "replacement", "projection", "seed_pools", "optimizer"):
        assert (figures / "ablations" / f"{name}.png").stat().st_size > 0, name
    assert (figures / "ablations" / "checkpoints.png").stat().st_size > 0
    changed = differences(json.loads(GOLDEN.read_text()), snapshot(project))
    assert not changed, "results differ from tests/golden/smoke.json:\n" + "\n".join(changed[:20])


@pytest.mark.slow
def test_smoke_profile_every_rule_under_dvc_and_snakemake_then_shared(tmp_path):
    """Machine A: `dvc repro` makes the expensive artifacts (ablations' included), `snakemake`
    every table and figure, second runs do nothing, `dvc push`. Machine B: clone, `dvc pull`,
    scripts/after_dvc_pull.sh, `snakemake` for Table 1 and the leakage ablation: no training,
    pseudolabelling or gradient store runs again."""
    project = copy_project(tmp_path / "machine_a", smoke_config(ablations=True))
    snakemake, dvc = str(BIN / "snakemake"), str(BIN / "dvc")
    run([dvc, "repro"], project)
    made_by_dvc = recomputed(project)
    assert "logs/finetune_expert/tiny/bbc_news/0.log" in made_by_dvc
    assert "logs/gradient_store/tiny/bbc_news/wiki_pool/main/0.log" in made_by_dvc
    assert any("leak_" in log for log in made_by_dvc)  # the leakage ablation's stores too
    shutil.rmtree(project / "logs")
    run([snakemake, "--cores", "2"], project)
    assert recomputed(project) == []  # Snakemake reused all that DVC made
    check_smoke_outputs(project)
    assert "Nothing to be done" in run([snakemake, "--cores", "2", "-n"], project)
    assert "up to date" in run([dvc, "repro"], project).lower()
    shown = run([dvc, "metrics", "show"], project)
    assert "test_acc" in shown and "table1.bbc_news.select.acc" in shown
    assert "premise.bbc_news.cos_truth_delta" in shown
    plots = json.loads(run([dvc, "plots", "show", "--json"], project))
    curve = plots["data"]["data/metrics/expert/tiny/bbc_news/0.json"][0]["content"]["data"]
    assert [point["epoch"] for point in curve["values"]] == [1]  # smoke: one epoch

    remote = tmp_path / "remote"
    run([dvc, "remote", "add", "-d", "shared", str(remote)], project)
    run([dvc, "push"], project)
    git(["add", "-A", "dvc.lock", ".dvc", "figures/metrics.json"], project)
    git(["commit", "-qm", "results"], project)

    machine_b = tmp_path / "machine_b"
    git(["clone", "-q", str(project), str(machine_b)], tmp_path)
    run([dvc, "pull"], machine_b)
    run(["bash", str(machine_b / "scripts" / "after_dvc_pull.sh")], machine_b)
    wanted = ["figures/table1.md", "figures/ablations/leakage.md"]  # main and ablation stores
    run([snakemake, "--cores", "2", *wanted], machine_b)
    assert recomputed(machine_b) == []
    assert all((machine_b / path).stat().st_size > 0 for path in wanted)
    assert "up to date" in run([dvc, "status"], machine_b).lower()

    # DVC experiments on K (machine A): each reruns selection, retraining and the tables only
    for name, k in (("k30", 30), ("k20", 20)):
        run([dvc, "exp", "run", "-n", name, "-S", f"config.yaml:selection.k={k}"], project)
        assert recomputed(project) == []  # no expert, label or store was made again
    check_experiments(run([dvc, "exp", "show", "--csv"], project))
    shown = run([dvc, "exp", "show", "--only-changed", "--md"], project)
    (tmp_path / "exp_show.md").write_text(shown)  # kept by pytest for a reader to look at


def check_experiments(csv_text: str) -> None:
    """`dvc exp show`: both experiments, their K, and SELECT's metrics differing with K."""
    table = pd.read_csv(io.StringIO(csv_text), dtype=str)
    named = table.apply(lambda row: next((v for v in row if v in ("k30", "k20")), None), axis=1)
    rows = table.assign(name=named).dropna(subset=["name"]).set_index("name")
    assert sorted(rows.index) == ["k20", "k30"], csv_text
    k_column = next(c for c in table.columns if c.endswith("selection.k"))
    assert float(rows.loc["k30", k_column]) == 30 and float(rows.loc["k20", k_column]) == 20
    metric = next(c for c in table.columns if c.endswith("premise.bbc_news.select_cos_sel_truth"))
    assert rows.loc["k30", metric] != rows.loc["k20", metric], csv_text
