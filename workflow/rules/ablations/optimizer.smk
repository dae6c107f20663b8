# T5 (paper Table 5): expert optimizer × retraining optimizer on an SFT task; test perplexity
# for SELECT and Random. An expert optimizer other than the task's own makes a derived task
# "<task>-<name>" (its own expert, pseudolabels and store); a retraining optimizer other than
# the expert's retrains through rule retrain_optimizer with that optimizer's finetune settings.
# Random picks on an SFT task depend on neither expert (no pseudolabels), so they are shared.


OPTIMIZER = optimizer_spec()


rule retrain_optimizer:
    input:
        base=PATHS["base"],
        selection=PATHS["selections"],
        dataset=task_dataset,
        trunk=trunk_caches,
    output:
        PATHS["retrain_optimizer"],
    log:
        f"logs/retrain_optimizer/{{optimizer}}/{RUN_KEY}.log",
    benchmark:
        f"data/benchmarks/retrain_optimizer/{{optimizer}}/{RUN_KEY}.tsv"
    wildcard_constraints:
        optimizer=r"[A-Za-z0-9_]+",
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        code=code_of("retrain"),
        task=lambda w: as_json(task_spec(w)),
        finetune=lambda w: as_json(optimizer_finetune(w.task, w.optimizer)),
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


register_ablation(
    "optimizer",
    kind="optimizer",
    spec=OPTIMIZER,
    inputs=[r["retrain"] for r in OPTIMIZER["runs"]],
)
