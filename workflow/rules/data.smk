rule dataset:
    output:
        "data/datasets/{dataset}.parquet",
    log:
        "logs/dataset/{dataset}.log",
    conda:
        ENV
    params:
        spec=lambda w: as_json(config["datasets"][w.dataset]),
        split_seed=config["split_seed"],
    shell:
        "weights2data dataset --spec {params.spec} --split-seed {params.split_seed} "
        "--out {output} > {log} 2>&1"
