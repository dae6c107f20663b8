"""Subcommands of the ablations: leaked pools (F3), the replacement check (F4) and reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import comparison_args, comparison_inputs, json_arg, threads_arg

# The report kinds of weights2data.report.ablations.REPORTS (listed here so that --help stays fast).
REPORT_KINDS = ("leakage", "optimizer", "pools", "replacement", "sweep")


def cmd_leak_pool(args) -> None:
    from .ablation_steps import build_leaked_pool

    pool = build_leaked_pool(
        Path(args.dataset),
        args.task,
        Path(args.pool_dataset),
        args.fraction,
        args.seed,
        args.split_seed,
        Path(args.out),
    )
    n_true = int(pool["is_true"].sum())
    print(f"leaked pool: {n_true} true + {len(pool) - n_true} other texts -> {args.out}")


def cmd_leak_embeddings(args) -> None:
    from .ablation_steps import leaked_embeddings

    emb = leaked_embeddings(
        Path(args.pool),
        Path(args.regular_pool),
        Path(args.regular_embeddings),
        Path(args.truth_embeddings),
        Path(args.out),
    )
    print(f"embeddings {emb.shape} -> {args.out}")


def cmd_replacement(args) -> None:
    from .ablation_steps import replacement_metrics

    records = replacement_metrics(
        *comparison_inputs(args),
        args.fractions,
        args.trials,
        Path(args.out),
        ot_method=args.ot,
        max_tokens=args.max_tokens,
    )
    print(f"replacement: {len(records)} (fraction, trial) records -> {args.out}")


def cmd_ablation_report(args) -> None:
    from .report.ablations import write_report

    paths = write_report(args.kind, args.spec, args.out_stem)
    print(f"{args.kind} report: {', '.join(str(p) for p in paths.values())}")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction must lie in [0, 1], got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leak-pool", help="F3: a seed pool holding the expert's true texts")
    p.add_argument("--dataset", required=True, help="the task's dataset parquet")
    p.add_argument("--task", type=json_arg, required=True, help="the config's tasks.<name>")
    p.add_argument("--pool-dataset", required=True, help="dataset the other pool texts come from")
    p.add_argument("--fraction", type=_fraction, required=True, help="share of true texts")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_leak_pool)

    p = sub.add_parser("leak-embeddings", help="F3: embeddings of a leaked pool (reused rows)")
    p.add_argument("--pool", required=True, help="the leaked pool parquet")
    p.add_argument("--regular-pool", required=True, help="the seed's regular pool parquet")
    p.add_argument("--regular-embeddings", required=True)
    p.add_argument("--truth-embeddings", required=True)
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_leak_embeddings)

    p = sub.add_parser("replacement", help="F4: Vocab / OT as true texts replace a selection")
    comparison_args(p)
    p.add_argument("--fractions", type=_fraction, nargs="+", required=True)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_replacement)

    p = sub.add_parser("ablation-report", help="table (CSV + Markdown) and figure of an ablation")
    p.add_argument("--kind", choices=REPORT_KINDS, required=True)
    p.add_argument("--spec", type=json_arg, required=True, help='{"runs": [...], options}')
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_ablation_report)
