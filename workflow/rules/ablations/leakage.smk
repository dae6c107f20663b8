# F3 (paper Fig. 3): the seed pool holds the expert's TRUE training texts (for that seed), making
# a fraction f of it; accuracy, OT and recovery precision / recall of the true texts vs f.
# Leaked pools are pools named leak_{task}_{f}: autolabel, gradient_store, select, retrain and
# similarity work on them unchanged. Their embeddings reuse the true-set and regular-pool rows.


ruleorder: leak_pool > pool_subset
ruleorder: leak_embeddings > embed_pool


LEAKAGE = leakage_spec()


rule leak_pool:
    input:
        dataset=task_dataset,
        pool=dataset_path(POOL),
    output:
        "data/pools/leak_{task}_{frac}/{seed}.parquet",
    log:
        "logs/leak_pool/{task}_{frac}/{seed}.log",
    benchmark:
        "data/benchmarks/leak_pool/{task}_{frac}/{seed}.tsv"
    wildcard_constraints:
        frac=r"[0-9.]+",
    conda:
        ENV
    params:
        code=code_of("leak-pool"),
        task=lambda w: as_json(task_spec(w)),
        split_seed=config["split_seed"],
    shell:
        "weights2data leak-pool --dataset {input.dataset} --task {params.task} "
        "--pool-dataset {input.pool} --fraction {wildcards.frac} --seed {wildcards.seed} "
        "--split-seed {params.split_seed} --out {output} > {log} 2>&1"


rule leak_embeddings:
    input:
        pool="data/pools/leak_{task}_{frac}/{seed}.parquet",
        regular_pool=f"data/pools/{POOL}/{{seed}}.parquet",
        regular=f"data/embeddings/pools/{POOL}/{{seed}}.npy",
        truth=PATHS["truth_embeddings"],
    output:
        "data/embeddings/pools/leak_{task}_{frac}/{seed}.npy",
    log:
        "logs/leak_embeddings/{task}_{frac}/{seed}.log",
    benchmark:
        "data/benchmarks/leak_embeddings/{task}_{frac}/{seed}.tsv"
    wildcard_constraints:
        frac=r"[0-9.]+",
    conda:
        ENV
    threads: config["threads"]
    params:
        code=code_of("leak-embeddings"),
    shell:
        "weights2data leak-embeddings --pool {input.pool} --regular-pool {input.regular_pool} "
        "--regular-embeddings {input.regular} --truth-embeddings {input.truth} "
        "--threads {threads} --out {output} > {log} 2>&1"


register_ablation(
    "leakage",
    kind="leakage",
    spec=LEAKAGE,
    inputs=[
        r[key]
        for r in LEAKAGE["runs"]
        for key in ("retrain", "similarity", "pool_file")
    ],
)
