# T4 (paper Table 4): SELECT accuracy for every task × seed-pool pair. Pools are keys of
# `datasets` (their train split feeds rule pool_subset); the main pool's runs are shared.


SEED_POOLS = seed_pools_spec()


rule ablation_seed_pools:
    input:
        [r["retrain"] for r in SEED_POOLS["runs"]],
    output:
        csv=report(
            "figures/ablations/seed_pools.csv",
            caption="../report/ablation_seed_pools.rst",
            category="Ablations",
            subcategory="T4 seed distribution",
        ),
        md="figures/ablations/seed_pools.md",
        pdf="figures/ablations/seed_pools.pdf",
        png=report(
            "figures/ablations/seed_pools.png",
            caption="../report/ablation_seed_pools.rst",
            category="Ablations",
            subcategory="T4 seed distribution",
        ),
    log:
        "logs/ablations/seed_pools.log",
    benchmark:
        "data/benchmarks/ablation_seed_pools.tsv"
    conda:
        ENV
    params:
        spec=as_json(SEED_POOLS),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind pools --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"


if SEED_POOLS["runs"]:
    ABLATION_TARGETS.append("figures/ablations/seed_pools.md")
