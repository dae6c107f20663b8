"""What a pipeline job pays besides its own work, and the two fixes for it on a small CPU.

1. Start-up: one cheap step (`weights2data pool`) in a process of its own (W2D_WARM=0) against
   forked from the warm server. The pipeline runs ~460 jobs, so this is paid ~460 times.
2. GELU: one training step of the default base with GPT-2's composite tanh GELU (gelu_new)
   against torch's fused kernel of the same function (what `models.fast_gelu` switches to).
3. Threads: the same step at 1 and 2 torch threads (two 1-thread jobs run at once on 2 cores).

Prints medians of 5 runs side by side and their ratios, with the CPU. Run alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from weights2data import warm
from weights2data.data.build import build_dataset
from weights2data.data.files import write_dataset
from weights2data.usage import cpu_model

REPEATS = 5
CLI = str(Path(sys.executable).parent / "weights2data")


def _time_command(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def startup(folder: Path) -> tuple[float, float]:
    dataset = folder / "dataset.parquet"
    write_dataset(build_dataset("bbc_news", max_rows=200), dataset)
    os.environ["XDG_RUNTIME_DIR"] = str(folder / "run")  # this benchmark's own server
    env, path = dict(os.environ), warm.socket_path()
    argv = [CLI, "pool", "--dataset", str(dataset), "--size", "50", "--seed", "0"]
    argv += ["--out", str(folder / "pool.parquet")]
    cold = [_time_command(argv, {**env, "W2D_WARM": "0"}) for _ in range(REPEATS)]
    server = subprocess.Popen([sys.executable, "-m", "weights2data.warm", str(path)], env=env)
    try:
        while not path.exists():
            time.sleep(0.2)
        hot = [_time_command(argv, env) for _ in range(REPEATS)]
    finally:
        server.terminate()
        server.wait()
    return statistics.median(cold), statistics.median(hot)


def training_step(activation: str, threads: int) -> float:
    """Median seconds of a forward + backward of the default base on a 32×64 batch."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=4096,
        n_embd=128,
        n_layer=4,
        n_head=4,
        n_positions=64,
        activation_function=activation,
    )
    model = GPT2LMHeadModel(config)
    batch = torch.randint(0, 4096, (32, 64))
    times = []
    for _ in range(REPEATS + 2):
        started = time.perf_counter()
        model(input_ids=batch, labels=batch).loss.backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def main() -> None:
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; medians of {REPEATS}")
    with tempfile.TemporaryDirectory() as tmp:
        cold, hot = startup(Path(tmp))
    print(
        f"one cheap step, own process: {cold:6.2f} s   warm fork: {hot:6.2f} s   "
        f"ratio {cold / hot:4.1f}x"
    )
    composite, fused = training_step("gelu_new", 1), training_step("gelu_pytorch_tanh", 1)
    print(
        f"training step, gelu_new: {composite * 1e3:6.0f} ms   fused: {fused * 1e3:6.0f} ms   "
        f"ratio {composite / fused:4.2f}x"
    )
    two = training_step("gelu_pytorch_tanh", 2)
    print(
        f"training step, 1 thread: {fused * 1e3:6.0f} ms   2 threads: {two * 1e3:6.0f} ms   "
        f"speed-up {fused / two:4.2f}x (two 1-thread jobs at once: up to 2x)"
    )


if __name__ == "__main__":
    main()
