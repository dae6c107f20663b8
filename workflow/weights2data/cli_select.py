"""Subcommands of the SELECT engine: pool subsets, pseudolabels, gradient stores, selections."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import json_arg, threads_arg


def cmd_pool(args) -> None:
    from .selecting import sample_pool

    frame = sample_pool(Path(args.dataset), args.size, args.seed, Path(args.out))
    print(f"pool: {len(frame)} texts -> {args.out}")


def _task_classes(args) -> int | None:
    from .data.files import read_dataset
    from .data.splits import num_classes_of

    if args.task["type"] != "classification":
        return None
    return num_classes_of(read_dataset(args.dataset))


def cmd_autolabel(args) -> None:
    from .selecting import autolabel

    frame = autolabel(
        Path(args.final),
        Path(args.pool),
        args.task["type"],
        _task_classes(args),
        args.finetune,
        Path(args.out),
        batch_size=args.batch_size,
    )
    print(f"autolabel: {len(frame)} texts, mean final-model loss {frame['loss'].mean():.3f}")


def cmd_gradient_store(args) -> None:
    from .selecting import gradient_store

    meta = gradient_store(
        Path(args.base),
        Path(args.final),
        Path(args.labels),
        args.spec,
        args.task["type"],
        _task_classes(args),
        args.finetune,
        args.seed,
        Path(args.out),
        shard=None if args.shards is None else (args.shard, args.shards),
    )
    print(f"gradient store: N={meta['N']} C={meta['C']} D={meta['D']} -> {args.out}")


def cmd_gather_gradients(args) -> None:
    from .gradients.store import gather_gradient_stores

    meta = gather_gradient_stores([Path(s) for s in args.shards], Path(args.out))
    print(f"gathered {len(args.shards)} shards: N={meta['N']} -> {args.out}")


def cmd_select_pool(args) -> None:
    from .selecting import select_step

    picked = select_step(
        Path(args.labels),
        Path(args.store) if args.store else None,
        args.strategy,
        args.k,
        args.seed,
        args.batch_size,
        Path(args.out),
    )
    print(f"{args.strategy}: {len(picked)} texts -> {args.out}")


def cmd_select(args) -> None:
    from .selecting import select_end_to_end

    picked = select_end_to_end(
        Path(args.base),
        Path(args.final),
        args.pool,
        args.k,
        args.strategy,
        Path(args.out),
        task_type=args.task_type,
        num_classes=args.num_classes,
        loss=args.loss,
        projection=args.projection,
        sketch_dim=args.sketch_dim,
        checkpoints=args.checkpoints,
        max_length=args.max_length,
        truncate=args.truncate,
        seed=args.seed,
        batch_size=args.batch_size,
        text_column=args.text_column,
    )
    print(f"{args.strategy}: {len(picked)} texts -> {args.out}")


def register(sub: argparse._SubParsersAction) -> None:
    """The pipeline's selection steps, then the one-shot ``select``."""
    _register_steps(sub)
    _register_select(sub)


def _register_steps(sub: argparse._SubParsersAction) -> None:
    from .strategies import NAMES

    p = sub.add_parser("pool", help="draw the seed pool of one seed from a dataset table")
    p.add_argument("--dataset", required=True)
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_pool)

    p = sub.add_parser("autolabel", help="pseudolabel the pool with the final model")
    p.add_argument("--final", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--dataset", required=True, help="the task's dataset (for its classes)")
    p.add_argument("--task", type=json_arg, required=True)
    p.add_argument("--finetune", type=json_arg, required=True)
    p.add_argument("--batch-size", type=int, default=64)
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_autolabel)

    p = sub.add_parser("gradient-store", help="per-example last-layer gradients of the pool")
    p.add_argument("--base", required=True)
    p.add_argument("--final", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--task", type=json_arg, required=True)
    p.add_argument("--finetune", type=json_arg, required=True)
    p.add_argument("--spec", type=json_arg, required=True, help="the config's gradients section")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--shard", type=int, default=0, help="which shard to write (0-based)")
    p.add_argument(
        "--shards", type=int, default=None, help="write one shard of this many (default: whole)"
    )
    threads_arg(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_gradient_store)

    p = sub.add_parser("gather-gradients", help="join shard stores into one gradient store")
    p.add_argument("--shards", nargs="+", required=True, help="shard store folders, in order")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_gather_gradients)

    p = sub.add_parser("select-pool", help="run one strategy over a labelled pool (+ store)")
    p.add_argument("--labels", required=True)
    p.add_argument("--store", default=None)
    p.add_argument("--strategy", choices=NAMES, required=True)
    p.add_argument("-k", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_select_pool)


def _register_select(sub: argparse._SubParsersAction) -> None:
    from .strategies import NAMES

    p = sub.add_parser(
        "select",
        help="two checkpoints and a pool in, K texts out",
        description="Select K texts from a pool whose gradients under the base point along "
        "the weight difference base - final (SELECT).",
    )
    p.add_argument("--base", required=True, help="base model folder (HF, safetensors)")
    p.add_argument("--final", required=True, help="finetuned model folder, same architecture")
    p.add_argument("--pool", required=True, help="CSV / JSONL / parquet file or packaged name")
    p.add_argument("-k", type=int, required=True, help="how many texts to select")
    p.add_argument("--strategy", choices=NAMES, default="select")
    p.add_argument("--task-type", choices=("classification", "sft"), default="classification")
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of the finetune (label letters ' A', ' B', ...)",
    )
    p.add_argument("--loss", choices=("label_masked", "full_vocab"), default="label_masked")
    p.add_argument(
        "--projection",
        default="auto",
        choices=("auto", "none", "dense", "factored", "tensorsketch"),
    )
    p.add_argument("--sketch-dim", type=int, default=1024)
    p.add_argument("--checkpoints", type=int, default=1)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--truncate", choices=("left", "right"), default="left")
    p.add_argument("--text-column", default="text")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=100, help="SELECT (Batch) reset interval")
    threads_arg(p)
    p.add_argument("--out", required=True, help="output parquet")
    p.set_defaults(func=cmd_select)
