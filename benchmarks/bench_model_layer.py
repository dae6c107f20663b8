"""How often one `gradient-store` and one `retrain` step open and fingerprint weights, and their
wall time: this checkout against an earlier commit (default: the last one before the model
layer), side by side on the same inputs.

Set-up (this checkout): SmolLM2-135M untied, a Rotten Tomatoes task (600 rows) and a 400-passage
Wikipedia pool, top:1 trunk caches of both (bf16, 64 tokens, cut on the right), a top:1 expert
and the pool's pseudolabels. Then each step runs as its own process, as Snakemake runs it:
once under cProfile for the counts (calls of the folder loader, the trunk fingerprint and the
weights-file fingerprint, found by function name in either version), then ``--runs`` times
plainly for the wall time (median). The earlier commit runs from a ``git worktree``.

    python benchmarks/bench_model_layer.py [--before c211137] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTED = {
    "open a model folder": "_load_folder",
    "fingerprint the trunk": "trunk_fingerprint",
    "hash a weights folder": "weights_fingerprint",
}
TASK = {"dataset": "rt", "type": "classification", "train_size": 200, "val_size": 50}
TASK.update(test_size=50)
FINETUNE = {"trainable": "top:1", "max_length": 64, "truncate": "right", "epochs": 1}
FINETUNE.update(optimizer="adam", lr=1e-3, batch_size=32, loss="label_masked")
CACHE = {"regime": "top:1", "encoding": "classification", "max_length": 64}
CACHE.update(truncate="right", dtype="bfloat16")


def cli(src: Path, args: list[str], profile: Path | None = None) -> float:
    """Run ``weights2data <args>`` with ``src`` first on the path; seconds of wall time."""
    code = "import sys; from weights2data.cli import main; sys.exit(main(sys.argv[1:]))"
    if profile is not None:
        # the warm server's imports first, as a pipeline job has them: the profile is the step's
        code = (
            "import cProfile, sys; from weights2data.warm import _preload; _preload(); "
            "from weights2data.cli import main; "
            f"cProfile.run('main(sys.argv[1:])', {str(profile)!r})"
        )
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True)
    if done.returncode != 0:
        sys.exit(f"weights2data {args[0]} failed ({src}):\n{done.stderr.decode()[-3000:]}")
    return time.perf_counter() - start


def cpu_name() -> str:
    """The CPU's model name and core count, as every timing here names it."""
    cpu = platform.processor() or "unknown"
    if Path("/proc/cpuinfo").is_file():
        names = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return f"{cpu}, {os.cpu_count()} cores"


def counts(profile: Path) -> dict[str, int]:
    stats = pstats.Stats(str(profile)).stats
    out = dict.fromkeys(COUNTED, 0)
    for (_file, _line, function), (calls, *_rest) in stats.items():
        for label, name in COUNTED.items():
            if function == name:
                out[label] += calls
    return out


SMALL = {
    "rt": {"source": "rotten_tomatoes", "max_rows": 600, "val_fraction": 0.2},
    "pool": {"source": "wiki_passages", "part": [1, 3], "passage_words": 24, "max_rows": 400},
}


