"""Steps of the premise diagnostics: per expert (``regime``), per table (``diagnostics-table``)
and for any two checkpoints (``diagnose``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..specs import FinetuneSpec, GradientSpec, TaskSpec
from .args import arg, model_ref, threads, trunk_caches

# The store spec `diagnose` uses for cos(S_true, Δ): the pipeline's default (exact C×d rows),
# with the Adam-aware space always beside the raw one so that both cosines are printed.
DIAGNOSE_SPEC = GradientSpec(precondition="rms")


@dataclass(frozen=True, kw_only=True)
class RegimeArgs:
    base: Path = arg()
    final: Path = arg()
    dataset: Path = arg(help="the task's dataset parquet")
    task: TaskSpec = arg()
    finetune: FinetuneSpec = arg()
    spec: GradientSpec = arg(help="the store's gradient spec")
    seed: int = arg()
    split_seed: int = arg(0)
    keys: dict = arg({})
    trunk_cache: tuple[Path, ...] = trunk_caches()
    threads: int = threads()
    out: Path = arg(help="JSON of the diagnostics")
    sum_out: Path = arg(help=".npy of S_true (C×D)")


def regime(args: RegimeArgs) -> str:
    """cos(S_true, Δ), drift and the head / body split of one expert."""
    from ..diagnostics import RegimeInputs
    from ..diagnostics import regime as diagnose_expert

    base = model_ref(args.base, args.task, args.finetune, args.trunk_cache)
    inputs = RegimeInputs(
        base,
        base.sibling(args.final, args.base),
        args.dataset,
        args.task,
        args.finetune,
        args.spec,
        args.seed,
        args.split_seed,
    )
    result = diagnose_expert(inputs, args.out, args.sum_out, args.keys)
    return f"cos(S_true, Δ) = {result['cos_truth_delta']:.3f} -> {args.out}"


@dataclass(frozen=True, kw_only=True)
class DiagnosticsTableArgs:
    spec: dict = arg(help='{"experts": …, "runs": …}')
    out_stem: Path = arg()


def diagnostics_table(args: DiagnosticsTableArgs) -> str:
    """The premise table beside Table 1 or 2."""
    from ..report.diagnostics import write_diagnostics

    paths = write_diagnostics(args.spec, str(args.out_stem))
    return f"diagnostics: {', '.join(str(p) for p in paths.values())}"


@dataclass(frozen=True, kw_only=True)
class DiagnoseArgs:
    base: Path = arg(help="base model folder")
    final: Path = arg(help="finetuned model folder")
    truth: str | None = arg(None, help="labelled texts (CSV / JSONL / parquet) for the split")
    truth_size: int | None = arg(None, help="use this many --truth texts, drawn at random")
    text_column: str = arg("text")
    label_column: str = arg("label")
    num_classes: int | None = arg(None, help="default: largest label + 1")
    max_length: int = arg(64, help="tokens per text, as the final was trained")
    truncate: str = arg("right", choices=("left", "right"), help="which end a long text loses")
    loss: str = arg("label_masked", choices=("label_masked", "full_vocab"))
    layers: tuple[str, ...] = arg(("head",), help="gradient layers of cos(S_true, Δ)")
    threads: int = threads()
    json: str | None = arg(None, help="also write the report as JSON here")


def _pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:.1f}%"


def diagnose(args: DiagnoseArgs) -> None:
    """Can last-layer SELECT work on this pair? Drift per layer; with ``--truth`` the head /
    body split and cos(S_true, Δ), and a verdict."""
    from ..diagnostics import body_drift, check_pair, layer_drift

    base, final = check_pair(args.base, args.final)
    modules = (base.module, final.module)
    report = {"body_drift": body_drift(*modules), "layers": layer_drift(*modules)}
    print("relative drift ‖θf − θ0‖ / ‖θ0‖ per layer:")
    for row in report["layers"]:
        print(f"  {row['layer']:<40} {row['relative_drift']:8.4f}  ({row['params']:,} params)")
    print(f"body (all but the output matrix): {report['body_drift']:.4f}")
    if args.truth:
        report.update(_truth_diagnostics(args, base, final))
    if args.json:
        from ..atomic import write_json

        write_json(Path(args.json), report)


def _truth_table(args: DiagnoseArgs):
    from ..data.build import build_dataset
    from ..errors import UserError

    table = build_dataset(
        f"local:{args.truth}",
        text_column=args.text_column,
        label_column=args.label_column,
        val_fraction=0.25,
        test_fraction=0.25,
    )
    if (table["label"] < 0).any():
        raise UserError(
            f"--truth {args.truth!r} needs a label for every text (integer class "
            f"0 … C−1 in column {args.label_column!r}, the expert's label letter order)."
        )
    if args.truth_size is not None and args.truth_size < len(table):
        table = table.sample(n=args.truth_size, random_state=0).sort_index()
    return table


def _truth_diagnostics(args: DiagnoseArgs, base, final) -> dict:
    """Head / body split on held-out ``--truth`` texts and cos(S_true, Δ) over all of them."""
    from ..alignment import checkpoint_cosines, mean_finite
    from ..diagnostics import head_body_split, truth_gradient_sum
    from ..losses import make_loss
    from ..models.folders import load_tokenizer

    table = _truth_table(args)
    classes = args.num_classes or int(table["label"].max()) + 1
    tokenizer = load_tokenizer(args.base)
    loss = make_loss("label_masked", tokenizer, classes, args.max_length, args.truncate)
    fit, held = table[table.split == "train"], table[table.split != "train"]
    split = head_body_split(
        base,
        final,
        tokenizer,
        (held["text"].tolist(), held["label"].to_numpy()),
        loss,
        train=(fit["text"].tolist(), fit["label"].to_numpy()),
    )
    finetune = FinetuneSpec(max_length=args.max_length, truncate=args.truncate, loss=args.loss)
    task = TaskSpec(dataset=str(args.truth), type="classification")
    sums = truth_gradient_sum(
        base,
        final,
        (table["text"].tolist(), table["label"].to_numpy()),
        (dataclasses.replace(DIAGNOSE_SPEC, layers=list(args.layers)), task, finetune),
        classes,
        0,
    )
    cos = mean_finite(checkpoint_cosines(sums.raw, sums.target))
    cos_rms = sums.rms_cosine()
    _print_truth(split, (cos, cos_rms), len(table))
    return {"cos_truth_delta": cos, "cos_truth_delta_rms": cos_rms, "head_body": split}


def _print_truth(split: dict, cosines: tuple[float, float], n_texts: int) -> None:
    print(f"head / body split on {split['n_eval']} held-out texts of --truth:")
    print(f"  final head on final body (the expert)  {_pct(split['final_head_final_body'])}")
    print(f"  base head on final body                {_pct(split['base_head_final_body'])}")
    print(f"  final head on base body                {_pct(split['final_head_base_body'])}")
    print(f"  head change alone on base body         {_pct(split['head_change_base_body'])}")
    print(f"  linear probe on base features          {_pct(split['probe_base'])}")
    print(f"  mean cos(h_base, h_final)              {split['state_cos']:.3f}")
    cos, cos_rms = cosines
    print(f"cos(S_true, Δ) of the output layer over all {n_texts} texts: {cos:.3f}")
    print(f"  in Adam's geometry, cos(S_true ⊘ D, Δ) (D: their gradients' RMS): {cos_rms:.3f}")
    head_share = split["base_head_final_body"] >= split["final_head_final_body"] - 0.02
    if head_share:
        print(
            "verdict: the skill lives in the body (the base's head on the final's features does "
            "as well as the final's), so the head's gradients see little of it: try --layers "
            "blocks.-1."
        )
    elif max(cos, cos_rms) < 0.6:
        print(
            "verdict: the premise is weak (cos(S_true, Δ) < 0.6 in both spaces): Δ is far from "
            "the true texts' summed gradient. A warning, not a forecast: on this project's "
            "default (raw cosines 0.08–0.22) SELECT still beat Random on every task; compare the "
            "picks with Random's on held-out data."
        )
    else:
        space = "raw" if cos >= cos_rms else "Adam-aware (select_pre)"
        print(f"verdict: the head carries the finetune and Δ is a gradient direction ({space}).")
