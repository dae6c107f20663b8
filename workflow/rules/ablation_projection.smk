# F5 (paper Fig. 5): accuracy vs projection dimension k of a full-vocabulary gradient store,
# with Random (no gradients) as a horizontal line. `exact: true` adds the unprojected V×d store.


PROJECTION = projection_spec()


rule ablation_projection:
    input:
        sweep_inputs(PROJECTION),
    output:
        csv=report(
            "figures/ablations/projection.csv",
            caption="../report/ablation_projection.rst",
            category="Ablations",
            subcategory="F5 projection dimension",
        ),
        md="figures/ablations/projection.md",
        pdf="figures/ablations/projection.pdf",
        png=report(
            "figures/ablations/projection.png",
            caption="../report/ablation_projection.rst",
            category="Ablations",
            subcategory="F5 projection dimension",
        ),
    log:
        "logs/ablations/projection.log",
    benchmark:
        "data/benchmarks/ablation_projection.tsv"
    conda:
        ENV
    params:
        spec=as_json(PROJECTION),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind sweep --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"


if PROJECTION["runs"]:
    ABLATION_TARGETS.append("figures/ablations/projection.md")