def set_up(
    work: Path, datasets: dict = SMALL, task: dict = TASK, k: int = 100
) -> dict[str, list[str]]:
    """The shared inputs, made by this checkout: a base, the task's and the pool's datasets
    (``datasets``: named "rt" and "pool") with their trunk caches, a top:1 expert, the pool's
    pseudolabels and a selection of their first ``k``; the two steps' command lines."""
    src = ROOT / "src"
    base, data = work / "base", work / "data"
    data.mkdir()
    from weights2data.pretrain import make_base

    make_base({"kind": "smollm2"}, [], base)
    for name, spec in datasets.items():
        cli(src, ["dataset", "--spec", json.dumps(spec), "--out", str(data / f"{name}.parquet")])
        cache = ["--spec", json.dumps(CACHE), "--out", str(data / f"{name}.safetensors")]
        dataset = ["--dataset", str(data / f"{name}.parquet")]
        cli(src, ["trunk-cache", "--base", str(base), *dataset, *cache])
    caches = ["--trunk-cache", str(data / "rt.safetensors"), str(data / "pool.safetensors")]
    task_args = ["--dataset", str(data / "rt.parquet"), "--task", json.dumps(task)]
    task_args += ["--finetune", json.dumps(FINETUNE)]
    expert = work / "expert"
    cli(src, ["finetune", "--base", str(base), *task_args, "--seed", "0", *caches[:2]]
        + ["--out", str(expert), "--metrics", str(work / "expert.json")])  # fmt: skip
    cli(src, ["pool", "--dataset", str(data / "pool.parquet"), "--seed", "0"]
        + ["--out", str(data / "pool_0.parquet")])  # fmt: skip
    labels = data / "labels.parquet"
    cli(src, ["autolabel", "--final", str(expert), "--pool", str(data / "pool_0.parquet")]
        + [*task_args, *caches, "--out", str(labels)])  # fmt: skip
    import pandas as pd

    frame = pd.read_parquet(labels).head(k)
    frame.insert(0, "index", range(len(frame)))
    frame.to_parquet(data / "selection.parquet")
    store = ["gradient-store", "--base", str(base), "--final", str(expert)]
    store += ["--labels", str(labels), *task_args, "--spec", json.dumps({"k": 1024})]
    store += ["--seed", "0", *caches, "--out"]
    retrain = ["retrain", "--base", str(base), "--selection", str(data / "selection.parquet")]
    retrain += [*task_args, "--retrain", json.dumps({"max_epochs": 3, "patience": 3})]
    retrain += ["--seed", "0", *caches, "--out"]
    return {"gradient-store": store, "retrain": retrain}


def caches_by(src: Path, work: Path, names: tuple[str, ...] = ("rt", "pool")) -> dict[str, str]:
    """The set-up's trunk caches built again by the code in ``src`` (a version whose cache key
    differs); {the set-up's cache path: this version's}."""
    into = work / f"caches-{abs(hash(str(src)))}"
    into.mkdir(exist_ok=True)
    swap = {}
    for name in names:
        out = into / f"{name}.safetensors"
        dataset = ["--dataset", str(work / "data" / f"{name}.parquet")]
        cli(src, ["trunk-cache", "--base", str(work / "base"), *dataset]
            + ["--spec", json.dumps(CACHE), "--out", str(out)])  # fmt: skip
        swap[str(work / "data" / f"{name}.safetensors")] = str(out)
    return swap


@contextlib.contextmanager
def before_and_after(commit: str) -> Iterator[tuple[Path, Path]]:
    """A scratch folder, and the ``src`` of ``commit`` checked out in it (a git worktree,
    removed afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(["git", "worktree", "add", "--detach", str(work / "before"), commit],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        try:
            yield work, work / "before" / "src"
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "before")], cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="c211137", help="the commit to compare against")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles", type=Path, help="keep each step's cProfile output here")
    options = parser.parse_args()
    print(f"CPU: {cpu_name()}; torch threads 2 per step")
    with before_and_after(options.before) as (work, before):
        steps = set_up(work)
        label = f"before ({options.before})"
        versions = {label: before, "after": ROOT / "src"}
        # each version reads caches it built: the key's trunk fingerprint may differ
        swaps = {label: caches_by(before, work), "after": {}}
        rows = []
        for step, shared in steps.items():
            for label, src in versions.items():
                args = [swaps[label].get(a, a) for a in shared]
                out = work / f"{step}-{label[:5]}"
                cli(src, [*args, str(out) + ".profiled"], work / "profile")
                seen = counts(work / "profile")
                if options.profiles:
                    options.profiles.mkdir(parents=True, exist_ok=True)
                    kept = options.profiles / f"{step}-{label.split()[0]}.prof"
                    kept.write_bytes((work / "profile").read_bytes())
                times = [cli(src, [*args, f"{out}.{i}"]) for i in range(options.runs)]
                rows.append((step, label, seen, statistics.median(times)))
    header = " | ".join(COUNTED)
    print(f"| step | version | {header} | wall s (median of {options.runs}) |")
    print("|---|---|" + "---|" * len(COUNTED) + "---|")
    for step, label, seen, wall in rows:
        cells = " | ".join(str(seen[name]) for name in COUNTED)
        print(f"| {step} | {label} | {cells} | {wall:.1f} |")


if __name__ == "__main__":
    main()
