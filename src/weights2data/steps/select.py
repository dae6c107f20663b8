"""Steps of the SELECT engine: seed pools, pseudolabels, gradient stores, selections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..specs import FinetuneSpec, GradientSpec, TaskSpec
from .args import arg, model_ref, threads, trunk_caches


def _strategies() -> tuple[str, ...]:
    from ..strategies import NAMES

    return NAMES


def task_classes(task: TaskSpec, dataset: Path) -> int | None:
    """The class count of a classification task's dataset (None for SFT)."""
    from ..data.files import read_dataset
    from ..data.splits import num_classes_of

    return num_classes_of(read_dataset(dataset)) if task.classification else None


@dataclass(frozen=True, kw_only=True)
class PoolArgs:
    dataset: Path = arg(help="dataset table (parquet) whose train split is sampled")
    size: int | None = arg(None, help="texts in the pool (default: the whole train split)")
    seed: int = arg()
    out: Path = arg()


def pool(args: PoolArgs) -> str:
    """The seed pool of one seed: ``size`` texts of the pool dataset's train split."""
    from ..atomic import write_parquet
    from ..data.files import read_dataset
    from ..data.splits import sample_split

    table = read_dataset(args.dataset)
    subset = sample_split(table, "train", args.size, args.seed, name=args.dataset.stem)
    frame = subset[["text", "group"]].reset_index(drop=True)
    write_parquet(args.out, frame)
    return f"pool: {len(frame)} texts -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class AutolabelArgs:
    final: Path = arg(help="the final (expert) model folder, or a PEFT adapter folder")
    base: Path | None = arg(None, help="the base an adapter --final is merged over")
    pool: Path = arg(help="the pool parquet")
    dataset: Path = arg(help="the task's dataset (for its classes)")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    finetune: FinetuneSpec = arg(help="the task's finetune settings")
    batch_size: int = arg(64)
    trunk_cache: tuple[Path, ...] = trunk_caches()
    threads: int = threads()
    out: Path = arg()


def autolabel(args: AutolabelArgs) -> str:
    """Pseudolabel every pool text with the final model and record its loss on that label."""
    from ..atomic import write_json, write_parquet
    from ..gradients.pseudolabels import label_pool
    from ..readers import read_table

    classes = task_classes(args.task, args.dataset)
    final = model_ref(args.final, args.task, args.finetune, args.trunk_cache, base=args.base)
    frame = label_pool(
        final,
        read_table(args.pool, "pool", ("text",)),
        args.finetune,
        task_type=args.task.type,
        num_classes=classes,
        batch_size=args.batch_size,
        base_dir=args.base,
    )
    write_parquet(args.out, frame)
    write_json(Path(str(args.out) + ".json"), {"num_classes": classes, "task_type": args.task.type})
    return f"autolabel: {len(frame)} texts, mean final-model loss {frame['loss'].mean():.3f}"


@dataclass(frozen=True, kw_only=True)
class GradientStoreArgs:
    base: Path = arg(help="the base model folder")
    final: Path = arg(help="the final (expert) model folder, or a PEFT adapter folder")
    labels: Path = arg(help="the pseudolabelled pool (autolabel's output)")
    dataset: Path = arg(help="the task's dataset (for its classes)")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    finetune: FinetuneSpec = arg(help="the task's finetune settings")
    spec: GradientSpec = arg(help="the config's gradients section")
    seed: int = arg()
    shard: int = arg(0, help="which shard to write (0-based)")
    shards: int | None = arg(None, help="write one shard of this many (default: whole)")
    trunk_cache: tuple[Path, ...] = trunk_caches()
    threads: int = threads()
    out: Path = arg()


def gradient_store(args: GradientStoreArgs) -> str:
    """Per-example last-layer gradients of the pool under the gradient model (+ Δ)."""
    from ..gradients.pipeline import LABEL_COLUMNS, store_for_labels
    from ..readers import read_table

    labels = read_table(args.labels, "labels", LABEL_COLUMNS)
    base = model_ref(args.base, args.task, args.finetune, args.trunk_cache)
    meta = store_for_labels(
        base,
        base.sibling(args.final, args.base),
        labels,
        args.out,
        args.spec,
        args.finetune,
        task_type=args.task.type,
        num_classes=task_classes(args.task, args.dataset),
        seed=args.seed,
        shard=None if args.shards is None else (args.shard, args.shards),
    )
    return f"gradient store: N={meta['N']} C={meta['C']} D={meta['D']} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class GatherGradientsArgs:
    shards: tuple[Path, ...] = arg(help="shard store folders, in order")
    out: Path = arg()


