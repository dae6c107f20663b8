"""The workflow itself: the DAG resolves, lints clean, and the smoke profile runs end to end
under Snakemake and under DVC, a second run of either doing nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}


def run(args: list[str], cwd: Path, timeout: int = 900) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout + proc.stderr


def test_default_dag_dry_runs_and_lints():
    out = run([str(BIN / "snakemake"), "-n", "--quiet", "rules"], ROOT)
    assert "finetune_expert" in out
    lint = run([str(BIN / "snakemake"), "--lint"], ROOT)
    assert "good condition" in lint


def test_paper_profile_dry_runs(tmp_path):
    """The GPU profile's whole DAG resolves here (nothing runs: it only dry-runs)."""
    out = run(
        [
            str(BIN / "snakemake"),
            "-n",
            "--configfile",
            str(ROOT / "config" / "paper.yaml"),
            "--directory",
            str(tmp_path),
            "--snakefile",
            str(ROOT / "Snakefile"),
        ],
        ROOT,
    )
    for rule in ("pretrain_base", "finetune_expert", "gradient_store", "retrain", "table2"):
        assert rule in out
    assert "Config file config.yaml is extended" not in out  # profiles replace the default


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory) -> Path:
    """A copy of the project whose config.yaml is the smoke profile (DVC reads config.yaml)."""
    dest = tmp_path_factory.mktemp("smoke") / "project"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        if rel.startswith(("data/", "figures/", "logs/")) or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    shutil.copy2(ROOT / "config" / "smoke.yaml", dest / "config.yaml")
    run(["git", "init", "-q"], dest)
    run(
        [
            "git",
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-qam",
            "x",
            "--allow-empty",
        ],
        dest,
    )
    run(["git", "add", "-A"], dest)
    return dest


@pytest.mark.slow
def test_smoke_profile_runs_under_snakemake_then_dvc(smoke_project):
    snakemake = str(BIN / "snakemake")
    run([snakemake, "--cores", "2"], smoke_project)
    experts = (smoke_project / "figures" / "experts.md").read_text()
    assert "bbc_news" in experts
    figures = smoke_project / "figures"
    for name in ("table1", "table2"):
        for ext in (".md", ".csv", ".tex", ".pdf", ".png"):
            assert (figures / f"{name}{ext}").stat().st_size > 0
    table1 = (figures / "table1.md").read_text()
    for row in ("Random", "Top-K (Balanced)", "P-Min", "P-Max", "SELECT (Batch)", "Expert"):
        assert f"| {row} |" in table1
    assert "—" not in table1.split("Expert")[0]  # every strategy cell filled from a real run
    assert (figures / "table3.md").exists() and (figures / "class_balance.png").exists()
    again = run([snakemake, "--cores", "2", "-n"], smoke_project)
    assert "Nothing to be done" in again

    dvc = str(BIN / "dvc")
    run([dvc, "repro"], smoke_project)
    second = run([dvc, "repro"], smoke_project)
    assert "up to date" in second.lower()
    metrics = run([dvc, "metrics", "show"], smoke_project)
    assert "test_acc" in metrics
