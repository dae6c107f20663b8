rule dataset:
    input:
        user_files,
    output:
        PATHS["dataset"],
    log:
        "logs/dataset/{dataset}.log",
    benchmark:
        "data/benchmarks/dataset/{dataset}.tsv"
    # seconds each, and pretraining (priority 100) waits for its corpus: Snakemake does not
    # pass a job's priority on to the jobs it needs
    priority: 100
    conda:
        ENV
    params:
        code=code_of("dataset"),
        spec=lambda w: as_json(config["datasets"][w.dataset]),
        split_seed=config["split_seed"],
    shell:
        "weights2data dataset --spec {params.spec} --split-seed {params.split_seed} "
        "--out {output} > {log} 2>&1"
