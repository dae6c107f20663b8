"""Steps that evaluate a selection: retrain the base on it, and compare it with the true set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..specs import FinetuneSpec, RetrainSpec, TaskSpec
from .args import arg, model_ref, threads, trunk_caches


@dataclass(frozen=True, kw_only=True)
class RetrainArgs:
    base: Path = arg(help="base model folder")
    selection: Path = arg(help="the selection parquet")
    dataset: Path = arg(help="the task's dataset parquet (val / test splits)")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    finetune: FinetuneSpec = arg(help="the task's finetune settings")
    retrain: RetrainSpec = arg(help="the config's retrain section")
    keys: dict = arg({}, help="labels stored with the result")
    seed: int = arg()
    split_seed: int = arg(0)
    trunk_cache: tuple[Path, ...] = trunk_caches()
    threads: int = threads()
    out: Path = arg()


def retrain(args: RetrainArgs) -> str:
    """A fresh base finetuned on the selection (its pseudolabels), best by val; test metrics."""
    from ..evaluation import retrain as retrain_on

    result = retrain_on(
        model_ref(args.base, args.task, args.finetune, args.trunk_cache),
        args.selection,
        args.dataset,
        (args.task, args.finetune, args.retrain),
        (args.seed, args.split_seed),
        args.out,
        args.keys,
    )
    shown = {k: round(v, 4) for k, v in result.items() if k.startswith("test_")}
    return f"retrain {args.keys.get('strategy', '')} seed {args.seed}: {shown}"


@dataclass(frozen=True, kw_only=True)
class EmbedArgs:
    texts: Path | None = arg(None, help="parquet with a text column")
    pools: tuple[Path, ...] = arg((), help="pool tables to embed the distinct texts of at once")
    texts_out: Path | None = arg(None, help="with --pools: where their distinct texts go")
    known_texts: tuple[Path, ...] = arg((), help="text tables already embedded (with --known)")
    known: tuple[Path, ...] = arg((), help="their embeddings (.npy), in the same order")
    dataset: Path | None = arg(None, help="task dataset (with --task/--seed)")
    task: TaskSpec | None = arg(None)
    seed: int = arg(0)
    seeds: tuple[int, ...] = arg(
        (), help="with --dataset/--task/--texts-out: every seed's training texts at once"
    )
    split_seed: int = arg(0)
    threads: int = threads()
    out: Path = arg()


def embed(args: EmbedArgs) -> str:
    """Sentence embeddings of a pool (``--texts``), of the distinct texts of several pools
    (``--pools``) or of several seeds' true training sets (``--seeds``), their texts written
    to ``--texts-out``, or of one seed's true training set."""
    from ..comparison import embed_to_file, embed_truth_union, embed_union

    if len(args.known) != len(args.known_texts):
        raise UserError(
            f"--known names {len(args.known)} embedding files for {len(args.known_texts)} "
            "--known-texts tables; give one per table."
        )
    if (args.pools or args.seeds) and args.texts_out is None:
        raise UserError("--pools and --seeds need --texts-out, the table of the rows embedded.")
    known = tuple(zip(args.known_texts, args.known, strict=True))
    if args.pools:
        emb = embed_union(args.pools, args.texts_out, args.out)
    elif args.texts:
        emb = embed_to_file(args.texts, args.out, known=known)
    elif args.seeds:
        draws = {"seeds": args.seeds, "split_seed": args.split_seed}
        emb = embed_truth_union(args.dataset, args.task, draws, args.texts_out, args.out)
    else:
        spec = {"task": args.task, "seed": args.seed, "split_seed": args.split_seed}
        emb = embed_to_file(args.dataset, args.out, dataset=spec, known=known)
    return f"embeddings {emb.shape} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class ComparisonArgs:
    """A selection and the files that say which texts were truly trained on."""

    selection: Path = arg()
    pool_embeddings: Path = arg()
    truth_embeddings: Path = arg()
    dataset: Path = arg(help="the task's dataset parquet")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    seed: int = arg()
    split_seed: int = arg(0)
    ot: str = arg("emd", choices=("emd", "sinkhorn"))
    max_tokens: int = arg(32)

    def comparison(self):
        from ..comparison import Comparison

        return Comparison(
            self.selection,
            self.pool_embeddings,
            self.truth_embeddings,
            self.dataset,
            self.task,
            self.seed,
            self.split_seed,
        )


@dataclass(frozen=True, kw_only=True)
class SimilarityArgs(ComparisonArgs):
    keys: dict = arg({})
    out: Path = arg()


def similarity(args: SimilarityArgs) -> str:
    """Vocab containment and OT distance of a selection to the true training set."""
    from ..comparison import similarity as compare

    result = compare(
        args.comparison(), args.out, args.keys, ot_method=args.ot, max_tokens=args.max_tokens
    )
    return f"vocab {result['vocab']:.1f} otd {result['otd']:.4f}"
