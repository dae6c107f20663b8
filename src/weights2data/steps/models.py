"""Steps that make the data and the models: dataset tables, the base θ0, the experts θf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..specs import FinetuneSpec, TaskSpec
from .args import arg, threads


@dataclass(frozen=True, kw_only=True)
class DatasetArgs:
    spec: dict = arg(help='the config\'s datasets.<name>, e.g. {"source": "bbc_news"}')
    split_seed: int = arg(0)
    out: Path = arg()


def dataset(args: DatasetArgs) -> str:
    """One normalized dataset table (text, label, label_name, split, group) as parquet."""
    from ..data.build import build_dataset
    from ..data.files import write_dataset

    options = dict(args.spec)
    source = options.pop("source")
    if options.get("part") is not None:
        options["part"] = tuple(options["part"])
    table = build_dataset(source, split_seed=args.split_seed, **options)
    write_dataset(table, args.out)
    counts = table.groupby("split").size().to_dict()
    return f"{source}: {len(table)} rows {counts} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class PretrainArgs:
    spec: dict = arg(help="the config's bases.<name>")
    corpus: tuple[Path, ...] = arg((), help="dataset parquet files to pretrain on")
    threads: int = threads()
    out: Path = arg()


def pretrain(args: PretrainArgs) -> str | None:
    """The base model: pretrained here on the corpus, or imported (kind in the spec)."""
    from ..pretrain import make_base

    report = make_base(args.spec, [str(p) for p in args.corpus], args.out)
    if "val_perplexity" in report:
        return f"base held-out perplexity {report['val_perplexity']:.2f}"
    return None


@dataclass(frozen=True, kw_only=True)
class FinetuneArgs:
    base: Path = arg(help="base model folder")
    dataset: Path = arg(help="task dataset parquet")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    finetune: FinetuneSpec = arg(help="finetune settings")
    seed: int = arg()
    split_seed: int = arg(0)
    threads: int = threads()
    out: Path = arg(help="output model folder")
    metrics: Path = arg(help="output metrics JSON")


def finetune(args: FinetuneArgs) -> str:
    """The expert of one seed: the base finetuned on the task's training subset."""
    from ..experts import train_expert

    metrics = train_expert(
        args.base,
        args.dataset,
        args.task,
        args.finetune,
        (args.seed, args.split_seed),
        args.out,
        args.metrics,
    )
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test_")}
    return f"expert seed {args.seed}: {shown}"
