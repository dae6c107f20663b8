"""What a run reports about itself: runtime per rule, headline metrics, readable progress."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from weights2data.errors import UserError
from weights2data.progress import tqdm
from weights2data.report.headline import write_headline_metrics
from weights2data.report.runtime import read_benchmarks, write_runtime
from weights2data.usage import usage_line

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(root, rel, seconds, rss):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCH_HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")


def test_runtime_table_per_rule_with_the_logged_peak_memory(tmp_path):
    root, logs = tmp_path / "bench", tmp_path / "logs"
    for seed, seconds in enumerate([10.0, 30.0, 20.0]):
        _bench(root, f"retrain/t/{seed}.tsv", seconds, 15.0)  # a warm job: the client's RSS
        log = logs / "retrain" / "t" / f"{seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(
            f"training\nweights2data retrain: done in 9.0 s, peak memory {700 + seed} MB\n"
        )
    _bench(root, "ablation_scaling.tsv", 3.0, 400.0)  # no usage line: Snakemake's RSS
    (logs / "ablations").mkdir()
    (logs / "ablations" / "scaling.log").write_text("made a figure\n")
    paths = write_runtime(root, logs, tmp_path / "runtime")
    table = pd.read_csv(paths["csv"]).set_index("rule")
    assert table.loc["retrain", "jobs"] == 3 and table.loc["retrain", "median_s"] == 20.0
    assert table.loc["retrain", "total_s"] == 60.0 and table.loc["retrain", "peak_mb"] == 702
    assert table.loc["ablation_scaling", "peak_mb"] == 400.0
    assert list(table.index) == ["retrain", "ablation_scaling"]  # slowest total first
    md = paths["md"].read_text()
    assert md.startswith("CPU: ") and "| retrain | 3 | 20.0 | 1.0 | 30.0 | 702 |" in md


def test_runtime_table_names_a_broken_benchmark_file(tmp_path):
    (tmp_path / "select").mkdir()
    (tmp_path / "select" / "0.tsv").write_text("not\ta benchmark\n")
    with pytest.raises(UserError, match=r"select/0.tsv is unreadable.*delete it"):
        read_benchmarks(tmp_path, tmp_path)
    with pytest.raises(UserError, match="no benchmark files"):
        read_benchmarks(tmp_path / "none", tmp_path)


def test_usage_line_is_what_the_runtime_table_reads():
    line = usage_line("retrain", started=0.0)
    assert line.startswith("weights2data retrain: done in ") and line.endswith(" MB")


def _table_csv(path, group, rows):
    frame = pd.DataFrame(rows, columns=[group, "strategy", "metric", "mean"])
    frame.to_csv(path, index=False)
    return path


def test_headline_metrics_are_the_tables_means(tmp_path):
    t1 = _table_csv(
        tmp_path / "t1.csv",
        "task",
        [
            ("bbc", "select", "acc", 46.5),
            ("bbc", "select", "vocab", 3.0),
            ("bbc", "random", "acc", 40.0),
        ],
    )
    t2 = _table_csv(tmp_path / "t2.csv", "model", [("gpt2", "select", "ppl", 80.25)])
    diag = tmp_path / "diagnostics.csv"
    pd.DataFrame(
        {
            "task": ["bbc", "bbc", "bbc"],
            "strategy": ["expert", "expert", "select"],
            "cos_truth_delta": [0.3, 0.5, None],
            "cos_sel_truth": [None, None, 0.7],
        }
    ).to_csv(diag, index=False)
    out = tmp_path / "metrics.json"
    write_headline_metrics({"table1": t1, "table2": t2}, [diag], out)
    metrics = json.loads(out.read_text())
    assert metrics["table1"] == {"bbc": {"select": {"acc": 46.5}, "random": {"acc": 40.0}}}
    assert metrics["table2"] == {"gpt2": {"select": {"ppl": 80.25}}}
    assert metrics["premise"] == {"bbc": {"cos_truth_delta": 0.4, "select_cos_sel_truth": 0.7}}


def test_headline_metrics_name_a_table_without_its_columns(tmp_path):
    bad = tmp_path / "t1.csv"
    bad.write_text("task,value\nbbc,1\n")
    with pytest.raises(UserError, match=r"t1.csv lacks the columns"):
        write_headline_metrics({"table1": bad}, [], tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_progress_in_a_log_is_whole_lines_not_one_per_step():
    log = io.StringIO()
    bar = tqdm(total=5000, desc="finetune", file=log)
    for step in range(5000):
        bar.update(1)
        bar.set_postfix(loss=str(step))
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == 2  # the first and the last: 5,000 steps in well under 30 s
    assert lines[-1].startswith("finetune: 5000/5000 (100%)") and "loss=4999" in lines[-1]
