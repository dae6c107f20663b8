# New ablation: accuracy vs the number C of interpolated checkpoints θ_c in the gradient store.
# C = 1 is the main store (same spec, same name "main"), so its runs are shared with the others.
# This file is the worked example of docs/ablations.md, "How to add an ablation".


CHECKPOINTS = checkpoints_spec()


rule ablation_checkpoints:
    input:
        sweep_inputs(CHECKPOINTS),
    output:
        csv=report(
            "figures/ablations/checkpoints.csv",
            caption="../report/ablation_checkpoints.rst",
            category="Ablations",
            subcategory="Checkpoints",
        ),
        md="figures/ablations/checkpoints.md",
        pdf="figures/ablations/checkpoints.pdf",
        png=report(
            "figures/ablations/checkpoints.png",
            caption="../report/ablation_checkpoints.rst",
            category="Ablations",
            subcategory="Checkpoints",
        ),
    log:
        "logs/ablations/checkpoints.log",
    benchmark:
        "data/benchmarks/ablation_checkpoints.tsv"
    conda:
        ENV
    params:
        spec=as_json(CHECKPOINTS),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind sweep --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"


if CHECKPOINTS["runs"]:
    ABLATION_TARGETS.append("figures/ablations/checkpoints.md")
