"""Where a run's time goes: per rule, its jobs' wall time and peak memory, and the CPU it ran on.

Wall time comes from Snakemake's ``benchmark:`` files. Peak memory comes from the step's own
last log line (``usage.usage_line``): a warm-started step runs in a process forked from the warm
server, outside the job's process tree, so Snakemake's own RSS column would miss it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ..atomic import write_text
from ..errors import UserError
from ..usage import cpu_model
from .writers import markdown_table, suffixed, write_csv

_USAGE = re.compile(r"done in [\d.]+ s, peak memory (\d+) MB")
COLUMNS = ["rule", "jobs", "median_s", "total_s", "max_s", "peak_mb"]


def _log_of(bench: Path, root: Path, logs: Path) -> Path:
    # TODO(paths): maps a benchmark file to its log by the folder layout both share (and the
    # ablation_ prefix); the run-path template module should give both paths instead.
    rel = bench.relative_to(root).with_suffix(".log")
    name = rel.name
    if len(rel.parts) == 1 and name.startswith("ablation_"):
        return logs / "ablations" / name.removeprefix("ablation_")
    return logs / rel


def _logged_peak(log: Path) -> float | None:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    found = _USAGE.findall(text)
    return float(found[-1]) if found else None


def read_benchmarks(root: Path, logs: Path) -> pd.DataFrame:
    """One row per job: its rule (the benchmark's first folder), wall time, peak memory, and
    when it ended (the benchmark's modification time)."""
    rows = []
    for bench in sorted(root.rglob("*.tsv")):
        try:
            table = pd.read_csv(bench, sep="\t")
            seconds, rss = float(table["s"].iloc[-1]), float(table["max_rss"].iloc[-1])
        except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
            raise UserError(
                f"benchmark file {bench} is unreadable ({exc}); delete it and rerun its job."
            ) from exc
        logged = _logged_peak(_log_of(bench, root, logs))
        rows.append(
            {
                # TODO(paths): the rule is read back from the benchmark path's first part.
                "rule": bench.relative_to(root).parts[0].removesuffix(".tsv"),
                "s": seconds,
                "peak_mb": logged if logged is not None else rss,
                "ended": bench.stat().st_mtime,
            }
        )
    if not rows:
        raise UserError(f"no benchmark files under {root}; run the pipeline first.")
    return pd.DataFrame(rows)


def runtime_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, median / total / max wall seconds, peak memory; slowest total first."""
    grouped = jobs.groupby("rule")
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "median_s": grouped["s"].median(),
            "total_s": grouped["s"].sum(),
            "max_s": grouped["s"].max(),
            "peak_mb": grouped["peak_mb"].max(),
        }
    ).reset_index()
    return table.sort_values(["total_s", "rule"], ascending=[False, True])[COLUMNS]


def write_runtime(root: Path, logs: Path, out_stem: str | os.PathLike) -> dict[str, Path]:
    """``{out_stem}.csv`` and ``.md``: the runtime table, its CPU, and the run's span."""
    jobs = read_benchmarks(Path(root), Path(logs))
    table = runtime_table(jobs)
    span = float((jobs["ended"]).max() - (jobs["ended"] - jobs["s"]).min())
    paths = {"csv": write_csv(suffixed(out_stem, ".csv"), table.round(1))}
    body = [
        [
            r.rule,
            str(r.jobs),
            f"{r.median_s:.1f}",
            f"{r.total_s / 60:.1f}",
            f"{r.max_s:.1f}",
            f"{r.peak_mb:.0f}",
        ]
        for r in table.itertuples()
    ]
    header = ["rule", "jobs", "median s", "total min", "max s", "peak MB"]
    text = (
        f"CPU: {cpu_model()}, {os.cpu_count()} cores. {len(jobs)} jobs, "
        f"{table['total_s'].sum() / 60:.1f} min of job time; first start to last end "
        f"{span / 60:.1f} min (jobs of earlier runs count when they were not rerun).\n\n"
        + markdown_table(header, body, "l" + "r" * 5)
    )
    paths["md"] = suffixed(out_stem, ".md")
    write_text(paths["md"], text)
    return paths
