#!/usr/bin/env python3
"""Copy a finished run's tables and figures into this checkout's results/ with their provenance.

    python scripts/record_results.py RUN_FOLDER --wall "58 min 10 s" [--command "make pipeline"]

RUN_FOLDER is the project folder the run happened in (a fresh clone, say). Its figures/ (md,
csv, png, json; the PDFs stay out of git) replace our results/ (the record of the last full
run; figures/ is where a run writes, so a fresh clone's `make pipeline` runs; the other
profiles' records, results/toy/ and results/smollm2/, stay), and
results/PROVENANCE.md records the commit, date, CPU and wall time; the README's generated
blocks are refilled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from weights2data.usage import cpu_model

ROOT = Path(__file__).resolve().parents[1]
KEEP = (".md", ".csv", ".png", ".json")


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


def _clear_run(target: Path, source: Path) -> None:
    """Remove the last default run's record: results/'s files and the folders a run writes
    (ablations/), not the other profiles' records kept beside it (results/toy/, …)."""
    if not target.exists():
        return
    for path in target.iterdir():
        if path.is_file():
            path.unlink()
        elif (source / path.name).is_dir():
            shutil.rmtree(path)


# the lscpu fields that say how fast this CPU runs the default (AMX and AVX-512 bf16 above all)
LSCPU_FIELDS = ("Architecture", "Vendor ID", "Model name", "CPU family", "Model", "CPU(s)")
LSCPU_FLAGS = ("amx", "avx512", "avx2", "fma")


def _lscpu() -> str:
    """``lscpu``'s fields that identify the CPU, and its vector flags, on one line."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return f"{cpu_model()}, {os.cpu_count()} cores (lscpu not available)"
    fields, flags = [], []
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in LSCPU_FIELDS:
            fields.append(f"{name.strip()} {value.strip()}")
        elif name.strip() == "Flags":
            flags = [f for f in value.split() if f.startswith(LSCPU_FLAGS)]
    return f"{'; '.join(fields)}; vector flags: {' '.join(flags)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the project folder the run happened in")
    parser.add_argument("--wall", required=True, help='wall time of the run, e.g. "58 min 10 s"')
    parser.add_argument("--command", default="make pipeline", help="what was run")
    args = parser.parse_args()
    source = args.run / "figures"
    if not (source / "table1.md").is_file():
        raise SystemExit(f"{source} has no table1.md: is {args.run} a finished run?")
    target = ROOT / "results"
    _clear_run(target, source)
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in KEEP and path.name != "report.html":
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    commit = _git(args.run, "rev-parse", "HEAD")
    dirty = bool(_git(args.run, "status", "--porcelain", "--untracked-files=no"))
    ended = dt.datetime.fromtimestamp((source / "table1.md").stat().st_mtime, dt.UTC)
    (target / "PROVENANCE.md").write_text(
        "#### Provenance of these results\n\n"
        f"- command: `{args.command}` from a fresh clone (set-up included)\n"
        f"- commit: `{commit}`{' (with uncommitted changes)' if dirty else ''}\n"
        f"- date: {ended:%Y-%m-%d %H:%M} UTC (when Table 1 was written)\n"
        f"- CPU (`lscpu`): {_lscpu()}\n"
        f"- wall time: {args.wall}\n"
        "- per-rule job times: runtime.md\n"
    )
    subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py")], check=True)
    print(f"results/ now holds the run of {commit[:10]} ({args.wall})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
