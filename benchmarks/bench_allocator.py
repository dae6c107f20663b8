"""What glibc's handling of large buffers costs a step: the same batch loop with the allocator
as it comes, and after ``device.keep_freed_memory`` (freed buffers kept for reuse).

The loop is the full-vocabulary residual of a gradient store: softmax over P × V logits, the
target subtracted, squared in float64 for the RMS statistics, at the chunk size the store uses
(``losses.CHUNK_ELEMENTS``). Each variant runs in its own process (the setting is per process),
side by side, at one thread; it prints the median seconds per batch, the process's user and
system time, and whether the two variants computed the same bytes.

    python benchmarks/bench_allocator.py [--batches 30] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench_model_layer import cpu_name

CHILD = """
import hashlib, json, resource, sys, time
import torch
from weights2data.device import keep_freed_memory
from weights2data.losses import CHUNK_ELEMENTS
torch.set_num_threads(1)
kept = keep_freed_memory() if sys.argv[1] == "kept" else False
V = 4096
P = CHUNK_ELEMENTS // V
g = torch.Generator().manual_seed(0)
logits = torch.randn(P, V, generator=g)
targets = torch.randint(0, V, (P,), generator=g)
digest, times = hashlib.sha256(), []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    u = torch.softmax(logits, dim=1)
    u[torch.arange(P), targets] -= 1.0
    stats = u.double().square().sum(dim=0)
    times.append(time.perf_counter() - start)
digest.update(stats.numpy().tobytes())
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"kept": kept, "times": times, "user": usage.ru_utime,
                  "system": usage.ru_stime, "digest": digest.hexdigest()}))
"""


def run(variant: str, batches: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(batches)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; one thread; {args.batches} batches of a 64 MB residual per run")
    results: dict[str, list[dict]] = {"default": [], "kept": []}
    for _ in range(args.runs):  # interleaved, so both variants see the same machine
        for variant in results:
            results[variant].append(run(variant, args.batches))
    medians = {}
    for variant, runs in results.items():
        per_batch = statistics.median(t for r in runs for t in r["times"][1:])
        medians[variant] = per_batch
        user = statistics.median(r["user"] for r in runs)
        system = statistics.median(r["system"] for r in runs)
        print(
            f"{variant:>8}: {per_batch * 1000:7.1f} ms per batch, user {user:5.1f} s, "
            f"system {system:5.1f} s (medians of {args.runs} runs)"
        )
    same = len({r["digest"] for runs in results.values() for r in runs}) == 1
    print(f"speed-up {medians['default'] / medians['kept']:.2f}x; same bytes: {same}")


if __name__ == "__main__":
    main()
