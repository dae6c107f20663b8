"""The `slurm` profile on a real SLURM: a single-node cluster started here from Debian's
packages (scripts/slurm_single_node.sh), the smoke config run through it with every job
submitted by sbatch (scripts/run_smoke_on_slurm.sh)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
VENV = Path(sys.executable).parent.parent
SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue")


def _skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root: installs Debian packages and starts munged, slurmctld, slurmd"
    have_slurm = all(shutil.which(b) for b in SLURM_BINARIES)
    if not have_slurm and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    return None


def _run(script: str, *args: str, env: dict[str, str], timeout: int) -> str:
    """Run one of scripts/ in its own process group; on a time-out, end the whole group
    (snakemake then cancels its SLURM jobs) rather than leave it running."""
    proc = subprocess.Popen(
        ["bash", str(SCRIPTS / script), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"{script} {' '.join(args)} took over {timeout} s:\n{out[-4000:]}")
    assert proc.returncode == 0, (
        f"{script} {' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}"
    )
    return out


@pytest.mark.slow
def test_smoke_profile_runs_on_single_node_slurm(tmp_path):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    env = {
        **os.environ,
        "VENV": str(VENV),
        "W2D_SLURM_SMOKE_DIR": str(tmp_path / "project"),
        "HF_HUB_OFFLINE": "1",
    }
    # a caller's settings for a real cluster must not leak into the single-node run
    for name in ("W2D_SLURM_PARTITION", "W2D_SLURM_ACCOUNT", "W2D_SLURM_GPUS"):
        env.pop(name, None)
    try:
        started = _run("slurm_single_node.sh", "start", env=env, timeout=240)
        assert "PARTITION" in started  # sinfo printed once the node was up
        # the report's part of the DAG: a dataset job, both GPU rules, the report
        out = _run("run_smoke_on_slurm.sh", "figures/experts.md", env=env, timeout=300)
        assert "OK in" in out and "submitted with sbatch" in out
        project = tmp_path / "project"
        assert "bbc_news" in (project / "figures" / "experts.md").read_text()
        logs = list((project / ".snakemake" / "slurm_logs").rglob("*.log"))
        rules = {p.relative_to(project / ".snakemake" / "slurm_logs").parts[0] for p in logs}
        # the GPU rules went through sbatch as well (with W2D_SLURM_GPUS=0: no GPU here)
        assert {"rule_pretrain_base", "rule_finetune_expert"} <= rules, rules
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "slurm_single_node.sh"), "stop"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )


def test_every_gpu_rule_follows_the_slurm_gpu_setting():
    """A rule with `resources: gpu=1` that the profile does not list would ask sbatch for a GPU
    even with W2D_SLURM_GPUS=0, and fail on a cluster without one."""
    import re

    import yaml

    rules = ROOT / "workflow" / "rules"
    gpu_rules = set()
    for path in sorted(rules.rglob("*.smk")):
        for block in re.split(r"\n(?=\s*rule )", path.read_text()):
            name = re.match(r"\s*rule (\w+):", block)
            if name and "gpu=1" in block:
                gpu_rules.add(name.group(1))
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    assert "trunk_cache" in gpu_rules
    assert gpu_rules <= set(profile["set-resources"]), gpu_rules - set(profile["set-resources"])
