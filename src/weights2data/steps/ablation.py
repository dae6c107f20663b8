"""Steps of the ablations: leaked pools (F3), the replacement check (F4), and their reports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..specs import TaskSpec
from .args import arg, fraction, threads
from .evaluate import ComparisonArgs

# the report kinds of weights2data.report.ablation_kinds (listed here so --help stays fast)
REPORT_KINDS = ("layers", "leakage", "optimizer", "pools", "replacement", "sweep")


@dataclass(frozen=True, kw_only=True)
class LeakPoolArgs:
    dataset: Path = arg(help="the task's dataset parquet")
    task: TaskSpec = arg(help="the config's tasks.<name>")
    pool_dataset: Path = arg(help="dataset the other pool texts come from")
    fraction: float = arg(parse=fraction, help="share of true texts")
    seed: int = arg()
    split_seed: int = arg(0)
    out: Path = arg()


def leak_pool(args: LeakPoolArgs) -> str:
    """A seed pool that holds a share of the expert's true training texts."""
    from ..ablation_steps import build_leaked_pool

    pool = build_leaked_pool(
        args.dataset,
        args.task,
        args.pool_dataset,
        args.fraction,
        args.seed,
        args.split_seed,
        args.out,
    )
    n_true = int(pool["is_true"].sum())
    return f"leaked pool: {n_true} true + {len(pool) - n_true} other texts -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class LeakEmbeddingsArgs:
    pool: Path = arg(help="the leaked pool parquet")
    regular_pool: Path = arg(help="the seed's regular pool parquet")
    regular_embeddings: Path = arg()
    truth_embeddings: Path = arg()
    threads: int = threads()
    out: Path = arg()


def leak_embeddings(args: LeakEmbeddingsArgs) -> str:
    """A leaked pool's embeddings, reusing the rows already computed."""
    from ..ablation_steps import leaked_embeddings

    emb = leaked_embeddings(
        args.pool, args.regular_pool, args.regular_embeddings, args.truth_embeddings, args.out
    )
    return f"embeddings {emb.shape} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class ReplacementArgs(ComparisonArgs):
    fractions: tuple[float, ...] = arg(parse=fraction)
    trials: int = arg(5)
    out: Path = arg()


def replacement(args: ReplacementArgs) -> str:
    """Vocab / OT of a selection as true texts replace a growing share of it."""
    from ..ablation_steps import replacement_metrics

    records = replacement_metrics(
        args.comparison(),
        args.fractions,
        args.trials,
        args.out,
        ot_method=args.ot,
        max_tokens=args.max_tokens,
    )
    return f"replacement: {len(records)} (fraction, trial) records -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class AblationReportArgs:
    kind: str = arg(choices=REPORT_KINDS)
    spec: dict = arg(help='{"runs": [...], options}')
    out_stem: Path = arg()


def ablation_report(args: AblationReportArgs) -> str:
    """An ablation's table (CSV + Markdown) and figure, from its run list."""
    from ..report.ablation_kinds import write_report

    paths = write_report(args.kind, args.spec, str(args.out_stem))
    return f"{args.kind} report: {', '.join(str(p) for p in paths.values())}"
