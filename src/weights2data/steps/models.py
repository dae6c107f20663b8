"""Steps that make the data and the models: dataset tables, the base θ0, the experts θf."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..specs import FinetuneSpec, TaskSpec
from .args import arg, model_ref, threads, trunk_caches


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
    trunk_cache: tuple[Path, ...] = trunk_caches()
    threads: int = threads()
    out: Path = arg(help="output model folder")
    metrics: Path = arg(help="output metrics JSON")


def finetune(args: FinetuneArgs) -> str:
    """The expert of one seed: the base finetuned on the task's training subset."""
    from ..experts import train_expert

    metrics = train_expert(
        model_ref(args.base, args.task, args.finetune, args.trunk_cache),
        args.dataset,
        args.task,
        args.finetune,
        (args.seed, args.split_seed),
        args.out,
        args.metrics,
    )
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test_")}
    return f"expert seed {args.seed}: {shown}"


@dataclass(frozen=True, kw_only=True)
class TrunkCacheArgs:
    base: Path = arg(help="base model folder")
    dataset: Path = arg(help="dataset parquet: every text of it is cached")
    spec: dict = arg(
        help='{"regime": "top:1", "encoding": "classification", "max_length": 32, '
        '"truncate": "left", "dtype": "float32"}'
    )
    batch_size: int = arg(32)
    compute: str = arg(
        "auto",
        help="the trunk's arithmetic: auto (bf16 autocast for a bfloat16 cache where the "
        "hardware has bf16 arithmetic, else float32), float32 or bfloat16",
    )
    threads: int = threads()
    out: Path = arg(help="output cache file (safetensors)")


def trunk_cache(args: TrunkCacheArgs) -> str:
    """The frozen trunk's outputs for every text of a dataset, computed once (trainable: head or
    top:N), for every later step that runs a model on these texts."""
    from ..data.files import read_dataset
    from ..errors import UserError
    from ..formats import Encoding
    from ..models.cache import save_cache
    from ..models.folders import load_model, load_tokenizer
    from ..models.regime import parse_trainable

    spec = dict(args.spec)
    unknown = set(spec) - {"regime", "encoding", "max_length", "truncate", "encodings", "dtype"}
    if unknown or "regime" not in spec or "encoding" not in spec:
        raise UserError(
            f"--spec needs regime and encoding (and max_length, truncate or encodings, dtype); "
            f"got {sorted(spec)}."
        )
    dtype = spec.get("dtype", "float32")
    if dtype not in ("float32", "bfloat16"):
        raise UserError(f"a trunk cache is stored as float32 or bfloat16, not {dtype!r}.")
    regime = parse_trainable(spec["regime"])
    pairs = spec.get("encodings") or [[spec.get("max_length", 32), spec.get("truncate", "left")]]
    try:
        encodings = [Encoding(spec["encoding"], int(n), side) for n, side in pairs]
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"--spec encodings is a list of [max_length, truncate], not {pairs!r}."
        ) from exc
    texts = read_dataset(args.dataset)["text"].tolist()
    model, tokenizer = load_model(args.base), load_tokenizer(args.base)
    specs = (regime, encodings, dtype)
    key = save_cache(
        model, tokenizer, texts, specs, args.out, batch_size=args.batch_size, compute=args.compute
    )
    size = args.out.stat().st_size / 2**20
    return (
        f"trunk cache {key.regime} of {len(texts)} texts ({key.dtype}, computed in "
        f"{key.compute}): {size:.1f} MiB -> {args.out}"
    )


@dataclass(frozen=True, kw_only=True)
class ExportArgs:
    final: Path = arg(help="a final model folder: full, a top folder, or a PEFT adapter folder")
    base: Path | None = arg(None, help="the base a top or adapter folder completes")
    out: Path = arg(help="output: a full Hugging Face folder (safetensors)")


def export(args: ExportArgs) -> str:
    """Any final as a full Hugging Face folder, for tools that know nothing of top folders."""
    from ..models.folders import load_model, load_tokenizer, save_model

    model = load_model(args.final, base=args.base)
    tokenizer = load_tokenizer(args.final, base=args.base)
    save_model(model.cpu(), tokenizer, args.out)
    size = sum(f.stat().st_size for f in args.out.glob("*.safetensors")) / 2**20
    return f"export: {size:.0f} MiB of weights -> {args.out}"
