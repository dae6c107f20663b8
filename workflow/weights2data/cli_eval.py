"""Subcommands that evaluate selections and assemble the tables and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import comparison_args, comparison_inputs, json_arg, threads_arg


def cmd_retrain(args) -> None:
    from .evaluation import retrain

    result = retrain(
        Path(args.base),
        Path(args.selection),
        Path(args.dataset),
        args.task,
        args.finetune,
        args.retrain,
        args.seed,
        args.split_seed,
        Path(args.out),
        args.keys,
        keep_model=Path(args.keep_model) if args.keep_model else None,
    )
    shown = {k: round(v, 4) for k, v in result.items() if k.startswith("test_")}
    print(f"retrain {args.keys.get('strategy', '')} seed {args.seed}: {shown}")


def cmd_embed(args) -> None:
    from .evaluation import embed_to_file

    if args.texts:
        emb = embed_to_file(Path(args.texts), Path(args.out))
    else:
        spec = {"task": args.task, "seed": args.seed, "split_seed": args.split_seed}
        emb = embed_to_file(Path(args.dataset), Path(args.out), dataset=spec)
    print(f"embeddings {emb.shape} -> {args.out}")


def cmd_similarity(args) -> None:
    from .evaluation import similarity

    result = similarity(
        *comparison_inputs(args),
        Path(args.out),
        args.keys,
        ot_method=args.ot,
        max_tokens=args.max_tokens,
    )
    print(f"vocab {result['vocab']:.1f} otd {result['otd']:.4f}")


def cmd_table(args) -> None:
    from .report.results import write_results_table

    write_results_table(args.kind, args.retrain, args.similarity, args.experts, args.out_stem)


def cmd_datasets_table(args) -> None:
    from .report.results import write_datasets_table

    write_datasets_table(args.datasets, args.roles, args.out_stem)


def cmd_class_balance(args) -> None:
    from .report.results import write_class_balance

    write_class_balance(args.selections, args.task_datasets, args.out_stem)


def cmd_runtime_table(args) -> None:
    from .report.runtime import write_runtime

    paths = write_runtime(Path(args.benchmarks), Path(args.logs), args.out_stem)
    print(f"runtime table -> {paths['md']}")


def cmd_headline_metrics(args) -> None:
    from .report.headline import write_headline_metrics

    tables = {"table1": Path(args.table1)}
    if args.table2:
        tables["table2"] = Path(args.table2[0])
    write_headline_metrics(tables, [Path(p) for p in args.diagnostics], Path(args.out))
    print(f"headline metrics -> {args.out}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("headline-metrics", help="the tables' headline numbers as one JSON")
    p.add_argument("--table1", required=True, help="figures/table1.csv")
    p.add_argument("--table2", nargs="*", default=[], help="figures/table2.csv, if any")
    p.add_argument("--diagnostics", nargs="+", required=True, help="figures/diagnostics*.csv")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_headline_metrics)

    p = sub.add_parser("runtime-table", help="per rule: jobs, wall time, peak memory, CPU")
    p.add_argument("--benchmarks", required=True, help="folder of Snakemake benchmark files")
    p.add_argument("--logs", required=True, help="folder of the jobs' logs (peak memory)")
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_runtime_table)

    p = sub.add_parser("retrain", help="finetune a fresh base on a selection; test metrics")
    p.add_argument("--base", required=True)
    p.add_argument("--selection", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--task", type=json_arg, required=True)
    p.add_argument("--finetune", type=json_arg, required=True)
    p.add_argument("--retrain", type=json_arg, required=True)
    p.add_argument("--keys", type=json_arg, default={}, help="labels stored with the result")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--keep-model", default=None, help="also save the retrained model here")
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("embed", help="sentence embeddings of a pool or a true training set")
    p.add_argument("--texts", default=None, help="parquet with a text column")
    p.add_argument("--dataset", default=None, help="task dataset (with --task/--seed)")
    p.add_argument("--task", type=json_arg, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similarity", help="Vocab containment and OT vs the true training set")
    comparison_args(p)
    p.add_argument("--keys", type=json_arg, default={})
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("table", help="Table 1 (classification) or Table 2 (sft)")
    p.add_argument("--kind", choices=("classification", "sft"), required=True)
    p.add_argument("--retrain", nargs="+", required=True)
    p.add_argument("--similarity", nargs="+", required=True)
    p.add_argument("--experts", nargs="+", required=True)
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("datasets-table", help="Table 3: datasets, roles, sizes, sources")
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--roles", type=json_arg, required=True)
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_datasets_table)

    p = sub.add_parser("class-balance", help="label distribution of each strategy's picks")
    p.add_argument("--selections", nargs="+", required=True)
    p.add_argument("--task-datasets", type=json_arg, required=True, help='{"task": "path"}')
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_class_balance)
