"""Start-up cost of one similarity job (103 of them in the default run), side by side.

Each trial is a fresh Python process, as a Snakemake job is, that loads the Vocab metric's
tokenizer, tokenizes a sentence and computes one exact OT distance between two 300×384
clouds:

- current: ``weights2data.metrics`` (``tokenizers`` straight from MiniLM's tokenizer.json, POT
  imported without its torch backend);
- before: transformers' ``AutoTokenizer`` on the same folder and a plain ``import ot`` (which
  imports torch for its backend), as the step did until this benchmark was written.

Both give the same pieces (checked here) and the same distance. The two variants alternate,
so machine noise falls on both alike. Prints medians and their ratio.
Run: .venv/bin/python benchmarks/bench_metric_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

TRIALS = 7
TEXT = "Stocks fell sharply as markets reacted to the minister's news."
CLOUDS = (
    "import numpy as np; rng = np.random.default_rng(0); "
    "a = rng.standard_normal((300, 384)); b = rng.standard_normal((300, 384))"
)
CURRENT = f"""
from weights2data.metrics import metric_tokenizer, ot_distance
{CLOUDS}
print(metric_tokenizer().tokenize({TEXT!r}), round(ot_distance(a, b), 6))
"""
BEFORE = f"""
from transformers import AutoTokenizer
import ot
from weights2data.metrics import minilm_dir
{CLOUDS}
tok = AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)
w = np.full(300, 1 / 300)
print(tok.tokenize({TEXT!r}), round(float(ot.emd2(w, w, ot.dist(a, b))), 6))
"""


def timed(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return time.perf_counter() - start, out.strip()


def main() -> None:
    times: dict[str, list[float]] = {"current": [], "before": []}
    outputs: dict[str, set[str]] = {"current": set(), "before": set()}
    for _ in range(TRIALS):
        for name, code in (("current", CURRENT), ("before", BEFORE)):
            seconds, out = timed(code)
            times[name].append(seconds)
            outputs[name].add(out)
    if outputs["current"] != outputs["before"] or len(outputs["current"]) != 1:
        raise SystemExit(f"the two variants disagree: {outputs}")
    current, before = (statistics.median(times[name]) for name in ("current", "before"))
    print(f"similarity-step start-up, median of {TRIALS} fresh processes each (alternating):")
    print(f"  current (tokenizers + POT without torch): {current:.2f} s")
    print(f"  before  (transformers + POT with torch):  {before:.2f} s")
    print(f"  before / current: {before / current:.1f}x; same output: {outputs['current'].pop()}")


if __name__ == "__main__":
    main()
