"""Steps that assemble the paper's tables and figures from the runs' records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .args import arg


@dataclass(frozen=True, kw_only=True)
class ExpertsReportArgs:
    experts: dict = arg(help='the experts\' metrics files: {"path": {"task": …, "seed": …}}')
    out_stem: Path = arg()


def experts_report(args: ExpertsReportArgs) -> None:
    """Each expert's test accuracy and loss beside the majority-class rate."""
    import pandas as pd

    from ..readers import read_record
    from ..report.tables import experts_table

    rows = []
    for path, at in args.experts.items():
        m = read_record(path, "expert metrics", ("seed", "test_loss"))
        rows.append(
            {
                "task": at["task"],
                "seed": m["seed"],
                "acc": m.get("test_acc"),
                "loss": m["test_loss"],
                "majority": m.get("majority_rate"),
            }
        )
    experts_table(pd.DataFrame(rows), str(args.out_stem))


@dataclass(frozen=True, kw_only=True)
class TableArgs:
    kind: str = arg(choices=("classification", "sft"))
    retrain: tuple[Path, ...] = arg(help="the retraining JSONs")
    similarity: tuple[Path, ...] = arg(help="the similarity JSONs")
    experts: dict = arg(help='the experts\' metrics files: {"path": {"base": …, "task": …}}')
    out_stem: Path = arg()


def table(args: TableArgs) -> None:
    """Table 1 (classification) or Table 2 (SFT), and its paired comparison with Random."""
    from ..report.results import write_results_table

    write_results_table(
        args.kind,
        [str(p) for p in args.retrain],
        [str(p) for p in args.similarity],
        args.experts,
        str(args.out_stem),
    )


@dataclass(frozen=True, kw_only=True)
class DatasetsTableArgs:
    roles: dict = arg(help='{"name": {"source": …, "role": …, "path": its table}}')
    out_stem: Path = arg()


def datasets_table(args: DatasetsTableArgs) -> None:
    """Table 3: each dataset, its role in this config, its sizes and source."""
    from ..report.results import write_datasets_table

    write_datasets_table(args.roles, str(args.out_stem))


@dataclass(frozen=True, kw_only=True)
class ClassBalanceArgs:
    selections: dict = arg(help='{"path": {"task": …, "strategy": …, "seed": …}}')
    task_datasets: dict = arg(help='{"task": "dataset path"}')
    out_stem: Path = arg()


def class_balance(args: ClassBalanceArgs) -> None:
    """The label distribution of each strategy's picks."""
    from ..report.results import write_class_balance

    write_class_balance(args.selections, args.task_datasets, str(args.out_stem))


@dataclass(frozen=True, kw_only=True)
class RuntimeTableArgs:
    benchmarks: Path = arg(help="folder of Snakemake benchmark files")
    logs: Path = arg(help="folder of the jobs' logs (peak memory)")
    out_stem: Path = arg()


def runtime_table(args: RuntimeTableArgs) -> str:
    """Per rule: jobs, median / total / max wall time, peak memory, and the CPU."""
    from ..report.runtime import write_runtime

    paths = write_runtime(args.benchmarks, args.logs, str(args.out_stem))
    return f"runtime table -> {paths['md']}"


@dataclass(frozen=True, kw_only=True)
class HeadlineMetricsArgs:
    table1: Path = arg(help="figures/table1.csv")
    table2: tuple[Path, ...] = arg((), help="figures/table2.csv, if any")
    diagnostics: tuple[Path, ...] = arg(help="figures/diagnostics*.csv")
    out: Path = arg()


def headline_metrics(args: HeadlineMetricsArgs) -> str:
    """The tables' headline numbers as one JSON (DVC's metrics)."""
    from ..report.headline import write_headline_metrics

    tables = {"table1": args.table1}
    if args.table2:
        tables["table2"] = args.table2[0]
    write_headline_metrics(tables, list(args.diagnostics), args.out)
    return f"headline metrics -> {args.out}"