def gather_gradients(args: GatherGradientsArgs) -> str:
    """Join shard stores into one store, byte for byte the unsharded one."""
    from ..gradients.shards import gather_gradient_stores

    meta = gather_gradient_stores(list(args.shards), args.out)
    return f"gathered {len(args.shards)} shards: N={meta['N']} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class SelectPoolArgs:
    labels: Path = arg(help="the pseudolabelled pool (autolabel's output)")
    store: Path | None = arg(None, help="the gradient store (strategies that need one)")
    strategy: str = arg(choices=_strategies)
    k: int = arg(flag="-k")
    seed: int = arg(0)
    batch_size: int = arg(100, help="SELECT (Batch) reset interval")
    out: Path = arg()


def select_pool(args: SelectPoolArgs) -> str:
    """Run one strategy over a labelled pool (and its store); the picks, in pick order."""
    from ..atomic import write_parquet
    from ..gradients.pipeline import LABEL_COLUMNS
    from ..readers import read_table
    from ..strategies import choose

    pmin_pmax = args.strategy in ("pmin", "pmax")
    needed = (*LABEL_COLUMNS, "loss") if pmin_pmax else LABEL_COLUMNS
    labels = read_table(args.labels, "labels", needed)
    picked = choose(labels, args.store, args.strategy, args.k, args.seed, args.batch_size)
    write_parquet(args.out, picked)
    return f"{args.strategy}: {len(picked)} texts -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class SelectArgs:
    base: Path = arg(help="base model folder (HF, safetensors)")
    final: Path = arg(help="finetuned model folder (same architecture) or a PEFT adapter folder")
    pool: str = arg(help="CSV / JSONL / parquet file or packaged name")
    k: int = arg(flag="-k", help="how many texts to select")
    strategy: str = arg(
        "select_pre", choices=_strategies, help="default: the Adam-aware SELECT (select for SGD)"
    )
    task_type: str = arg("classification", choices=("classification", "sft"))
    num_classes: int | None = arg(None, help="classes of the finetune (label letters ' A', …)")
    loss: str = arg("label_masked", choices=("label_masked", "full_vocab"))
    projection: str = arg("auto", choices=("auto", "none", "dense", "factored", "tensorsketch"))
    sketch_dim: int = arg(1024)
    checkpoints: int = arg(2, help="points from the base toward the final to take gradients at")
    layers: tuple[str, ...] = arg(("head",), help="head, module names and/or blocks.N")
    precondition: str = arg(
        "auto",
        choices=("auto", "none", "rms"),
        help="D of the Adam-aware space (select_pre): auto = rms for an Adam / AdamW finetune",
    )
    optimizer: str = arg(
        "adam", choices=("adam", "adamw", "sgd"), help="the optimizer the finetune used"
    )
    max_length: int = arg(64, help="tokens per text, as the final was trained")
    truncate: str = arg("right", choices=("left", "right"), help="which end a long text loses")
    text_column: str = arg("text")
    seed: int = arg(0)
    batch_size: int = arg(100, help="SELECT (Batch) reset interval")
    threads: int = threads()
    out: Path = arg(help="output parquet")


def select(args: SelectArgs) -> str:
    """Two checkpoints and a corpus in, K texts out (``weights2data.select`` on the CLI)."""
    import sys

    from ..api import describe_selection
    from ..api import select as select_texts
    from ..specs import GradientSpec

    spec = GradientSpec(checkpoints=args.checkpoints, layers=list(args.layers))
    encoding = (args.max_length, args.truncate)
    plan = describe_selection(args.strategy, args.optimizer, args.precondition, spec, encoding)
    print(plan, file=sys.stderr, flush=True)
    options = {f: getattr(args, f) for f in SelectArgs.__dataclass_fields__}
    for name in ("base", "final", "pool", "k", "threads", "out"):
        options.pop(name)
    picked = select_texts(args.base, args.final, args.pool, args.k, out=args.out, **options)
    return f"{args.strategy}: {len(picked)} texts -> {args.out}"
