"""Command line: one subcommand per pipeline step, so every Snakemake rule can be run by hand."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli_common import json_arg, threads_arg
from .errors import UserError
from .usage import usage_line


def cmd_dataset(args: argparse.Namespace) -> None:
    from .data.build import build_dataset
    from .data.files import write_dataset

    spec = dict(args.spec)
    source = spec.pop("source")
    if "part" in spec and spec["part"] is not None:
        spec["part"] = tuple(spec["part"])
    table = build_dataset(source, split_seed=args.split_seed, **spec)
    write_dataset(table, args.out)
    counts = table.groupby("split").size().to_dict()
    print(f"{source}: {len(table)} rows {counts} -> {args.out}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .experts import make_base

    report = make_base(args.spec, args.corpus or [], Path(args.out))
    if "val_perplexity" in report:
        print(f"base held-out perplexity {report['val_perplexity']:.2f}")


def cmd_finetune(args: argparse.Namespace) -> None:
    from .experts import train_expert

    metrics = train_expert(
        Path(args.base),
        Path(args.dataset),
        args.task,
        args.finetune,
        args.seed,
        args.split_seed,
        Path(args.out),
        Path(args.metrics),
    )
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test_")}
    print(f"expert seed {args.seed}: {shown}")


def cmd_experts_report(args: argparse.Namespace) -> None:
    import pandas as pd

    from .readers import read_record
    from .report import experts_table

    rows = []
    for path in args.metrics:
        m = read_record(path, "expert metrics", ("seed", "test_loss"))
        task = Path(path).parent.name
        rows.append(
            {
                "task": task,
                "seed": m["seed"],
                "acc": m.get("test_acc"),
                "loss": m["test_loss"],
                "majority": m.get("majority_rate"),
            }
        )
    experts_table(pd.DataFrame(rows), args.out_stem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weights2data",
        description="Find public texts that train a base model like its finetuned version.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dataset", help="build a normalized dataset table (parquet)")
    p.add_argument("--spec", type=json_arg, required=True, help='e.g. {"source": "bbc_news"}')
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser("pretrain", help="make the base model (pretrain or import)")
    p.add_argument("--spec", type=json_arg, required=True, help="the config's bases.<name>")
    p.add_argument("--corpus", nargs="*", help="dataset parquet files to pretrain on")
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="train an expert (final) model on a task")
    p.add_argument("--base", required=True, help="base model folder")
    p.add_argument("--dataset", required=True, help="task dataset parquet")
    p.add_argument("--task", type=json_arg, required=True, help="the config's tasks.<name>")
    p.add_argument("--finetune", type=json_arg, required=True, help="finetune settings")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split-seed", type=int, default=0)
    threads_arg(p)
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--metrics", required=True, help="output metrics JSON")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("experts-report", help="table of expert accuracy vs majority class")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_experts_report)

    for register in _extra_registrations():
        register(sub)
    return parser


def _extra_registrations():
    """Subcommands that live beside the modules they drive (selection, evaluation, ablations)."""
    from . import cli_ablations, cli_diagnostics, cli_eval, cli_select, provenance

    return [
        cli_select.register,
        cli_eval.register,
        cli_ablations.register,
        cli_diagnostics.register,
        provenance.register,
    ]


def main(argv: list[str] | None = None) -> int:
    started, since = time.perf_counter(), time.time()
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(max(1, args.threads))
    try:
        args.func(args)
        from .provenance import write_sidecars  # here: outside every step's code fingerprint

        write_sidecars(args, since)
        sys.stdout.flush()  # the step's own summary first, then what it cost
        print(usage_line(args.command, started), file=sys.stderr)
    except UserError as exc:
        print(f"weights2data {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # an input path given on the command line
        missing = exc.filename or str(exc)
        print(
            f"weights2data {args.command}: error: {missing} does not exist; check the path, or "
            "run the pipeline step that makes it (snakemake makes inputs before their users).",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
