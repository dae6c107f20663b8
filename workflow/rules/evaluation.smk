rule retrain:
    input:
        base=PATHS["base"],
        selection=PATHS["selections"],
        dataset=task_dataset,
        trunk=trunk_caches,
    output:
        PATHS["retrain"],
    log:
        f"logs/retrain/{RUN_KEY}.log",
    benchmark:
        f"data/benchmarks/retrain/{RUN_KEY}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("retrain"),
        task=lambda w: as_json(task_spec(w)),
        finetune=lambda w: as_json(finetune_of(w.task)),
        retrain=as_json(config["retrain"]),
        run_keys=lambda w: as_json(dict(w.items())),
        split_seed=config["split_seed"],
        trunk=trunk_flag,
    shell:
        "weights2data retrain --base {input.base} --selection {input.selection} "
        "--dataset {input.dataset} --task {params.task} --finetune {params.finetune} "
        "--retrain {params.retrain} --keys {params.run_keys} --seed {wildcards.seed} "
        "--split-seed {params.split_seed} {params.trunk} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule embed_pool_union:
    input:
        lambda w: [path_of("pool", pool=w.pool, seed=s) for s in config["seeds"]],
    output:
        embeddings=PATHS["pool_union_embeddings"],
        texts=PATHS["pool_union_texts"],
    log:
        "logs/embed_pool_union/{pool}.log",
    benchmark:
        "data/benchmarks/embed_pool_union/{pool}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        code=code_of("embed"),
    shell:
        "weights2data embed --pools {input} --texts-out {output.texts} --threads {threads} "
        "--out {output.embeddings} > {log} 2>&1"


rule embed_pool:
    input:
        pool=PATHS["pool"],
        texts=PATHS["pool_union_texts"],
        known=PATHS["pool_union_embeddings"],
    output:
        PATHS["pool_embeddings"],
    log:
        "logs/embed_pool/{pool}/{seed}.log",
    benchmark:
        "data/benchmarks/embed_pool/{pool}/{seed}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        code=code_of("embed"),
    shell:
        "weights2data embed --texts {input.pool} --known-texts {input.texts} "
        "--known {input.known} --threads {threads} --out {output} > {log} 2>&1"


rule embed_truth_union:
    input:
        task_dataset,
    output:
        embeddings=PATHS["truth_union_embeddings"],
        texts=PATHS["truth_union_texts"],
    log:
        "logs/embed_truth_union/{task}.log",
    benchmark:
        "data/benchmarks/embed_truth_union/{task}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        code=code_of("embed"),
        task=lambda w: as_json(task_spec(w)),
        seeds=" ".join(str(s) for s in config["seeds"]),
        split_seed=config["split_seed"],
    shell:
        "weights2data embed --dataset {input} --task {params.task} --seeds {params.seeds} "
        "--split-seed {params.split_seed} --texts-out {output.texts} --threads {threads} "
        "--out {output.embeddings} > {log} 2>&1"


rule embed_truth:
    input:
        dataset=task_dataset,
        texts=PATHS["truth_union_texts"],
        known=PATHS["truth_union_embeddings"],
    output:
        PATHS["truth_embeddings"],
    log:
        "logs/embed_truth/{task}/{seed}.log",
    benchmark:
        "data/benchmarks/embed_truth/{task}/{seed}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        code=code_of("embed"),
        task=lambda w: as_json(task_spec(w)),
        split_seed=config["split_seed"],
    shell:
        "weights2data embed --dataset {input.dataset} --task {params.task} "
        "--seed {wildcards.seed} --split-seed {params.split_seed} --known-texts {input.texts} "
        "--known {input.known} --threads {threads} --out {output} > {log} 2>&1"


rule similarity:
    input:
        selection=PATHS["selections"],
        pool=PATHS["pool_embeddings"],
        truth=PATHS["truth_embeddings"],
        dataset=task_dataset,
    output:
        PATHS["similarity"],
    log:
        f"logs/similarity/{RUN_KEY}.log",
    benchmark:
        f"data/benchmarks/similarity/{RUN_KEY}.tsv"
    conda:
        ENV
    params:
        code=code_of("similarity"),
        task=lambda w: as_json(task_spec(w)),
        run_keys=lambda w: as_json(dict(w.items())),
        split_seed=config["split_seed"],
        method=lambda w: (
            "emd" if task_spec(w)["type"] == "classification" else "sinkhorn"
        ),
        max_tokens=config["similarity"]["max_tokens"],
    shell:
        "weights2data similarity --selection {input.selection} --pool-embeddings {input.pool} "
        "--truth-embeddings {input.truth} --dataset {input.dataset} --task {params.task} "
        "--keys {params.run_keys} --seed {wildcards.seed} --split-seed {params.split_seed} "
        "--ot {params.method} --max-tokens {params.max_tokens} --out {output} > {log} 2>&1"
