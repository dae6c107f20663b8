rule pretrain_base:
    input:
        corpus=base_corpus,
    output:
        directory(PATHS["base"]),
    log:
        "logs/pretrain_base/{base}.log",
    benchmark:
        "data/benchmarks/pretrain_base/{base}.tsv"
    # the longest job, and everything but the embeddings waits for it: start it first
    priority: 100
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("pretrain"),
        spec=lambda w: as_json(config["bases"][w.base]),
    shell:
        "weights2data pretrain --spec {params.spec} --corpus {input.corpus} "
        "--threads {threads} --out {output} > {log} 2>&1"


rule trunk_cache:
    input:
        base=PATHS["base"],
        dataset=lambda w: dataset_path(w.dataset),
    output:
        PATHS["trunk"],
    log:
        "logs/trunk_cache/{base}/{dataset}/{trunk}.log",
    benchmark:
        "data/benchmarks/trunk_cache/{base}/{dataset}/{trunk}.tsv"
    # every model step of a frozen-trunk task waits for its caches
    priority: 60
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("trunk-cache"),
        spec=lambda w: as_json(trunk_spec(w.trunk)),
        batch=config["trunk_cache"]["batch_size"],
        compute=config["trunk_cache"]["compute"],
    shell:
        "weights2data trunk-cache --base {input.base} --dataset {input.dataset} "
        "--spec {params.spec} --batch-size {params.batch} --compute {params.compute} "
        "--threads {threads} --out {output} > {log} 2>&1"


rule finetune_expert:
    input:
        base=PATHS["base"],
        dataset=lambda w: dataset_path(TASKS[w.task]["dataset"]),
        trunk=trunk_caches,
    output:
        model=directory(PATHS["expert"]),
        metrics=PATHS["expert_metrics"],
    log:
        "logs/finetune_expert/{base}/{task}/{seed}.log",
    benchmark:
        "data/benchmarks/finetune_expert/{base}/{task}/{seed}.tsv"
    priority: 50
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("finetune"),
        task=lambda w: as_json(TASKS[w.task]),
        finetune=lambda w: as_json(finetune_of(w.task)),
        split_seed=config["split_seed"],
        trunk=trunk_flag,
    shell:
        "weights2data finetune --base {input.base} --dataset {input.dataset} "
        "--task {params.task} --finetune {params.finetune} --seed {wildcards.seed} "
        "--split-seed {params.split_seed} {params.trunk} --threads {threads} "
        "--out {output.model} --metrics {output.metrics} > {log} 2>&1"
