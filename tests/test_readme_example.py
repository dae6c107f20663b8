"""README's worked example, run as written on the smoke sizes: the project's own commands
finetune an expert of the packaged SmolLM2-135M, diagnose the pair, select with the Adam-aware
SELECT and with Random, and retrain on both picks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .project_copy import ROOT

# the README's first line holds every size; the test runs the rest of the block unchanged
SMOKE_SIZES = "N=24 VAL=12 TEST=12 POOL=40 K=8 EPOCHS=1 RETRAIN=1"
BLOCK = re.compile(r"<!-- example -->\n```bash\n(?P<script>.*?)```", re.S)


def readme_example() -> list[str]:
    found = BLOCK.search((ROOT / "README.md").read_text())
    assert found, "README.md lost its worked example (a bash block after <!-- example -->)"
    return found["script"].splitlines()


def test_the_example_sets_its_sizes_on_its_first_line():
    first = readme_example()[0]
    assert first.startswith("N=") and first.endswith("# sizes"), first
    names = [part.split("=")[0] for part in first.split("#")[0].split()]
    assert names == [part.split("=")[0] for part in SMOKE_SIZES.split()]


@pytest.mark.slow
def test_readme_example_runs_on_smoke_sizes(tmp_path):
    script = "\n".join([SMOKE_SIZES, *readme_example()[1:]])
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "relative drift" in done.stdout and "cos(S_true, Δ)" in done.stdout
    assert "strategy select_pre: the Adam-aware space" in done.stderr
    for strategy in ("select_pre", "random"):
        result = json.loads((tmp_path / "example" / f"{strategy}.json").read_text())
        assert 0.0 <= result["test_acc"] <= 1.0, result
