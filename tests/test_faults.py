"""Crashes: the pipeline is killed (SIGKILL to its whole process group, as an OOM killer or a
lost node would) in the middle of a sharded gradient store and of a retraining. The rerun
finishes without redoing completed work, and nothing incomplete ever looks complete."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from weights2data.atomic import read_json
from weights2data.config import task_finetune, validate_config
from weights2data.evaluation import retrain
from weights2data.gradients.pipeline import store_for_labels
from weights2data.gradients.store import load_gradient_store
from weights2data.readers import read_table
from weights2data.specs import FinetuneSpec, GradientSpec, RetrainSpec, TaskSpec

from .project_copy import ENV, PIPELINE, copy_project, run, smoke_config

STORE = "data/gradients/tiny/bbc_news/wiki_pool/main/0"
SHARDS = 3
RETRAIN = "data/retrain/tiny/bbc_news/wiki_pool/none/random/40/0.json"
RETRAIN_LOG = "logs/retrain/tiny/bbc_news/wiki_pool/none/random/40/0.log"
EXPERT = "data/models/expert/tiny/bbc_news/0"
THREADS = 2  # = the cores of PIPELINE


def kill_when(project: Path, target: str, ready, timeout: float = 600) -> None:
    """Start `snakemake target` as `make pipeline` would and SIGKILL its process group once
    ``ready()`` holds (checked every 20 ms). Every job here asks for all the cores, so jobs run
    one at a time, each with the same thread count as the rerun's."""
    proc = subprocess.Popen(
        [*PIPELINE, target],
        cwd=project,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"snakemake {target} ended (rc {proc.returncode}) before the kill")
            if time.monotonic() > deadline:
                pytest.fail(f"snakemake {target}: the kill point never came")
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def resume(project: Path, target: str) -> None:
    """What `make pipeline` does after a crash: clear the dead run's lock, run again."""
    run(["bash", "scripts/unlock_if_stale.sh"], project)
    run([*PIPELINE, target], project)


def same_numbers(a, b, rtol: float = 1e-5) -> bool:
    """Equal records, floats to ``rtol`` (a loss summed in another order), all else exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_numbers(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=rtol, atol=0))
    return a == b


def stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    config = smoke_config(ablations=False)
    config["threads"] = THREADS  # every job asks for both cores: jobs run one at a time
    config["selection"]["shards"] = SHARDS
    config["selection"]["gradients"]["batch_size"] = 32  # 10 batches: shards of 3-4 batches
    config["retrain"] = {"max_epochs": 60, "patience": 60}  # long enough to be caught mid-way
    folder = copy_project(tmp_path_factory.mktemp("faults") / "project", config)
    run([*PIPELINE, "data/labels/tiny/bbc_news/wiki_pool/0.parquet"], folder)
    return folder


@pytest.mark.slow
def test_killed_sharded_store_resumes_and_equals_the_unsharded_store(project):
    shards = project / f"{STORE}.shards"
    expert_before = stamp(project / EXPERT / "model.safetensors")
    # jobs run one at a time, so Snakemake starts a second shard job (its log appears) only once
    # it has recorded the first one as done: kill the run right then, mid-store
    logs = project / "logs/gradient_shard/tiny/bbc_news/wiki_pool/main/0"
    kill_when(project, STORE, lambda: len(list(logs.glob("*.log"))) >= 2)
    assert not (project / STORE).exists()
    done = [p for p in shards.iterdir() if not p.name.startswith(".")]
    for shard in done:  # whatever is there under a shard's name is whole
        load_gradient_store(shard)
    assert 1 <= len(done) < SHARDS, done
    before = {shard.name: stamp(shard / "meta.json") for shard in done}

    resume(project, STORE)
    assert {name: stamp(shards / name / "meta.json") for name in before} == before  # not redone
    assert stamp(project / EXPERT / "model.safetensors") == expert_before
    assert sorted(p.name for p in shards.iterdir()) == [str(i) for i in range(SHARDS)]

    config = validate_config(smoke_config(ablations=False))
    spec = dict(config["selection"]["gradients"], batch_size=32)
    whole = project / "unsharded"
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # as the shard jobs ran
    try:
        labels = read_table(project / "data/labels/tiny/bbc_news/wiki_pool/0.parquet", "labels")
        store_for_labels(
            project / "data/models/base/tiny",
            project / EXPERT,
            labels,
            whole,
            GradientSpec(**spec),
            FinetuneSpec(**task_finetune(config, "bbc_news")),
            task_type="classification",
            num_classes=5,
            seed=0,
        )
    finally:
        torch.set_num_threads(threads)
    for name in ("target.f32", "meta.json"):
        assert (project / STORE / name).read_bytes() == (whole / name).read_bytes(), name
    # the rows were computed in other processes: equal up to how that CPU's BLAS kernels
    # happen to sum (byte-identity of sharding itself is tested in-process, test_gradients)
    joined, _, _ = load_gradient_store(project / STORE)
    reference, _, _ = load_gradient_store(whole)
    assert joined.shape == reference.shape
    scale = float(np.abs(reference).max())
    np.testing.assert_allclose(joined, reference, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.slow
def test_killed_retraining_leaves_no_result_and_reruns(project):
    labels_before = stamp(project / "data/labels/tiny/bbc_news/wiki_pool/0.parquet")
    out, log = project / RETRAIN, project / RETRAIN_LOG
    kill_when(project, RETRAIN, lambda: log.exists() and "finetune" in log.read_text())
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir()] if out.parent.exists() else []
    assert not [name for name in leftovers if name.endswith(".json")], leftovers

    resume(project, RETRAIN)
    result = read_json(out)
    # the rerun's numbers are those of a retraining never interrupted: the same job, from its
    # provenance record, run here in one go with the same thread count (in this process, whose
    # tensors sit at other addresses: BLAS kernels may sum differently by the last bits)
    job = read_json(project / "provenance" / f"{RETRAIN}.json")["config"]
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        again = retrain(
            project / job["base"],
            project / job["selection"],
            project / job["dataset"],
            (
                TaskSpec(**job["task"]),
                FinetuneSpec(**job["finetune"]),
                RetrainSpec(**job["retrain"]),
            ),
            (job["seed"], job["split_seed"]),
            project / "uninterrupted.json",
            job["keys"],
        )
    finally:
        torch.set_num_threads(threads)
    assert same_numbers(result, again) and np.isfinite(result["test_loss"])
    assert stamp(project / "data/labels/tiny/bbc_news/wiki_pool/0.parquet") == labels_before
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no crash litter either
