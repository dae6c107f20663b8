rule pool_subset:
    input:
        lambda w: dataset_path(w.pool),
    output:
        PATHS["pool"],
    log:
        "logs/pool_subset/{pool}/{seed}.log",
    benchmark:
        "data/benchmarks/pool_subset/{pool}/{seed}.tsv"
    conda:
        ENV
    params:
        code=code_of("pool"),
        size=SEL["pool_size"],
    shell:
        "weights2data pool --dataset {input} --size {params.size} --seed {wildcards.seed} "
        "--out {output} > {log} 2>&1"


rule autolabel:
    input:
        final=PATHS["expert"],
        pool=PATHS["pool"],
        dataset=task_dataset,
        trunk=trunk_caches,
    output:
        PATHS["labels"],
    log:
        "logs/autolabel/{base}/{task}/{pool}/{seed}.log",
    benchmark:
        "data/benchmarks/autolabel/{base}/{task}/{pool}/{seed}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("autolabel"),
        task=lambda w: as_json(task_spec(w)),
        finetune=lambda w: as_json(finetune_of(w.task)),
        batch=SEL["label_batch_size"],
        trunk=trunk_flag,
    shell:
        "weights2data autolabel --final {input.final} --pool {input.pool} "
        "--dataset {input.dataset} --task {params.task} --finetune {params.finetune} "
        "--batch-size {params.batch} {params.trunk} --threads {threads} --out {output} "
        "> {log} 2>&1"


# One job per pool, or (selection.shards > 1) one per shard and a gather job that joins
# them into the same store, byte for byte.
SHARDS = SEL["shards"]


if SHARDS == 1:

    rule gradient_store:
        input:
            unpack(gradient_inputs),
        output:
            directory(PATHS["gradients"]),
        log:
            "logs/gradient_store/{base}/{task}/{pool}/{grad}/{seed}.log",
        benchmark:
            "data/benchmarks/gradient_store/{base}/{task}/{pool}/{grad}/{seed}.tsv"
        conda:
            ENV
        threads: config["threads"]
        resources:
            gpu=1,
        params:
            code=code_of("gradient-store"),
            task=lambda w: as_json(task_spec(w)),
            finetune=lambda w: as_json(finetune_of(w.task)),
            spec=lambda w: as_json(gradient_spec(w.grad)),
            trunk=trunk_flag,
        shell:
            "weights2data gradient-store --base {input.base} --final {input.final} "
            "--labels {input.labels} --dataset {input.dataset} --task {params.task} "
            "--finetune {params.finetune} --spec {params.spec} --seed {wildcards.seed} "
            "{params.trunk} "
            "--threads {threads} --out {output} > {log} 2>&1"

else:

    rule gradient_shard:
        input:
            unpack(gradient_inputs),
        output:
            directory(
                "data/gradients/{base}/{task}/{pool}/{grad}/{seed}.shards/{shard}"
            ),
        log:
            "logs/gradient_shard/{base}/{task}/{pool}/{grad}/{seed}/{shard}.log",
        benchmark:
            "data/benchmarks/gradient_shard/{base}/{task}/{pool}/{grad}/{seed}/{shard}.tsv"
        conda:
            ENV
        threads: config["threads"]
        resources:
            gpu=1,
        params:
            code=code_of("gradient-store"),
            task=lambda w: as_json(task_spec(w)),
            finetune=lambda w: as_json(finetune_of(w.task)),
            spec=lambda w: as_json(gradient_spec(w.grad)),
            trunk=trunk_flag,
            shards=SHARDS,
        shell:
            "weights2data gradient-store --base {input.base} --final {input.final} "
            "--labels {input.labels} --dataset {input.dataset} --task {params.task} "
            "--finetune {params.finetune} --spec {params.spec} --seed {wildcards.seed} "
            "{params.trunk} "
            "--shard {wildcards.shard} --shards {params.shards} --threads {threads} "
            "--out {output} > {log} 2>&1"

    rule gradient_store:
        input:
            shards=expand(
                "data/gradients/{{base}}/{{task}}/{{pool}}/{{grad}}/{{seed}}.shards/{shard}",
                shard=range(SHARDS),
            ),
        output:
            directory(PATHS["gradients"]),
        log:
            "logs/gradient_store/{base}/{task}/{pool}/{grad}/{seed}.log",
        benchmark:
            "data/benchmarks/gradient_store/{base}/{task}/{pool}/{grad}/{seed}.tsv"
        localrule: True
        conda:
            ENV
        params:
            code=code_of("gather-gradients"),
        shell:
            "weights2data gather-gradients --shards {input.shards} --out {output} > {log} 2>&1"


rule select:
    input:
        labels=PATHS["labels"],
        store=selection_store,
    output:
        PATHS["selections"],
    log:
        "logs/select/{base}/{task}/{pool}/{grad}/{strategy}/{k}/{seed}.log",
    benchmark:
        "data/benchmarks/select/{base}/{task}/{pool}/{grad}/{strategy}/{k}/{seed}.tsv"
    conda:
        ENV
    params:
        code=code_of("select-pool"),
        store=lambda w, input: f"--store {input.store}" if input.store else "",
        batch=SEL["batch_size"],
    shell:
        "weights2data select-pool --labels {input.labels} {params.store} "
        "--strategy {wildcards.strategy} -k {wildcards.k} --seed {wildcards.seed} "
        "--batch-size {params.batch} --out {output} > {log} 2>&1"
