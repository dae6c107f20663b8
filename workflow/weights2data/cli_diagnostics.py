"""Subcommands of the regime diagnostics: per expert (``regime``), per table
(``diagnostics-table``) and for any two checkpoints (``diagnose``)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .cli_common import json_arg, threads_arg

# The store spec `diagnose` uses for cos(S_true, Δ): the pipeline's default (exact C×d rows).
DIAGNOSE_SPEC = {"k": 1024, "projection": "auto", "checkpoints": 1, "model": "base"}


def cmd_regime(args) -> None:
    from .diagnostics import RegimeInputs, regime

    inputs = RegimeInputs(
        Path(args.base),
        Path(args.final),
        Path(args.dataset),
        args.task,
        args.finetune,
        args.spec,
        args.seed,
        args.split_seed,
    )
    result = regime(inputs, Path(args.out), Path(args.sum_out), args.keys)
    print(f"cos(S_true, Δ) = {result['cos_truth_delta']:.3f} -> {args.out}")


def cmd_diagnostics_table(args) -> None:
    from .report.diagnostics import write_diagnostics

    paths = write_diagnostics(args.spec, args.out_stem)
    print(f"diagnostics: {', '.join(str(p) for p in paths.values())}")


def _pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:.1f}%"


def cmd_diagnose(args) -> None:
    from .alignment import checkpoint_cosines, mean_finite
    from .data.build import build_dataset
    from .diagnostics import (
        Encoding,
        body_drift,
        check_pair,
        head_body_split,
        layer_drift,
        truth_gradient_sum,
    )
    from .errors import UserError
    from .models import load_tokenizer

    base, final = check_pair(Path(args.base), Path(args.final))
    report = {"body_drift": body_drift(base, final), "layers": layer_drift(base, final)}
    print("relative drift ‖θf − θ0‖ / ‖θ0‖ per layer:")
    for row in report["layers"]:
        print(f"  {row['layer']:<40} {row['relative_drift']:8.4f}  ({row['params']:,} params)")
    print(f"body (all but the output matrix): {report['body_drift']:.4f}")
    if args.truth:
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
        classes = args.num_classes or int(table["label"].max()) + 1
        enc = Encoding(classes, args.max_length, args.truncate)
        fit, held = table[table.split == "train"], table[table.split != "train"]
        split = head_body_split(
            base,
            final,
            load_tokenizer(args.base),
            (held["text"].tolist(), held["label"].to_numpy()),
            enc,
            train=(fit["text"].tolist(), fit["label"].to_numpy()),
        )
        finetune = {"max_length": args.max_length, "truncate": args.truncate, "loss": args.loss}
        total, target = truth_gradient_sum(
            Path(args.base),
            Path(args.final),
            table["text"].tolist(),
            table["label"].to_numpy(),
            DIAGNOSE_SPEC,
            {"type": "classification"},
            classes,
            finetune,
            0,
        )
        report["cos_truth_delta"] = mean_finite(checkpoint_cosines(total, target))
        report["head_body"] = split
        print(f"head / body split on {split['n_eval']} held-out texts of --truth:")
        print(f"  final head on final body (the expert)  {_pct(split['final_head_final_body'])}")
        print(f"  base head on final body                {_pct(split['base_head_final_body'])}")
        print(f"  final head on base body                {_pct(split['final_head_base_body'])}")
        print(f"  head change alone on base body         {_pct(split['head_change_base_body'])}")
        print(f"  linear probe on base features          {_pct(split['probe_base'])}")
        print(f"  mean cos(h_base, h_final)              {split['state_cos']:.3f}")
        print(
            f"cos(S_true, Δ) of the output layer over all {len(table)} texts: "
            f"{report['cos_truth_delta']:.3f}"
        )
        head_share = split["base_head_final_body"] >= split["final_head_final_body"] - 0.02
        if head_share or report["cos_truth_delta"] < 0.6:
            print(
                "verdict: the skill lives in the body or Δ is not a gradient direction; "
                "last-layer SELECT is unlikely to beat random selection on this pair."
            )
        else:
            print("verdict: the head carries the finetune and Δ is a gradient direction.")
    if args.json:
        from .atomic import write_json

        write_json(Path(args.json), report)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("regime", help="premise diagnostics of one expert (cos(S_true, Δ), …)")
    p.add_argument("--base", required=True)
    p.add_argument("--final", required=True)
    p.add_argument("--dataset", required=True, help="the task's dataset parquet")
    p.add_argument("--task", type=json_arg, required=True)
    p.add_argument("--finetune", type=json_arg, required=True)
    p.add_argument("--spec", type=json_arg, required=True, help="the store's gradient spec")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--keys", type=json_arg, default={})
    threads_arg(p)
    p.add_argument("--out", required=True, help="JSON of the diagnostics")
    p.add_argument("--sum-out", required=True, help=".npy of S_true (C×D)")
    p.set_defaults(func=cmd_regime)

    p = sub.add_parser("diagnostics-table", help="the premise table beside Table 1 or 2")
    p.add_argument("--spec", type=json_arg, required=True, help='{"experts": …, "runs": …}')
    p.add_argument("--out-stem", required=True)
    p.set_defaults(func=cmd_diagnostics_table)

    p = sub.add_parser(
        "diagnose",
        help="can last-layer SELECT work on this pair? drift, head/body split, cos(S_true, Δ)",
    )
    p.add_argument("--base", required=True, help="base model folder")
    p.add_argument("--final", required=True, help="finetuned model folder")
    p.add_argument("--truth", help="labelled texts (CSV / JSONL / parquet) for the split")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--num-classes", type=int, help="default: largest label + 1")
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--truncate", choices=["left", "right"], default="left")
    p.add_argument("--loss", choices=["label_masked", "full_vocab"], default="label_masked")
    threads_arg(p)
    p.add_argument("--json", help="also write the report as JSON here")
    p.set_defaults(func=cmd_diagnose)
