"""Argument types shared by every subcommand."""

from __future__ import annotations

import argparse
import json


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
