# F4 (paper Fig. 4): how the similarity metrics react when 0, 10, ..., 100% of a selection is
# replaced by true training texts (`trials` draws each). No retraining: one job per selection.


REPLACEMENT = replacement_spec()


rule replacement:
    input:
        selection=f"data/selections/{RUN_KEY}.parquet",
        pool="data/embeddings/pools/{pool}/{seed}.npy",
        truth="data/embeddings/truth/{task}/{seed}.npy",
        dataset=task_dataset,
    output:
        f"data/ablations/replacement/{RUN_KEY}.json",
    log:
        f"logs/replacement/{RUN_KEY}.log",
    benchmark:
        f"data/benchmarks/replacement/{RUN_KEY}.tsv"
    conda:
        ENV
    params:
        task=lambda w: as_json(task_spec(w)),
        split_seed=config["split_seed"],
        fractions=" ".join(f"{f:g}" for f in ABL["replacement"]["fractions"]),
        trials=ABL["replacement"]["trials"],
        method=lambda w: (
            "emd" if task_spec(w)["type"] == "classification" else "sinkhorn"
        ),
        max_tokens=config["similarity"]["max_tokens"],
    shell:
        "weights2data replacement --selection {input.selection} "
        "--pool-embeddings {input.pool} --truth-embeddings {input.truth} "
        "--dataset {input.dataset} --task {params.task} --seed {wildcards.seed} "
        "--split-seed {params.split_seed} --fractions {params.fractions} "
        "--trials {params.trials} --ot {params.method} --max-tokens {params.max_tokens} "
        "--out {output} > {log} 2>&1"


rule ablation_replacement:
    input:
        [r["path"] for r in REPLACEMENT["runs"]],
    output:
        csv=report(
            "figures/ablations/replacement.csv",
            caption="../report/ablation_replacement.rst",
            category="Ablations",
            subcategory="F4 OT-metric sensitivity",
        ),
        md="figures/ablations/replacement.md",
        pdf="figures/ablations/replacement.pdf",
        png=report(
            "figures/ablations/replacement.png",
            caption="../report/ablation_replacement.rst",
            category="Ablations",
            subcategory="F4 OT-metric sensitivity",
        ),
    log:
        "logs/ablations/replacement.log",
    benchmark:
        "data/benchmarks/ablation_replacement.tsv"
    conda:
        ENV
    params:
        spec=as_json(REPLACEMENT),
        stem=lambda w, output: output.csv[: -len(".csv")],
    shell:
        "weights2data ablation-report --kind replacement --spec {params.spec} "
        "--out-stem {params.stem} > {log} 2>&1"


if REPLACEMENT["runs"]:
    ABLATION_TARGETS.append("figures/ablations/replacement.md")
