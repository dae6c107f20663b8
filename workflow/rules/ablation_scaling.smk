# F2 (paper Fig. 2): accuracy vs selection size K, one line per strategy.
# Runs at K = selection.k are Table 1's own runs (same paths), so they are not recomputed.


SCALING = scaling_spec()


rule ablation_scaling:
    input:
        [r["retrain"] for r in SCALING["runs"]],
    output:
        csv=report(
            "figures/ablations/scaling.csv",
            caption="../report/ablation_scaling.rst",
            category="Ablations",
            subcategory="F2 selection size",
        ),
        md="figures/ablations/scaling.md",
        pdf="figures/ablations/scaling.pdf",
        png=report(
            "figures/ablations/scaling.png",
            caption="../report/ablation_scaling.rst",
            category="Ablations",
            subcategory="F2 selection size",
        ),
    log:
        "logs/ablations/scaling.log",
    benchmark:
        "data/benchmarks/ablation_scaling.tsv"
    conda:
        ENV
    params:
        spec=as_json(SCALING),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind sweep --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"


if SCALING["runs"]:
    ABLATION_TARGETS.append("figures/ablations/scaling.md")
