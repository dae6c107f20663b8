"""Argument types shared by every subcommand."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def json_arg(text: str) -> dict:
    """A JSON object on the command line (how rules pass a config slice)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=2, help="torch threads")


def comparison_args(parser: argparse.ArgumentParser) -> None:
    """A selection, the embeddings and the task that say which texts were truly trained on:
    what every Vocab / OT comparison with the expert's training set reads."""
    parser.add_argument("--selection", required=True)
    parser.add_argument("--pool-embeddings", required=True)
    parser.add_argument("--truth-embeddings", required=True)
    parser.add_argument("--dataset", required=True, help="the task's dataset parquet")
    parser.add_argument("--task", type=json_arg, required=True, help="the config's tasks.<name>")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--ot", choices=("emd", "sinkhorn"), default="emd")
    parser.add_argument("--max-tokens", type=int, default=32)


def comparison_inputs(args: argparse.Namespace) -> tuple:
    """The positional inputs of every comparison step, read from ``comparison_args``' flags."""
    return (
        Path(args.selection),
        Path(args.pool_embeddings),
        Path(args.truth_embeddings),
        Path(args.dataset),
        args.task,
        args.seed,
        args.split_seed,
    )
