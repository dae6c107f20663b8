"""Where a `retrain` and a `gradient-store` step of the default spend their time: start-up
(process start and the imports a warm-started pipeline job finds done), opening the weights,
fingerprints, reading trunk caches, the arithmetic, and writing the result. This checkout
against an earlier commit, side by side on the same inputs.

Set-up (this checkout, once): SmolLM2-135M untied, BBC News as the default task (1,000 / 200 /
400), the default's Wikipedia pool (every passage, so the pool's cache has its real size), top:1
trunk caches of both (bf16, 64 tokens, cut on the right; the earlier commit builds its own, as
the cache key may differ between versions), a top:1 expert, the pool's pseudolabels and a
selection of K = 300. Each step then runs in its own process under cProfile (phases from the
cumulative time of named functions, found in either version) and ``--runs`` times plainly for
the wall time (median).

    python benchmarks/bench_step_phases.py [--before HEAD] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import pstats
import statistics
from pathlib import Path

from bench_model_layer import ROOT, before_and_after, caches_by, cli, cpu_name, set_up

DATASETS = {
    "rt": {"source": "bbc_news", "val_fraction": 0.2, "test_fraction": 0.2},
    "pool": {
        "source": "wiki_passages",
        "part": [1, 3],
        "passage_words": 24,
        "val_fraction": 0.02,
        "test_fraction": 0.02,
    },
}
TASK = {"dataset": "rt", "type": "classification", "train_size": 1000, "val_size": 200}
TASK.update(test_size=400)
RETRAIN = {"max_epochs": 10, "patience": 3}
# phase: the (file suffix, function) pairs whose cumulative time it is
PHASES = {
    "fingerprint": [
        ("models/regime.py", "trunk_fingerprint"),
        ("models/fingerprint.py", "weights_fingerprint"),
    ],
    "open weights": [("models/folders.py", "load_weights"), ("folders.py", "load_tokenizer")],
    "read cache": [("models/cache.py", "open"), ("models/cache.py", "lookup")],
    "write": [("gradients/store.py", "_write_store"), ("weights2data/atomic.py", "write_json")],
}
# the store computes inside its writer: the gradient pass is compute, not writing
NOT_IN = {"write": [("gradients/store.py", "_fill_checkpoint"), ("gradients/rms.py", "finish")]}


def _cumulative(stats: dict, names: list[tuple[str, str]]) -> float:
    return sum(
        cumulative
        for (file, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.items()
        if any(file.endswith(suffix) and function == name for suffix, name in names)
    )


def _hashing_inside_open(stats: dict) -> float:
    """Time of the weights hashes a top folder's load makes (already counted as fingerprint)."""
    total = 0.0
    for (file, _line, function), (*_counts, callers) in stats.items():
        if file.endswith("models/fingerprint.py") and function == "weights_fingerprint":
            for (caller_file, _l, _f), (_cc, _nc, _tt, cumulative) in callers.items():
                total += cumulative if caller_file.endswith("models/tops.py") else 0.0
    return total


def phases(profile: Path, wall: float) -> dict[str, float]:
    """Seconds per phase; compute = the step's own time less the named phases."""
    stats = pstats.Stats(str(profile)).stats
    out = {phase: _cumulative(stats, names) for phase, names in PHASES.items()}
    for phase, names in NOT_IN.items():
        out[phase] -= _cumulative(stats, names)
    main = _cumulative(stats, [("weights2data/cli.py", "main")])
    out["open weights"] -= _hashing_inside_open(stats)
    out["compute"] = max(0.0, main - sum(out.values()))
    out["start-up"] = max(0.0, wall - main)
    return out


def measure(steps: dict, versions: dict, swaps: dict, work: Path, runs: int) -> list:
    """Each step under each version: phases of one profiled run, median wall of ``runs``."""
    rows = []
    for step, args in steps.items():
        for label, src in versions.items():
            own = [swaps[label].get(a, a) for a in args]
            out = work / f"{step}-{label[:5]}"
            wall = cli(src, [*own, str(out) + ".profiled"], work / "profile")
            split = phases(work / "profile", wall)
            times = [cli(src, [*own, f"{out}.{i}"]) for i in range(runs)]
            rows.append((step, label, split, statistics.median(times)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="HEAD", help="the commit to compare against")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print(f"CPU: {cpu_name()}; torch threads 2 per step")
    with before_and_after(options.before) as (work, before):
        steps = set_up(work, DATASETS, TASK, k=300)
        retrain = steps["retrain"]
        retrain[retrain.index("--retrain") + 1] = json.dumps(RETRAIN)
        label = f"before ({options.before})"
        versions = {label: before, "after": ROOT / "src"}
        # each version reads caches it built: the key's trunk fingerprint may differ
        swaps = {label: caches_by(before, work), "after": {}}
        rows = measure(steps, versions, swaps, work, options.runs)
    names = ["start-up", "open weights", "fingerprint", "read cache", "compute", "write"]
    print(f"| step | version | {' | '.join(names)} (s, one profiled run) | wall s (median of "
          f"{options.runs}) |")  # fmt: skip
    print("|---|---|" + "---:|" * (len(names) + 1))
    for step, label, split, wall in rows:
        cells = " | ".join(f"{split[name]:.2f}" for name in names)
        print(f"| {step} | {label} | {cells} | {wall:.1f} |")


if __name__ == "__main__":
    main()
