# F4 (paper Fig. 4): how the similarity metrics react when 0, 10, ..., 100% of a selection is
# replaced by true training texts (`trials` draws each). No retraining: one job per selection.


REPLACEMENT = replacement_spec()


rule replacement:
    input:
        selection=PATHS["selections"],
        pool=PATHS["pool_embeddings"],
        truth=PATHS["truth_embeddings"],
        dataset=task_dataset,
    output:
        PATHS["replacement"],
    log:
        f"logs/replacement/{RUN_KEY}.log",
    benchmark:
        f"data/benchmarks/replacement/{RUN_KEY}.tsv"
    conda:
        ENV
    params:
        code=code_of("replacement"),
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


register_ablation(
    "replacement",
    kind="replacement",
    spec=REPLACEMENT,
    inputs=[r["path"] for r in REPLACEMENT["runs"]],
)
