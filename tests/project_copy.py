"""A throw-away git copy of the project for tests that run Snakemake or DVC on it for real."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
SNAKEMAKE, DVC = str(BIN / "snakemake"), str(BIN / "dvc")
# what `make pipeline` runs: the local profile (rerun-incomplete) and 2 cores
PIPELINE = [SNAKEMAKE, "--workflow-profile", "workflow/profiles/default", "--cores", "2"]


def load_script(name: str):
    """A module of ``scripts/<name>.py`` (the scripts are files, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: list[str], cwd: Path, timeout: int = 900, env: dict | None = None) -> str:
    """Run a command to completion; on failure, fail the test with the end of its output."""
    proc = subprocess.run(
        args,
        cwd=cwd,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout + proc.stderr


def git(args: list[str], cwd: Path) -> str:
    return run(["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci", *args], cwd)


def smoke_config(ablations: bool = True) -> dict:
    """The smoke profile; ``ablations=False`` switches every ablation off."""
    config = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    if not ablations:
        for section in config.get("ablations", {}).values():
            if isinstance(section, dict):
                section["enabled"] = False
    return config


def copy_project(dest: Path, config: dict) -> Path:
    """A git copy of the project (no data, figures or logs) whose config.yaml is ``config``
    (DVC reads config.yaml, so the copy's default config must be the one under test)."""
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
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run(["git", "init", "-q"], dest)
    git(["add", "-A"], dest)
    git(["commit", "-qm", "the project"], dest)
    return dest
