"""Command line: one subcommand per pipeline step, generated from the table ``STEPS``.

A step is a function ``<name>(args) -> str`` in a module of ``weights2data.steps``; its ``args``
dataclass (``weights2data.steps.args``) declares the flags. The parser is built from those
fields, every JSON config slice is parsed into its spec once, and the step's summary line and
its cost are printed. Every Snakemake rule runs one of these, so each can be run by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .usage import usage_line


@dataclass(frozen=True)
class Step:
    """One subcommand: its name, the ``weights2data.steps`` module that holds its function
    (the name with ``-`` as ``_``), and a line of help."""

    name: str
    module: str
    help: str
    description: str = ""

    def function(self) -> typing.Callable[[Any], str | None]:
        module = importlib.import_module(f"{__package__}.steps.{self.module}")
        return getattr(module, self.name.replace("-", "_"))

    def args_type(self) -> type:
        return typing.get_type_hints(self.function())["args"]


STEPS = (
    Step("dataset", "models", "build a normalized dataset table (parquet)"),
    Step("pretrain", "models", "make the base model (pretrain or import)"),
    Step("finetune", "models", "train an expert (final) model on a task"),
    Step("trunk-cache", "models", "the frozen trunk's outputs for every text of a dataset"),
    Step("export", "models", "any final (top folder, adapter) as a full Hugging Face folder"),
    Step("pool", "select", "draw the seed pool of one seed from a dataset table"),
    Step("autolabel", "select", "pseudolabel the pool with the final model"),
    Step("gradient-store", "select", "per-example last-layer gradients of the pool"),
    Step("gather-gradients", "select", "join shard stores into one gradient store"),
    Step("select-pool", "select", "run one strategy over a labelled pool (+ store)"),
    Step(
        "select",
        "select",
        "two checkpoints and a pool in, K texts out",
        "Select K texts from a pool whose gradients under the base point along the weight "
        "difference base - final (SELECT).",
    ),
    Step("retrain", "evaluate", "finetune a fresh base on a selection; test metrics"),
    Step("embed", "evaluate", "sentence embeddings of a pool or a true training set"),
    Step("similarity", "evaluate", "Vocab containment and OT vs the true training set"),
    Step("experts-report", "report", "table of expert accuracy vs majority class"),
    Step("table", "report", "Table 1 (classification) or Table 2 (sft)"),
    Step("datasets-table", "report", "Table 3: datasets, roles, sizes, sources"),
    Step("class-balance", "report", "label distribution of each strategy's picks"),
    Step("runtime-table", "report", "per rule: jobs, wall time, peak memory, CPU"),
    Step("headline-metrics", "report", "the tables' headline numbers as one JSON"),
    Step("leak-pool", "ablation", "F3: a seed pool holding the expert's true texts"),
    Step("leak-embeddings", "ablation", "F3: embeddings of a leaked pool (reused rows)"),
    Step("replacement", "ablation", "F4: Vocab / OT as true texts replace a selection"),
    Step("ablation-report", "ablation", "table (CSV + Markdown) and figure of an ablation"),
    Step("regime", "diagnose", "premise diagnostics of one expert (cos(S_true, Δ), …)"),
    Step("diagnostics-table", "diagnose", "the premise table beside Table 1 or 2"),
    Step(
        "diagnose",
        "diagnose",
        "can last-layer SELECT work on this pair? drift, head/body split, cos(S_true, Δ)",
    ),
    Step("provenance", "provenance", "how an artifact was made (code, config, versions)"),
)
STEP_BY_NAME = {step.name: step for step in STEPS}


def _json_object(text: str) -> dict:
    """A JSON object on the command line (how rules pass a config slice)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _value_type(hint: Any) -> tuple[Any, bool, bool]:
    """(the type of one value, whether None is allowed, whether several values are)."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, members[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field, hint: Any) -> None:
    meta = field.metadata
    value_type, _, many = _value_type(hint)
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    flag = meta.get("flag") or "--" + field.name.replace("_", "-")
    options: dict[str, Any] = {"dest": field.name, "help": meta.get("help") or None}
    if not flag.startswith("-"):  # a positional argument
        parser.add_argument(field.name, help=options["help"])
        return
    if dataclasses.is_dataclass(value_type) or value_type is dict:
        options["type"] = _json_object
    elif value_type is bool:
        options["action"] = "store_true"
    else:
        options["type"] = meta.get("parse") or (str if value_type is Path else value_type)
    if many:
        options["nargs"] = "+" if required else "*"
    choices = meta.get("choices")
    if choices is not None:
        options["choices"] = choices() if callable(choices) else choices
    if required:
        options["required"] = True
    else:
        options["default"] = field.default if field.default_factory is dataclasses.MISSING else None
    parser.add_argument(flag, **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weights2data",
        description="Find public texts that train a base model like its finetuned version.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for step in STEPS:
        p = sub.add_parser(step.name, help=step.help, description=step.description or None)
        cls = step.args_type()
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            _add_field(p, field, hints[field.name])
    return parser


def _convert(value: Any, hint: Any, field: dataclasses.Field) -> Any:
    """A parsed flag as the field's type: paths as Path, JSON slices as their spec."""
    from .specs import parse_spec

    value_type, _, many = _value_type(hint)
    if value is None:
        return field.default_factory() if field.default_factory is not dataclasses.MISSING else None
    if many:
        return tuple(_convert(v, value_type, field) for v in value)
    if value_type is Path:
        return Path(value)
    if dataclasses.is_dataclass(value_type):
        return parse_spec(value_type, value, "--" + field.name.replace("_", "-"))
    return value


def step_args(step: Step, namespace: argparse.Namespace) -> Any:
    """The step's args dataclass from the parsed command line."""
    cls = step.args_type()
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _convert(getattr(namespace, f.name), hints[f.name], f)
        for f in dataclasses.fields(cls)
    }
    return cls(**values)


def main(argv: list[str] | None = None) -> int:
    started, since = time.perf_counter(), time.time()
    namespace = build_parser().parse_args(argv)
    step = STEP_BY_NAME[namespace.command]
    try:
        args = step_args(step, namespace)
        if getattr(args, "threads", None):
            from .device import keep_freed_memory, use_threads

            use_threads(args.threads)
            keep_freed_memory()
        summary = step.function()(args)
        if summary:
            print(summary)
        from .provenance import write_sidecars  # here: outside every step's code fingerprint

        write_sidecars(step.name, args, since)
        sys.stdout.flush()  # the step's own summary first, then what it cost
        print(usage_line(step.name, started), file=sys.stderr)
    except UserError as exc:
        print(f"weights2data {step.name}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # an input path given on the command line
        missing = exc.filename or str(exc)
        print(
            f"weights2data {step.name}: error: {missing} does not exist; check the path, or "
            "run the pipeline step that makes it (snakemake makes inputs before their users).",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
